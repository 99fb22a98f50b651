{#- Time-zone helpers. Timestamps in the warehouse are naive UTC; local times are naive
    wall-clock times in the customer's IANA zone. -#}

{#- A naive UTC timestamp to naive local wall-clock time in `tz_expression`. -#}
{% macro utc_to_local(ts_expression, tz_expression) -%}
    {{ return(adapter.dispatch('utc_to_local', 'meterworks')(ts_expression, tz_expression)) }}
{%- endmacro %}

{% macro default__utc_to_local(ts_expression, tz_expression) -%}
    timezone({{ tz_expression }}, timezone('UTC', {{ ts_expression }}))
{%- endmacro %}

{% macro spark__utc_to_local(ts_expression, tz_expression) -%}
    from_utc_timestamp({{ ts_expression }}, {{ tz_expression }})
{%- endmacro %}

{#- A naive local wall-clock time in `tz_expression` to the naive UTC instant. -#}
{% macro local_to_utc(ts_expression, tz_expression) -%}
    {{ return(adapter.dispatch('local_to_utc', 'meterworks')(ts_expression, tz_expression)) }}
{%- endmacro %}

{% macro default__local_to_utc(ts_expression, tz_expression) -%}
    timezone('UTC', timezone({{ tz_expression }}, {{ ts_expression }}))
{%- endmacro %}

{#- Spark: a wall-clock time a DST fall-back repeats is the later instant, as on DuckDB (ICU);
    Spark's to_utc_timestamp takes the earlier. A skipped wall-clock time moves forward on both.
    `later` uses the offset in force a day after the earlier instant and counts only if it
    reads back as the same wall-clock time. -#}
{% macro spark__local_to_utc(ts_expression, tz_expression) -%}
    transform(
        array(named_struct('local_ts', cast({{ ts_expression }} as timestamp), 'tz', {{ tz_expression }})),
        x -> transform(array(to_utc_timestamp(x.local_ts, x.tz)), earlier -> transform(
            array(timestamp_micros(unix_micros(x.local_ts) - (
                unix_micros(from_utc_timestamp(earlier + interval 1 day, x.tz)) - unix_micros(earlier + interval 1 day)
            ))),
            later -> case
                when later > earlier and from_utc_timestamp(later, x.tz) = x.local_ts then later
                else earlier
            end
        )[0])[0]
    )[0]
{%- endmacro %}

{#- Start of the UTC 15-minute bucket holding a timestamp. Every real UTC offset is a multiple
    of 15 minutes and changes only on such a boundary, so all events of one bucket share
    the customer's offset: converting buckets instead of rows is exact and far cheaper. -#}
{% macro floor_to_15_minutes(ts_expression) -%}
    {{ return(adapter.dispatch('floor_to_15_minutes', 'meterworks')(ts_expression)) }}
{%- endmacro %}

{% macro default__floor_to_15_minutes(ts_expression) -%}
    time_bucket(interval '15 minutes', {{ ts_expression }})
{%- endmacro %}

{#- Spark: on whole epoch seconds (the session time zone is UTC, see profiles.yml; Spark's
    window() is not allowed in a join condition). -#}
{% macro spark__floor_to_15_minutes(ts_expression) -%}
    timestamp_seconds(floor(unix_seconds({{ ts_expression }}) / 900) * 900)
{%- endmacro %}

{#- A timestamp plus a whole number of minutes, to the microsecond (dbt's dateadd on Spark
    goes through epoch seconds and drops the fraction). -#}
{% macro add_minutes(ts_expression, minutes_expression) -%}
    {{ return(adapter.dispatch('add_minutes', 'meterworks')(ts_expression, minutes_expression)) }}
{%- endmacro %}

{% macro default__add_minutes(ts_expression, minutes_expression) -%}
    {{ dbt.dateadd('minute', minutes_expression, ts_expression) }}
{%- endmacro %}

{% macro spark__add_minutes(ts_expression, minutes_expression) -%}
    timestamp_micros(unix_micros({{ ts_expression }}) + cast({{ minutes_expression }} as bigint) * 60000000)
{%- endmacro %}

{#- Rows (bucket_start_utc) for every 15-minute bucket in [start, end]. -#}
{% macro fifteen_minute_buckets(start_expression, end_expression) -%}
    {{ return(adapter.dispatch('fifteen_minute_buckets', 'meterworks')(start_expression, end_expression)) }}
{%- endmacro %}

{% macro default__fifteen_minute_buckets(start_expression, end_expression) -%}
    select unnest(generate_series({{ start_expression }}, {{ end_expression }}, interval '15 minutes')) as bucket_start_utc
{%- endmacro %}

{% macro spark__fifteen_minute_buckets(start_expression, end_expression) -%}
    select explode(sequence({{ start_expression }}, {{ end_expression }}, interval 15 minutes)) as bucket_start_utc
{%- endmacro %}
