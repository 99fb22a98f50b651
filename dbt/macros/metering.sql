{#- The meter application, shared by the int_meter_events view (full builds) and by the
    incremental branches of the usage marts (which apply it to a small set of versions).

    `versions` names a relation or CTE with the columns of int_event_versions. Returns one
    row per (version, meter listening to its event name) whose filters all match, with the
    meter's value, the canonical dimensions and the customer's local time. -#}
{% macro apply_meters(versions) -%}
    select
        v.transaction_id,
        v.event_seq,
        v.superseded_at_seq,
        v.customer_id,
        v.event_name,
        v.event_ts,
        m.meter_code,
        m.aggregation,
        {{ meterworks.dimensions_json('m.group_by', 'v.properties') }} as dimensions,
        case
            when m.aggregation in ('sum', 'max', 'latest')
                then {{ meterworks.to_quantity(meterworks.json_extract_text('v.properties', 'm.property')) }}
        end as quantity,
        case
            when m.aggregation = 'unique_count'
                then {{ meterworks.json_extract_text('v.properties', 'm.property') }}
        end as unique_value,
        o.timezone,
        o.offset_minutes,
        {{ dbt.dateadd('minute', 'o.offset_minutes', 'v.event_ts') }} as local_ts
    from {{ versions }} as v
    inner join {{ ref('stg_meterworks__meters') }} as m
        on v.event_name = m.event_name
    left join {{ ref('stg_meterworks__customers') }} as c
        on v.customer_id = c.customer_id
    inner join {{ ref('int_timezone_offsets') }} as o
        on
            coalesce(c.timezone, 'UTC') = o.timezone
            and {{ meterworks.floor_to_15_minutes('v.event_ts') }} = o.bucket_start_utc
    where m.filter_count = 0 or {{ meterworks.filters_match('m.filters', 'v.properties') }}
{%- endmacro %}

{#- The incremental watermark of a usage model: the highest event_seq it has aggregated.
    Rendered as a literal so the engine can prune on it. -#}
{% macro usage_watermark() -%}
    {%- if execute and is_incremental() -%}
        {%- set result = run_query('select coalesce(max(last_event_seq), -1) from ' ~ this) -%}
        {{- result.columns[0].values()[0] -}}
    {%- else -%}
        -1
    {%- endif -%}
{%- endmacro %}

{#- CTEs `changed_versions` and `changed_meter_events`: every non-void version that became
    effective after the watermark (new records and amends, late events included) and every
    version superseded after it (the original content of voided/amended transactions), with
    meters applied. Their keys are exactly the usage keys whose aggregates may have changed. -#}
{% macro changed_meter_events_ctes(watermark) -%}
    changed_versions as (
        select *
        from {{ ref('int_event_versions') }}
        where
            action != 'void'
            and (event_seq > {{ watermark }} or superseded_at_seq > {{ watermark }})
    ),

    changed_meter_events as (
        {{ meterworks.apply_meters('changed_versions') }}
    )
{%- endmacro %}

{#- CTE `candidate_versions`: effective versions of the customers in `changed_windows`
    (customer_id, window_start_utc, window_end_utc) inside their UTC window: a cheap superset of
    the events to re-aggregate, filtered before any JSON is parsed. With `event_names`, only
    events those meters listen to. -#}
{% macro candidate_versions_cte(changed_windows, event_names=none) -%}
    customer_windows as (
        select
            customer_id,
            min(window_start_utc) as window_start_utc,
            max(window_end_utc) as window_end_utc
        from {{ changed_windows }}
        group by 1
    ),

    candidate_versions as (
        select e.*
        from {{ ref('int_events_effective') }} as e
        inner join customer_windows as w
            on
                e.customer_id = w.customer_id
                and e.event_ts >= w.window_start_utc
                and e.event_ts < w.window_end_utc
        {%- if event_names %}
        where e.event_name in (select m.event_name from {{ event_names }} as m)
        {%- endif %}
    )
{%- endmacro %}

{#- CTEs `unique_count_meters`, `candidate_versions`, `candidate_meter_events` and
    `unique_meter_events`: the effective meter events of unique_count meters that fall in a
    changed key (`changed_keys`: customer_id, meter_code, dimensions, `period_column`, plus the
    UTC window columns candidate_versions_cte reads), where `period_expression` maps an event
    (alias `me`) to its period. A distinct count cannot be rolled up from smaller grains, so
    the changed keys' whole periods are re-read. -#}
{% macro changed_unique_meter_events_ctes(changed_keys, period_expression, period_column) -%}
    unique_count_meters as (
        select event_name from {{ ref('stg_meterworks__meters') }}
        where aggregation = 'unique_count'
    ),

    {{ meterworks.candidate_versions_cte(changed_keys, 'unique_count_meters') }},

    candidate_meter_events as (
        {{ meterworks.apply_meters('candidate_versions') }}
    ),

    unique_meter_events as (
        select me.*
        from candidate_meter_events as me
        where
            me.aggregation = 'unique_count'
            and exists (
                select 1
                from {{ changed_keys }} as k
                where
                    me.customer_id = k.customer_id
                    and me.meter_code = k.meter_code
                    and me.dimensions = k.dimensions
                    and {{ period_expression }} = k.{{ period_column }}
            )
    )
{%- endmacro %}
