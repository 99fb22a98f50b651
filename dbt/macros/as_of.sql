{#- The instant projections are computed at (naive UTC): var `as_of` ('YYYY-MM-DD HH:MM:SS')
    when given (tests, backfills), else the current time. -#}
{% macro as_of() -%}
    {%- if var('as_of', none) -%}
        cast('{{ var("as_of") }}' as timestamp)
    {%- else -%}
        cast({{ meterworks.utc_to_local(dbt.current_timestamp(), "'UTC'") }} as timestamp)
    {%- endif -%}
{%- endmacro %}
