{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['customer_id', 'meter_code', 'dimensions', 'usage_hour'],
        post_hook="{{ meterworks.delete_empty_usage_rows() }}",
    )
}}

{#- Usage per customer, meter, dimensions and local wall-clock hour.
    Incremental runs re-aggregate only the keys touched by versions after the watermark
    (max last_event_seq): new events, late events and the original keys of corrected ones. -#}

-- depends_on: {{ ref('int_event_versions') }}
-- depends_on: {{ ref('int_events_effective') }}
-- depends_on: {{ ref('stg_meterworks__meters') }}
-- depends_on: {{ ref('stg_meterworks__customers') }}
-- depends_on: {{ ref('int_timezone_offsets') }}

{%- set watermark = meterworks.usage_watermark() %}

with
{% if is_incremental() %}
    {{ meterworks.changed_meter_events_ctes(watermark) }},

    changed_keys as (
        select distinct
            customer_id,
            meter_code,
            dimensions,
            {{ dbt.date_trunc('hour', 'local_ts') }} as usage_hour
        from changed_meter_events
    ),

    changed_windows as (
        select
            customer_id,
            {{ dbt.dateadd('day', -1, 'min(usage_hour)') }} as window_start_utc,
            {{ dbt.dateadd('day', 1, 'max(usage_hour)') }} as window_end_utc
        from changed_keys
        group by 1
    ),

    {{ meterworks.candidate_versions_cte('changed_windows') }},

    candidate_meter_events as (
        {{ meterworks.apply_meters('candidate_versions') }}
    ),

    meter_events as (
        select me.*
        from candidate_meter_events as me
        inner join changed_keys as k
            on
                me.customer_id = k.customer_id
                and me.meter_code = k.meter_code
                and me.dimensions = k.dimensions
                and {{ dbt.date_trunc('hour', 'me.local_ts') }} = k.usage_hour
    ),
{% else %}
    meter_events as (
        select * from {{ ref('int_meter_events') }}
    ),
{% endif %}

hourly as (
    select
        customer_id,
        meter_code,
        dimensions,
        {{ dbt.date_trunc('hour', 'local_ts') }} as usage_hour,
        min({{ dbt.dateadd('minute', '-offset_minutes', dbt.date_trunc('hour', 'local_ts')) }})
            as hour_start_utc,
        {{ dbt.any_value('timezone') }} as timezone,
        {{ dbt.any_value('aggregation') }} as aggregation,
        {{ meterworks.to_count('count(*)') }} as event_count,
        sum(quantity) as quantity_sum,
        max(quantity) as quantity_max,
        {{ meterworks.latest_value(
            "case when aggregation = 'latest' then quantity end",
            "case when aggregation = 'latest' then event_ts end",
            'event_seq'
        ) }} as quantity_latest,
        max(event_ts) as last_event_at,
        max(event_seq) as last_event_seq
    from meter_events
    group by 1, 2, 3, 4
),

{# Distinct values per hour, counted in two steps: a plain group-by is much cheaper than
    count(distinct ...) next to other aggregates. #}
unique_values as (
    select distinct
        customer_id,
        meter_code,
        dimensions,
        unique_value,
        {{ dbt.date_trunc('hour', 'local_ts') }} as usage_hour
    from meter_events
    where aggregation = 'unique_count' and unique_value is not null
),

unique_counts as (
    select
        customer_id,
        meter_code,
        dimensions,
        usage_hour,
        count(*) as unique_values
    from unique_values
    group by 1, 2, 3, 4
),

final as (
    select
        h.customer_id,
        h.meter_code,
        h.dimensions,
        h.usage_hour,
        h.hour_start_utc,
        h.timezone,
        h.aggregation,
        h.event_count,
        h.last_event_at,
        h.last_event_seq,
        cast(
            case h.aggregation
                when 'count' then h.event_count
                when 'sum' then coalesce(h.quantity_sum, 0)
                when 'max' then h.quantity_max
                when 'unique_count' then coalesce(u.unique_values, 0)
                when 'latest' then h.quantity_latest
            end as {{ meterworks.quantity_type() }}
        ) as quantity
    from hourly as h
    left join unique_counts as u
        on
            h.customer_id = u.customer_id
            and h.meter_code = u.meter_code
            and h.dimensions = u.dimensions
            and h.usage_hour = u.usage_hour
)

select
    customer_id,
    meter_code,
    dimensions,
    usage_hour,
    hour_start_utc,
    timezone,
    aggregation,
    quantity,
    event_count,
    last_event_at,
    last_event_seq
from final
{% if is_incremental() %}
    {#- a zero row for each changed key left without usage: delete+insert removes the old
        row, the post-hook removes the zero row -#}
    union all
    select
        k.customer_id,
        k.meter_code,
        k.dimensions,
        k.usage_hour,
        null as hour_start_utc,
        null as timezone,
        null as aggregation,
        null as quantity,
        0 as event_count,
        null as last_event_at,
        null as last_event_seq
    from changed_keys as k
    left join final as f
        on
            k.customer_id = f.customer_id
            and k.meter_code = f.meter_code
            and k.dimensions = f.dimensions
            and k.usage_hour = f.usage_hour
    where f.customer_id is null
{% endif %}
