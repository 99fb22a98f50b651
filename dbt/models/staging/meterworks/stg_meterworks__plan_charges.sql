{#- Catalog plan charges with their price flattened for rating (price id
    `catalog:<plan>:<meter>`; null price columns when the charge has no pricing). -#}
select
    plan_code,
    meter_code,
    included,
    price_id,
    currency,
    billing_scheme,
    tiers_mode,
    unit_amount_decimal,
    divide_by,
    round_mode
from {{ source('meterworks', 'catalog_plan_charges') }}
