{#- One row per tier of a tiered Stripe price (`up_to` null means infinity). -#}
with tiers as (
    select
        id as price_id,
        {{ meterworks.unnest_with_ordinal(meterworks.json_path_array('data', 'tiers'), 'tier', 'tier_index') }}
    from {{ meterworks.stripe_objects('price') }}
)

select
    price_id,
    cast(tier_index as integer) as tier_index,
    cast({{ meterworks.json_path_text('tier', 'up_to') }} as decimal(38, 12)) as up_to,
    cast(
        coalesce(
            {{ meterworks.json_path_text('tier', 'unit_amount_decimal') }},
            {{ meterworks.json_path_text('tier', 'unit_amount') }}
        ) as decimal(38, 12)
    ) as unit_amount_decimal,
    cast(
        coalesce(
            {{ meterworks.json_path_text('tier', 'flat_amount_decimal') }},
            {{ meterworks.json_path_text('tier', 'flat_amount') }}
        ) as decimal(38, 12)
    ) as flat_amount_decimal
from tiers
