{#- Usage adjustments in force, summed per customer, meter and billing period: the signed
    quantity the billing marts add to what was measured. -#}
select
    customer_id,
    meter_code,
    period_start,
    sum(quantity) as adjustment_quantity,
    count(*) as adjustments
from {{ ref('stg_meterworks__adjustments') }}
where kind = 'usage' and meter_code is not null and quantity is not null
group by 1, 2, 3
