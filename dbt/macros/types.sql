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

{#- Spark: the text DuckDB's cast accepts. DuckDB also reads one underscore between digits
    ('1_000'); Spark also reads non-ASCII digits and trims control characters: those are not
    numbers. -#}
{% macro spark__to_quantity(expression) -%}
    transform(array({{ expression }}), quantity_text -> try_cast(
        case
            when quantity_text rlike '[^\\x09-\\x0d\\x20-\\x7e]' then null
            when instr(quantity_text, '_') > 0
                then regexp_replace(quantity_text, '([0-9])_(?=[0-9])', '$1')
            else quantity_text
        end
        as {{ meterworks.quantity_type() }}
    ))[0]
{%- endmacro %}

{#- Counts are BIGINT everywhere: DuckDB's sum(integer) is HUGEINT and reaches pandas as float. -#}
{% macro to_count(expression) -%}
    cast({{ expression }} as {{ dbt.type_bigint() }})
{%- endmacro %}
