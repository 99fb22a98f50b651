{#- The value of the row with the greatest (ts, seq): the `latest` aggregation. -#}
{% macro latest_value(value_expression, ts_expression, seq_expression) -%}
    {{ return(adapter.dispatch('latest_value', 'meterworks')(value_expression, ts_expression, seq_expression)) }}
{%- endmacro %}

{% macro default__latest_value(value_expression, ts_expression, seq_expression) -%}
    arg_max({{ value_expression }}, struct_pack(ts := {{ ts_expression }}, seq := {{ seq_expression }}))
{%- endmacro %}

{#- Spark: DuckDB's arg_max skips rows whose value is null, and orders a null struct field
    after every value; Spark's max_by keeps null values and orders nulls first. -#}
{% macro spark__latest_value(value_expression, ts_expression, seq_expression) -%}
    max_by(
        {{ value_expression }},
        case
            when {{ value_expression }} is not null
                then struct(
                    {{ ts_expression }} is null, {{ ts_expression }}, {{ seq_expression }} is null, {{ seq_expression }}
                )
        end
    )
{%- endmacro %}
