{#- The value of the row with the greatest (ts, seq): the `latest` aggregation. With
    `where_expression`, only over the rows where it holds (NULL when there are none). -#}
{% macro latest_value(value_expression, ts_expression, seq_expression, where_expression=none) -%}
    {{ return(adapter.dispatch('latest_value', 'meterworks')(value_expression, ts_expression, seq_expression, where_expression)) }}
{%- endmacro %}

{#- A FILTER clause: cheaper than CASE expressions feeding every row into the aggregate. -#}
{% macro default__latest_value(value_expression, ts_expression, seq_expression, where_expression=none) -%}
    arg_max({{ value_expression }}, struct_pack(ts := {{ ts_expression }}, seq := {{ seq_expression }}))
    {%- if where_expression is not none %} filter (where {{ where_expression }}){% endif %}
{%- endmacro %}

{#- Spark: DuckDB's arg_max skips rows whose value is null, and orders a null struct field
    after every value; Spark's max_by keeps null values and orders nulls first. -#}
{% macro spark__latest_value(value_expression, ts_expression, seq_expression, where_expression=none) -%}
    {%- if where_expression is not none -%}
        {%- set value_expression = 'case when ' ~ where_expression ~ ' then ' ~ value_expression ~ ' end' -%}
        {%- set ts_expression = 'case when ' ~ where_expression ~ ' then ' ~ ts_expression ~ ' end' -%}
    {%- endif %}
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
