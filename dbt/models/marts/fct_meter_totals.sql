{{
    config(
        materialized=('table' if target.type == 'spark' else 'incremental'),
        incremental_strategy='delete+insert',
        unique_key=['customer_id', 'meter_code', 'dimensions', 'period_month'],
        post_hook="{{ meterworks.delete_empty_usage_rows() }}",
    )
}}

{#- Meter totals per customer, meter, dimensions and billing period (the customer's local
    calendar month). count/sum/max/latest roll up from fct_usage_daily; unique_count is a
    distinct count over the whole period, computed from the meter events. -#}

-- depends_on: {{ ref('int_event_versions') }}
-- depends_on: {{ ref('int_events_effective') }}
-- depends_on: {{ ref('stg_meterworks__meters') }}
-- depends_on: {{ ref('stg_meterworks__customers') }}
-- depends_on: {{ ref('int_timezone_offsets') }}

{%- set watermark = meterworks.usage_watermark() %}
{%- set month_of_event = 'cast(' ~ dbt.date_trunc('month', 'me.local_ts') ~ ' as date)' %}

with
{% if is_incremental() %}
    {{ meterworks.changed_meter_events_ctes(watermark) }},

    changed_keys as (
        select distinct
            customer_id,
            meter_code,
            dimensions,
            cast({{ dbt.date_trunc('month', 'local_ts') }} as date) as period_month,
            {{ dbt.dateadd('day', -1, dbt.date_trunc('month', 'local_ts')) }} as window_start_utc,
            {{ dbt.dateadd('day', 1, dbt.dateadd('month', 1, dbt.date_trunc('month', 'local_ts'))) }}
                as window_end_utc
        from changed_meter_events
    ),

    {{ meterworks.changed_unique_meter_events_ctes('changed_keys', month_of_event, 'period_month') }},

    daily as (
        select d.*
        from {{ ref('fct_usage_daily') }} as d
        where exists (
            select 1
            from changed_keys as k
            where
                d.customer_id = k.customer_id
                and d.meter_code = k.meter_code
                and d.dimensions = k.dimensions
                and cast({{ dbt.date_trunc('month', 'd.usage_date') }} as date) = k.period_month
        )
    ),
{% else %}
    unique_meter_events as (
        select * from {{ ref('int_meter_events') }}
        where aggregation = 'unique_count'
    ),

    daily as (
        select * from {{ ref('fct_usage_daily') }}
    ),
{% endif %}

unique_values as (
    select distinct
        customer_id,
        meter_code,
        dimensions,
        cast({{ dbt.date_trunc('month', 'local_ts') }} as date) as period_month,
        unique_value
    from unique_meter_events
    where unique_value is not null
),

unique_counts as (
    select
        customer_id,
        meter_code,
        dimensions,
        period_month,
        count(*) as unique_values
    from unique_values
    group by 1, 2, 3, 4
),

periods as (
    select
        customer_id,
        meter_code,
        dimensions,
        cast({{ dbt.date_trunc('month', 'usage_date') }} as date) as period_month,
        {{ dbt.any_value('timezone') }} as timezone,
        {{ dbt.any_value('aggregation') }} as aggregation,
        {{ meterworks.to_count('sum(event_count)') }} as event_count,
        sum(quantity) as quantity_sum,
        max(quantity) as quantity_max,
        {{ meterworks.latest_value('quantity', 'last_event_at', 'last_event_seq') }} as quantity_latest,
        max(last_event_at) as last_event_at,
        max(last_event_seq) as last_event_seq
    from daily
    group by 1, 2, 3, 4
),

final as (
    select
        p.customer_id,
        p.meter_code,
        p.dimensions,
        p.period_month,
        {{ meterworks.local_to_utc('cast(p.period_month as timestamp)', 'p.timezone') }} as period_start,
        {{ meterworks.local_to_utc(dbt.dateadd('month', 1, 'cast(p.period_month as timestamp)'), 'p.timezone') }}
            as period_end,
        p.timezone,
        p.aggregation,
        cast(
            case p.aggregation
                when 'count' then p.event_count
                when 'sum' then p.quantity_sum
                when 'max' then p.quantity_max
                when 'unique_count' then coalesce(u.unique_values, 0)
                when 'latest' then p.quantity_latest
            end as {{ meterworks.quantity_type() }}
        ) as quantity,
        p.event_count,
        p.last_event_at,
        p.last_event_seq
    from periods as p
    left join unique_counts as u
        on
            p.customer_id = u.customer_id
            and p.meter_code = u.meter_code
            and p.dimensions = u.dimensions
            and p.period_month = u.period_month
)

select * from final
{% if is_incremental() %}
    union all
    select
        k.customer_id,
        k.meter_code,
        k.dimensions,
        k.period_month,
        null as period_start,
        null as period_end,
        null as timezone,
        null as aggregation,
        null as quantity,
        0 as event_count,
        null as last_event_at,
        null as last_event_seq
    from (select distinct customer_id, meter_code, dimensions, period_month from changed_keys) as k
    where not exists (
        select 1
        from final as f
        where
            k.customer_id = f.customer_id
            and k.meter_code = f.meter_code
            and k.dimensions = f.dimensions
            and k.period_month = f.period_month
    )
{% endif %}
