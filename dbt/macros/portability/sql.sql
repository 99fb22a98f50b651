{#- Portable SQL: adapter-dispatched spellings of what DuckDB and Spark write differently, for
    the constructs dbt has no cross-database macro for. The default__ variants are the DuckDB
    SQL the project was written in (other adapters add their own __ variants). -#}

{#- One row per element of an array, in a select list (no rows for an empty or null array). -#}
{% macro unnest(array_expression) -%}
    {{ return(adapter.dispatch('unnest', 'meterworks')(array_expression)) }}
{%- endmacro %}

{% macro default__unnest(array_expression) -%}
    unnest({{ array_expression }})
{%- endmacro %}

{% macro spark__unnest(array_expression) -%}
    explode({{ array_expression }})
{%- endmacro %}

{#- Select-list columns `value_alias` and `ordinal_alias` (1-based position): one row per
    element of an array. -#}
{% macro unnest_with_ordinal(array_expression, value_alias, ordinal_alias) -%}
    {{ return(adapter.dispatch('unnest_with_ordinal', 'meterworks')(array_expression, value_alias, ordinal_alias)) }}
{%- endmacro %}

{% macro default__unnest_with_ordinal(array_expression, value_alias, ordinal_alias) -%}
    unnest({{ array_expression }}) as {{ value_alias }},
    generate_subscripts({{ array_expression }}, 1) as {{ ordinal_alias }}
{%- endmacro %}

{% macro spark__unnest_with_ordinal(array_expression, value_alias, ordinal_alias) -%}
    inline(transform(
        {{ array_expression }},
        (x, i) -> named_struct('{{ ordinal_alias }}', i + 1, '{{ value_alias }}', x)
    ))
{%- endmacro %}

{#- An array of the values from `start` to `stop` (both included) by `step` (an interval for
    dates and timestamps). -#}
{% macro series(start_expression, stop_expression, step_expression) -%}
    {{ return(adapter.dispatch('series', 'meterworks')(start_expression, stop_expression, step_expression)) }}
{%- endmacro %}

{% macro default__series(start_expression, stop_expression, step_expression) -%}
    generate_series({{ start_expression }}, {{ stop_expression }}, {{ step_expression }})
{%- endmacro %}

{% macro spark__series(start_expression, stop_expression, step_expression) -%}
    sequence({{ start_expression }}, {{ stop_expression }}, {{ step_expression }})
{%- endmacro %}

{#- An array of the integers start, start + 1, ..., stop - 1. -#}
{% macro int_range(start, stop) -%}
    {{ return(adapter.dispatch('int_range', 'meterworks')(start, stop)) }}
{%- endmacro %}

{% macro default__int_range(start, stop) -%}
    range({{ start }}, {{ stop }})
{%- endmacro %}

{% macro spark__int_range(start, stop) -%}
    sequence({{ start }}, {{ stop }} - 1)
{%- endmacro %}

{#- A join (last item of a FROM clause) adding one row per element of `array_expression`,
    as `alias.column_name`; rows whose array is empty or null are dropped. -#}
{% macro cross_join_unnest(array_expression, alias, column_name) -%}
    {{ return(adapter.dispatch('cross_join_unnest', 'meterworks')(array_expression, alias, column_name)) }}
{%- endmacro %}

{% macro default__cross_join_unnest(array_expression, alias, column_name) -%}
    cross join lateral (
        select unnest({{ array_expression }}) as {{ column_name }}
    ) as {{ alias }}
{%- endmacro %}

{% macro spark__cross_join_unnest(array_expression, alias, column_name) -%}
    lateral view explode({{ array_expression }}) {{ alias }} as {{ column_name }}
{%- endmacro %}

{#- last_value(expression) ignoring nulls (follow with `over (...)`). -#}
{% macro last_value_ignore_nulls(expression) -%}
    {{ return(adapter.dispatch('last_value_ignore_nulls', 'meterworks')(expression)) }}
{%- endmacro %}

{% macro default__last_value_ignore_nulls(expression) -%}
    last_value({{ expression }} ignore nulls)
{%- endmacro %}

{% macro spark__last_value_ignore_nulls(expression) -%}
    last_value({{ expression }}, true)
{%- endmacro %}

{#- The distinct values of a text expression, sorted, joined by `delimiter` (a group
    aggregate; dbt.listagg ignores its ORDER BY on Spark). -#}
{% macro sorted_distinct_string_agg(expression, delimiter) -%}
    {{ return(adapter.dispatch('sorted_distinct_string_agg', 'meterworks')(expression, delimiter)) }}
{%- endmacro %}

{% macro default__sorted_distinct_string_agg(expression, delimiter) -%}
    string_agg(distinct {{ expression }}, {{ delimiter }} order by {{ expression }})
{%- endmacro %}

{% macro spark__sorted_distinct_string_agg(expression, delimiter) -%}
    array_join(array_sort(collect_set({{ expression }})), {{ delimiter }})
{%- endmacro %}

{#- The type JSON documents are held in. -#}
{% macro type_json() -%}
    {{ return(adapter.dispatch('type_json', 'meterworks')()) }}
{%- endmacro %}

{% macro default__type_json() -%}
    json
{%- endmacro %}

{% macro spark__type_json() -%}
    string
{%- endmacro %}

{#- numerator ÷ denominator as decimal(38, 9), rounded half away from zero, exactly (no trip
    through a float): the numerator (a DECIMAL with at most 9 decimal places, |n| < 10^19) is
    scaled to an integer of 1e-9 units and divided as an integer. denominator: a positive
    integer below 10^9. -#}
{% macro quantity_divide(numerator_expression, denominator_expression) -%}
    {{ return(adapter.dispatch('quantity_divide', 'meterworks')(numerator_expression, denominator_expression)) }}
{%- endmacro %}

{% macro default__quantity_divide(numerator_expression, denominator_expression) -%}
    {%- set scaled = 'cast(round(cast(' ~ numerator_expression ~ ' as decimal(38, 9)) * 1000000000, 0) as hugeint)' -%}
    {%- set denominator = 'cast(' ~ denominator_expression ~ ' as hugeint)' -%}
    cast(
        cast(
            sign({{ scaled }}) * ((abs({{ scaled }}) * 2 + {{ denominator }}) // ({{ denominator }} * 2))
            as decimal(28, 0)
        ) * cast(0.000000001 as decimal(9, 9))
        as decimal(38, 9)
    )
{%- endmacro %}

{#- Spark: decimal(28, 0) ÷ decimal(10, 0) keeps 9 decimal places, so floor() of it is exact
    for denominators below 10^9; decimal(28, 0) × decimal(9, 9) needs no precision loss. -#}
{% macro spark__quantity_divide(numerator_expression, denominator_expression) -%}
    {%- set scaled = 'cast(round(cast(' ~ numerator_expression ~ ' as decimal(29, 9)) * 1000000000, 0) as decimal(28, 0))' -%}
    {%- set denominator = 'cast(' ~ denominator_expression ~ ' as decimal(10, 0))' -%}
    cast(
        cast(
            case when {{ scaled }} < 0 then -1 else 1 end
            * floor(
                cast(abs({{ scaled }}) * 2 + {{ denominator }} as decimal(29, 0))
                / cast({{ denominator }} * 2 as decimal(10, 0))
            )
            as decimal(28, 0)
        ) * cast(0.000000001 as decimal(9, 9))
        as decimal(38, 9)
    )
{%- endmacro %}

{#- Sum (or difference: pass a negated term) of quantity expressions as decimal(38, 9),
    exactly on every engine: Spark widens decimal(38, 9) + decimal(38, 9) past 38 digits and then
    drops decimal places, so the terms are added as decimal(36, 9) (27 integer digits). -#}
{% macro add_quantities() -%}
    cast(
        {%- for term in varargs %}
        {{ '+ ' if not loop.first }}cast({{ term }} as decimal(36, 9))
        {%- endfor %}
        as {{ meterworks.quantity_type() }}
    )
{%- endmacro %}
