{{ config(materialized='table') }}

{#- UTC offset of every customer time zone for every UTC 15-minute bucket spanned by the
    events (plus a day either side). Offsets change only on 15-minute boundaries, so joining
    events to this table on their bucket gives their local time without converting each row. -#}

with bounds as (
    select
        {{ meterworks.floor_to_15_minutes(dbt.dateadd('day', -1, 'min(event_ts)')) }} as range_start,
        {{ dbt.dateadd('day', 1, 'max(event_ts)') }} as range_end
    from {{ ref('stg_meterworks__events') }}
),

buckets as (
    {{ meterworks.fifteen_minute_buckets(
        '(select b.range_start from bounds as b)',
        '(select b.range_end from bounds as b)'
    ) }}
),

zones as (
    select timezone from {{ ref('stg_meterworks__customers') }}
    union
    select 'UTC' as timezone
)

select
    z.timezone,
    b.bucket_start_utc,
    {{ dbt.datediff('b.bucket_start_utc', meterworks.utc_to_local('b.bucket_start_utc', 'z.timezone'), 'minute') }}
        as offset_minutes
from zones as z
cross join buckets as b
where b.bucket_start_utc is not null
