select
    price_id,
    tier_index,
    up_to,
    unit_amount_decimal,
    flat_amount_decimal
from {{ source('meterworks', 'catalog_price_tiers') }}
