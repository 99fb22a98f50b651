{#- The value of the row with the greatest (ts, seq): the `latest` aggregation. -#}
{% macro latest_value(value_expression, ts_expression, seq_expression) -%}
    {{ return(adapter.dispatch('latest_value', 'meterworks')(value_expression, ts_expression, seq_expression)) }}
{%- endmacro %}

{% macro default__latest_value(value_expression, ts_expression, seq_expression) -%}
    arg_max({{ value_expression }}, struct_pack(ts := {{ ts_expression }}, seq := {{ seq_expression }}))
{%- endmacro %}

{% macro spark__latest_value(value_expression, ts_expression, seq_expression) -%}
    max_by({{ value_expression }}, struct({{ ts_expression }}, {{ seq_expression }}))
{%- endmacro %}
