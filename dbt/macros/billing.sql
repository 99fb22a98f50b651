{#- Measured usage of arbitrary windows: `windows` names a relation/CTE with columns
    window_key (unique), customer_id, meter_code, window_start, window_end (UTC, end
    exclusive). Returns window_key, quantity (the meter's aggregation over the window, all
    dimensions together; 0 without events) and event_count. Billing windows do not follow
    local days (anniversary periods start at any second), so this reads the meter events. -#}
{% macro measure_usage(windows) -%}
    select
        w.window_key,
        {{ meterworks.to_count('count(e.transaction_id)') }} as event_count,
        cast(
            coalesce(
                case {{ dbt.any_value('m.aggregation') }}
                    when 'count' then count(e.transaction_id)
                    when 'sum' then sum(e.quantity)
                    when 'max' then max(e.quantity)
                    when 'latest' then {{ meterworks.latest_value('e.quantity', 'e.event_ts', 'e.event_seq') }}
                    when 'unique_count' then count(distinct e.unique_value)
                end,
                0
            ) as {{ meterworks.quantity_type() }}
        ) as quantity
    from {{ windows }} as w
    inner join {{ ref('stg_meterworks__meters') }} as m on w.meter_code = m.meter_code
    left join {{ ref('int_meter_events') }} as e
        on
            w.customer_id = e.customer_id
            and w.meter_code = e.meter_code
            and e.event_ts >= w.window_start
            and e.event_ts < w.window_end
    group by w.window_key
{%- endmacro %}

{#- A timestamp plus `count_expression` Stripe billing intervals (day, week, month, year).
    Months add from the anchor, so a period anchored on the 31st ends on the last day of
    shorter months, as Stripe does. -#}
{% macro add_interval(ts_expression, interval_expression, count_expression) -%}
    case {{ interval_expression }}
        when 'day' then {{ dbt.dateadd('day', count_expression, ts_expression) }}
        when 'week' then {{ dbt.dateadd('day', '7 * (' ~ count_expression ~ ')', ts_expression) }}
        when 'year' then {{ dbt.dateadd('month', '12 * (' ~ count_expression ~ ')', ts_expression) }}
        else {{ dbt.dateadd('month', count_expression, ts_expression) }}
    end
{%- endmacro %}
