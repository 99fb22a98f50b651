{#- Every line of every invoice (all pages, stored as their own objects by the sync). Since API
    2025-03-31.basil the price is at pricing.price_details.price and the subscription item at
    parent.subscription_item_details; older versions had `price`, `subscription_item`,
    `proration` on the line. `quantity_decimal` holds the exact quantity when set. -#}
select
    id as invoice_line_id,
    coalesce(parent_id, {{ meterworks.json_path_text('data', 'invoice') }}) as invoice_id,
    coalesce(
        {{ meterworks.json_path_text('data', 'pricing.price_details.price') }},
        {{ meterworks.json_path_text('data', 'price.id') }},
        {{ meterworks.json_path_text('data', 'plan.id') }}
    ) as price_id,
    coalesce(
        {{ meterworks.json_path_text('data', 'parent.subscription_item_details.subscription_item') }},
        {{ meterworks.json_path_text('data', 'subscription_item') }}
    ) as subscription_item_id,
    coalesce(
        {{ meterworks.json_path_text('data', 'parent.subscription_item_details.subscription') }},
        {{ meterworks.json_path_text('data', 'subscription') }}
    ) as subscription_id,
    coalesce(
        {{ meterworks.json_path_text('data', 'parent.subscription_item_details.proration') }},
        {{ meterworks.json_path_text('data', 'proration') }},
        'false'
    ) = 'true' as is_proration,
    cast(
        coalesce(
            {{ meterworks.json_path_text('data', 'quantity_decimal') }},
            {{ meterworks.json_path_text('data', 'quantity') }}
        ) as decimal(38, 9)
    ) as quantity,
    cast({{ meterworks.json_path_text('data', 'amount') }} as {{ dbt.type_bigint() }}) as amount,
    lower({{ meterworks.json_path_text('data', 'currency') }}) as currency,
    {{ meterworks.json_path_epoch('data', 'period.start') }} as period_start,
    {{ meterworks.json_path_epoch('data', 'period.end') }} as period_end,
    {{ meterworks.json_path_text('data', 'description') }} as description
from {{ meterworks.stripe_objects('line_item') }}
