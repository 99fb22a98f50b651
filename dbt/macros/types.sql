{#- Quantities are exact decimals, never binary floats (see DESIGN.md "Money"). -#}
{% macro quantity_type() -%}
    decimal(38, 9)
{%- endmacro %}

{#- Cast an expression to the quantity type; text that is not a number becomes null. -#}
{% macro to_quantity(expression) -%}
    {{ return(adapter.dispatch('to_quantity', 'meterworks')(expression)) }}
{%- endmacro %}

{% macro default__to_quantity(expression) -%}
    try_cast({{ expression }} as {{ meterworks.quantity_type() }})
{%- endmacro %}

{#- Counts are BIGINT everywhere: DuckDB's sum(integer) is HUGEINT and reaches pandas as float. -#}
{% macro to_count(expression) -%}
    cast({{ expression }} as {{ dbt.type_bigint() }})
{%- endmacro %}
