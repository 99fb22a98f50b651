-- Per meter, the events counted in fct_meter_totals are exactly the effective events the
-- meter listens to (after filters): nothing lost (e.g. a missing time-zone offset) and
-- nothing counted twice. Unfiltered meters are checked against the effective events
-- directly, without parsing any JSON.
{{ config(tags=['audit'], meta={'dagster': {'ref': {'name': 'fct_meter_totals'}}}) }}

with meters as (
    select * from {{ ref('stg_meterworks__meters') }}
),

expected as (
    select
        m.meter_code,
        count(*) as event_count
    from {{ ref('int_events_effective') }} as e
    inner join meters as m
        on e.event_name = m.event_name
    where m.filter_count = 0
    group by 1

    union all

    select
        me.meter_code,
        count(*) as event_count
    from {{ ref('int_meter_events') }} as me
    inner join meters as m
        on me.meter_code = m.meter_code
    where m.filter_count > 0
    group by 1
),

actual as (
    select
        meter_code,
        sum(event_count) as event_count
    from {{ ref('fct_meter_totals') }}
    group by 1
)

select
    e.event_count as expected_event_count,
    a.event_count as actual_event_count,
    coalesce(e.meter_code, a.meter_code) as meter_code
from expected as e
full outer join actual as a
    on e.meter_code = a.meter_code
where coalesce(e.event_count, 0) != coalesce(a.event_count, 0)
