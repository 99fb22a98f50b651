{#- Stripe prices flattened into the columns the rating macro reads (amounts in minor units,
    `*_decimal` preferred over the integer fields), plus what maps a price to a meter. -#}
with prices as (
    select
        id as price_id,
        data,
        {{ meterworks.json_path_text('data', 'transform_quantity.divide_by') }} as divide_by_text
    from {{ meterworks.stripe_objects('price') }}
)

select
    price_id,
    {{ meterworks.json_path_text('data', 'product') }} as product_id,
    lower({{ meterworks.json_path_text('data', 'currency') }}) as currency,
    coalesce({{ meterworks.json_path_text('data', 'billing_scheme') }}, 'per_unit') as billing_scheme,
    {{ meterworks.json_path_text('data', 'tiers_mode') }} as tiers_mode,
    cast(
        coalesce(
            {{ meterworks.json_path_text('data', 'unit_amount_decimal') }},
            {{ meterworks.json_path_text('data', 'unit_amount') }}
        ) as decimal(38, 12)
    ) as unit_amount_decimal,
    cast(divide_by_text as {{ dbt.type_bigint() }}) as divide_by,
    {{ meterworks.json_path_text('data', 'transform_quantity.round') }} as round_mode,
    {{ meterworks.json_path_text('data', 'type') }} as price_type,
    {{ meterworks.json_path_text('data', 'recurring.usage_type') }} as usage_type,
    {{ meterworks.json_path_text('data', 'recurring.interval') }} as recurring_interval,
    cast(
        {{ meterworks.json_path_text('data', 'recurring.interval_count') }} as integer
    ) as recurring_interval_count,
    {{ meterworks.json_path_text('data', 'recurring.meter') }} as stripe_meter_id,
    {{ meterworks.json_path_text('data', 'lookup_key') }} as lookup_key,
    {{ meterworks.json_path_text('data', 'metadata.meterworks_meter') }} as metadata_meter_code,
    {{ meterworks.json_path_text('data', 'nickname') }} as nickname,
    coalesce({{ meterworks.json_path_text('data', 'active') }}, 'true') = 'true' as is_active
from prices
