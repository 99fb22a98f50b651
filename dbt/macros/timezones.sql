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

{% macro spark__local_to_utc(ts_expression, tz_expression) -%}
    to_utc_timestamp({{ ts_expression }}, {{ tz_expression }})
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

{% macro spark__floor_to_15_minutes(ts_expression) -%}
    window({{ ts_expression }}, '15 minutes').start
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
