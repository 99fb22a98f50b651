{#- Every price Meterworks can rate with, in the columns the rate_usage macro reads: Stripe
    prices and the catalog's plan prices (`catalog:<plan>:<meter>`). -#}
select
    price_id,
    currency,
    billing_scheme,
    tiers_mode,
    unit_amount_decimal,
    divide_by,
    round_mode,
    'stripe' as price_source
from {{ ref('stg_stripe__prices') }}

union all

select
    price_id,
    currency,
    billing_scheme,
    tiers_mode,
    unit_amount_decimal,
    divide_by,
    round_mode,
    'catalog' as price_source
from {{ ref('stg_meterworks__plan_charges') }}
where price_id is not null
