{#- The body of the usage marts fct_usage_hourly (grain 'hour') and fct_usage_daily
    (grain 'day'): usage per customer, meter, dimensions and local bucket, aggregated from the
    meter events.

    Both read the meter events, not each other, so the daily mart (and the period totals
    built from it) never waits for the hourly one, the largest aggregation of the project.
    Full builds aggregate int_meter_events. Incremental runs re-aggregate only the keys
    touched by versions after the watermark (new and late events, and the original keys of
    corrected ones), reading the touched customers' events in a window around those buckets;
    a key left without usage gets a zero row, which delete+insert turns into a deletion and the
    post-hook removes. -#}
{% macro usage_rollup(grain) -%}
    {%- set column = 'usage_hour' if grain == 'hour' else 'usage_date' -%}
    {%- set watermark = meterworks.usage_watermark() %}

with
{% if is_incremental() %}
    {{ meterworks.changed_meter_events_ctes(watermark) }},

    changed_keys as (
        select distinct
            customer_id,
            meter_code,
            dimensions,
            {{ meterworks.usage_bucket(grain, 'local_ts') }} as {{ column }}
        from changed_meter_events
    ),

    {#- the local bucket is within a day of its UTC time (offsets are under 15 hours) -#}
    changed_windows as (
        select
            customer_id,
            {{ dbt.dateadd('day', -1, 'cast(min(' ~ column ~ ') as ' ~ dbt.type_timestamp() ~ ')') }}
                as window_start_utc,
            {{ dbt.dateadd('day', 1 if grain == 'hour' else 2, 'cast(max(' ~ column ~ ') as ' ~ dbt.type_timestamp() ~ ')') }}
                as window_end_utc
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
                and {{ meterworks.usage_bucket(grain, 'me.local_ts') }} = k.{{ column }}
    ),
{% else %}
    meter_events as (
        select * from {{ ref('int_meter_events') }}
    ),
{% endif %}

buckets as (
    select
        customer_id,
        meter_code,
        dimensions,
        {{ meterworks.usage_bucket(grain, 'local_ts') }} as {{ column }},
        {%- if grain == 'hour' %}
        min({{ dbt.dateadd('minute', '-offset_minutes', dbt.date_trunc('hour', 'local_ts')) }})
            as hour_start_utc,
        {%- endif %}
        {{ dbt.any_value('timezone') }} as timezone,
        {{ dbt.any_value('aggregation') }} as aggregation,
        {{ meterworks.to_count('count(*)') }} as event_count,
        sum(quantity) as quantity_sum,
        max(quantity) as quantity_max,
        {{ meterworks.latest_value('quantity', 'event_ts', 'event_seq', "aggregation = 'latest'") }}
            as quantity_latest,
        max(event_ts) as last_event_at,
        max(event_seq) as last_event_seq
    from meter_events
    group by 1, 2, 3, 4
),

{# Distinct values per bucket, counted in two steps: a plain group-by is much cheaper than
    count(distinct ...) next to other aggregates. #}
unique_values as (
    select distinct
        customer_id,
        meter_code,
        dimensions,
        unique_value,
        {{ meterworks.usage_bucket(grain, 'local_ts') }} as {{ column }}
    from meter_events
    where aggregation = 'unique_count' and unique_value is not null
),

unique_counts as (
    select
        customer_id,
        meter_code,
        dimensions,
        {{ column }},
        count(*) as unique_values
    from unique_values
    group by 1, 2, 3, 4
),

final as (
    select
        b.customer_id,
        b.meter_code,
        b.dimensions,
        b.{{ column }},
        {%- if grain == 'hour' %}
        b.hour_start_utc,
        {%- endif %}
        b.timezone,
        b.aggregation,
        cast(
            case b.aggregation
                when 'count' then b.event_count
                when 'sum' then coalesce(b.quantity_sum, 0)
                when 'max' then b.quantity_max
                when 'unique_count' then coalesce(u.unique_values, 0)
                when 'latest' then b.quantity_latest
            end as {{ meterworks.quantity_type() }}
        ) as quantity,
        b.event_count,
        b.last_event_at,
        b.last_event_seq
    from buckets as b
    left join unique_counts as u
        on
            b.customer_id = u.customer_id
            and b.meter_code = u.meter_code
            and b.dimensions = u.dimensions
            and b.{{ column }} = u.{{ column }}
)

select * from final
{% if is_incremental() %}
    union all
    select
        k.customer_id,
        k.meter_code,
        k.dimensions,
        k.{{ column }},
        {%- if grain == 'hour' %}
        null as hour_start_utc,
        {%- endif %}
        null as timezone,
        null as aggregation,
        null as quantity,
        0 as event_count,
        null as last_event_at,
        null as last_event_seq
    from changed_keys as k
    where not exists (
        select 1
        from final as f
        where
            k.customer_id = f.customer_id
            and k.meter_code = f.meter_code
            and k.dimensions = f.dimensions
            and k.{{ column }} = f.{{ column }}
    )
{% endif %}
{%- endmacro %}

{#- The local bucket of a local timestamp: its hour, or its date. -#}
{% macro usage_bucket(grain, local_ts) -%}
    {%- if grain == 'hour' -%}
        {{ dbt.date_trunc('hour', local_ts) }}
    {%- else -%}
        cast({{ local_ts }} as date)
    {%- endif -%}
{%- endmacro %}
