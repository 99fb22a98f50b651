-- For additive meters (count, sum) the local days of a period add up to the period total,
-- and for every meter the daily event counts add up to the period's.
{{ config(tags=['audit'], meta={'dagster': {'ref': {'name': 'fct_meter_totals'}}}) }}

with daily as (
    select
        customer_id,
        meter_code,
        dimensions,
        cast({{ dbt.date_trunc('month', 'usage_date') }} as date) as period_month,
        sum(case when aggregation in ('count', 'sum') then quantity end) as quantity,
        sum(event_count) as event_count
    from {{ ref('fct_usage_daily') }}
    group by 1, 2, 3, 4
)

select
    t.customer_id,
    t.meter_code,
    t.dimensions,
    t.period_month,
    t.quantity,
    d.quantity as daily_quantity,
    t.event_count,
    d.event_count as daily_event_count
from {{ ref('fct_meter_totals') }} as t
full outer join daily as d
    on
        t.customer_id = d.customer_id
        and t.meter_code = d.meter_code
        and t.dimensions = d.dimensions
        and t.period_month = d.period_month
where
    t.customer_id is null
    or d.customer_id is null
    or t.event_count != d.event_count
    or (t.aggregation in ('count', 'sum') and t.quantity != d.quantity)
