-- The hourly and daily marts are aggregated from the meter events independently; their hours
-- must roll up into their days: event counts always, quantities of additive meters (count,
-- sum) by sum, of max meters by max. Attached to the hourly mart, which is built last.
{{ config(tags=['audit'], meta={'dagster': {'ref': {'name': 'fct_usage_hourly'}}}) }}

with hourly as (
    select
        customer_id,
        meter_code,
        dimensions,
        cast(usage_hour as date) as usage_date,
        sum(case when aggregation in ('count', 'sum') then quantity end) as quantity_sum,
        max(case when aggregation = 'max' then quantity end) as quantity_max,
        sum(event_count) as event_count
    from {{ ref('fct_usage_hourly') }}
    group by 1, 2, 3, 4
)

select
    d.customer_id,
    d.meter_code,
    d.dimensions,
    d.usage_date
from {{ ref('fct_usage_daily') }} as d
full outer join hourly as h
    on
        d.customer_id = h.customer_id
        and d.meter_code = h.meter_code
        and d.dimensions = h.dimensions
        and d.usage_date = h.usage_date
where
    d.customer_id is null
    or h.customer_id is null
    or d.event_count != h.event_count
    or (d.aggregation in ('count', 'sum') and d.quantity != h.quantity_sum)
    or (d.aggregation = 'max' and d.quantity != h.quantity_max)
