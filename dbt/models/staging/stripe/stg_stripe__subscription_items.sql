{#- Subscription items: those embedded in the subscription (first page) and any stored on
    their own (the rest of a long item list), one row per item id. Current API versions put the
    billing period on the item; older ones on the subscription (used as the fallback). -#}
with embedded as (
    select
        id as subscription_id,
        data as subscription_json,
        {{ meterworks.unnest(meterworks.json_path_array('data', 'items.data')) }} as item_json
    from {{ meterworks.stripe_objects('subscription') }}
),

standalone as (
    select
        s.id as subscription_id,
        s.data as subscription_json,
        i.data as item_json
    from {{ meterworks.stripe_objects('subscription_item') }} as i
    inner join {{ meterworks.stripe_objects('subscription') }} as s
        on coalesce(i.parent_id, {{ meterworks.json_path_text('i.data', 'subscription') }}) = s.id
),

items as (
    select * from embedded
    union all
    select * from standalone
),

parsed as (
    select
        {{ meterworks.json_path_text('item_json', 'id') }} as subscription_item_id,
        subscription_id,
        coalesce(
            {{ meterworks.json_path_text('item_json', 'price.id') }},
            {{ meterworks.json_path_text('item_json', 'price') }},
            {{ meterworks.json_path_text('item_json', 'plan.id') }}
        ) as price_id,
        cast({{ meterworks.json_path_text('item_json', 'quantity') }} as decimal(38, 9)) as quantity,
        coalesce(
            {{ meterworks.json_path_epoch('item_json', 'current_period_start') }},
            {{ meterworks.json_path_epoch('subscription_json', 'current_period_start') }}
        ) as current_period_start,
        coalesce(
            {{ meterworks.json_path_epoch('item_json', 'current_period_end') }},
            {{ meterworks.json_path_epoch('subscription_json', 'current_period_end') }}
        ) as current_period_end
    from items
),

ranked as (
    select
        *,
        row_number() over (partition by subscription_item_id order by subscription_id) as row_rank
    from parsed
)

select
    subscription_item_id,
    subscription_id,
    price_id,
    quantity,
    current_period_start,
    current_period_end
from ranked
where row_rank = 1
