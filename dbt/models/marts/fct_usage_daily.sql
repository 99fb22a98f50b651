{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['customer_id', 'meter_code', 'dimensions', 'usage_date'],
        post_hook="{{ meterworks.delete_empty_usage_rows() }}",
    )
}}

{#- Usage per customer, meter, dimensions and local calendar day. count/sum/max/latest roll up
    from fct_usage_hourly; unique_count is a distinct count over the whole day, so it is
    computed from the meter events. Incremental runs re-aggregate only the changed days. -#}

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
            cast(local_ts as date) as usage_date,
            {{ dbt.dateadd('day', -1, dbt.date_trunc('day', 'local_ts')) }} as window_start_utc,
            {{ dbt.dateadd('day', 2, dbt.date_trunc('day', 'local_ts')) }} as window_end_utc
        from changed_meter_events
    ),

    {{ meterworks.changed_unique_meter_events_ctes('changed_keys', 'cast(me.local_ts as date)', 'usage_date') }},

    hourly as (
        select h.*
        from {{ ref('fct_usage_hourly') }} as h
        where exists (
            select 1
            from changed_keys as k
            where
                h.customer_id = k.customer_id
                and h.meter_code = k.meter_code
                and h.dimensions = k.dimensions
                and cast(h.usage_hour as date) = k.usage_date
        )
    ),
{% else %}
    unique_meter_events as (
        select * from {{ ref('int_meter_events') }}
        where aggregation = 'unique_count'
    ),

    hourly as (
        select * from {{ ref('fct_usage_hourly') }}
    ),
{% endif %}

unique_values as (
    select distinct
        customer_id,
        meter_code,
        dimensions,
        cast(local_ts as date) as usage_date,
        unique_value
    from unique_meter_events
    where unique_value is not null
),

unique_counts as (
    select
        customer_id,
        meter_code,
        dimensions,
        usage_date,
        count(*) as unique_values
    from unique_values
    group by 1, 2, 3, 4
),

daily as (
    select
        customer_id,
        meter_code,
        dimensions,
        cast(usage_hour as date) as usage_date,
        {{ dbt.any_value('timezone') }} as timezone,
        {{ dbt.any_value('aggregation') }} as aggregation,
        {{ meterworks.to_count('sum(event_count)') }} as event_count,
        sum(quantity) as quantity_sum,
        max(quantity) as quantity_max,
        {{ meterworks.latest_value('quantity', 'last_event_at', 'last_event_seq') }} as quantity_latest,
        max(last_event_at) as last_event_at,
        max(last_event_seq) as last_event_seq
    from hourly
    group by 1, 2, 3, 4
),

final as (
    select
        d.customer_id,
        d.meter_code,
        d.dimensions,
        d.usage_date,
        d.timezone,
        d.aggregation,
        cast(
            case d.aggregation
                when 'count' then d.event_count
                when 'sum' then d.quantity_sum
                when 'max' then d.quantity_max
                when 'unique_count' then coalesce(u.unique_values, 0)
                when 'latest' then d.quantity_latest
            end as {{ meterworks.quantity_type() }}
        ) as quantity,
        d.event_count,
        d.last_event_at,
        d.last_event_seq
    from daily as d
    left join unique_counts as u
        on
            d.customer_id = u.customer_id
            and d.meter_code = u.meter_code
            and d.dimensions = u.dimensions
            and d.usage_date = u.usage_date
)

select * from final
{% if is_incremental() %}
    union all
    select
        k.customer_id,
        k.meter_code,
        k.dimensions,
        k.usage_date,
        null as timezone,
        null as aggregation,
        null as quantity,
        0 as event_count,
        null as last_event_at,
        null as last_event_seq
    from (select distinct customer_id, meter_code, dimensions, usage_date from changed_keys) as k
    where not exists (
        select 1
        from final as f
        where
            k.customer_id = f.customer_id
            and k.meter_code = f.meter_code
            and k.dimensions = f.dimensions
            and k.usage_date = f.usage_date
    )
{% endif %}
