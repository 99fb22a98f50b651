select
    price_id,
    tier_index,
    up_to,
    unit_amount_decimal,
    flat_amount_decimal
from {{ ref('stg_stripe__price_tiers') }}

union all

select
    price_id,
    tier_index,
    up_to,
    unit_amount_decimal,
    flat_amount_decimal
from {{ ref('stg_meterworks__price_tiers') }}
