{#- Ops adjustments in force (voided ones left out): a `usage` adjustment adds `quantity`
    (signed) to a meter's usage in one billing period; a `credit` takes `amount_minor` off the
    customer's invoice for that period (optionally against one meter). -#}
select
    adjustment_id,
    customer_id,
    kind,
    meter_code,
    period_start,
    period_end,
    amount_minor,
    quantity,
    reason_code,
    note,
    created_by,
    created_at,
    lower(currency) as currency
from {{ source('meterworks', 'adjustments') }}
where voided_at is null
