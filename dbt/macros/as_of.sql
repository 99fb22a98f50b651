{#- The instant projections are computed at (naive UTC): var `as_of` ('YYYY-MM-DD HH:MM:SS')
    when given (tests, backfills), else the start of the dbt invocation (`run_started_at`, UTC),
    so every model of one build sees the same instant: a build that runs across midnight at
    the end of a month (minutes on Spark) does not mix two current months. A literal, not a
    var, so dbt's partial parse still holds from one build to the next. -#}
{% macro as_of() -%}
    {%- if var('as_of', none) -%}
        cast('{{ var("as_of") }}' as timestamp)
    {%- else -%}
        cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as timestamp)
    {%- endif -%}
{%- endmacro %}
