{#- JSON access beyond macros/json.sql, for the Stripe objects. DuckDB keeps JSON values typed
    (json_type, json_extract_string); Spark's get_json_object returns a scalar as its text
    (a string unquoted) and an object or array as its JSON text, which these helpers follow. -#}

{#- The JSON value at a dotted path, as JSON (objects and arrays stay documents). -#}
{% macro json_path_json(json_expression, path) -%}
    {{ return(adapter.dispatch('json_path_json', 'meterworks')(json_expression, path)) }}
{%- endmacro %}

{% macro default__json_path_json(json_expression, path) -%}
    json_extract({{ json_expression }}, '$.{{ path }}')
{%- endmacro %}

{% macro spark__json_path_json(json_expression, path) -%}
    get_json_object({{ json_expression }}, '$.{{ path }}')
{%- endmacro %}

{#- True when a JSON value (from json_path_json or json_path_array) is an object. -#}
{% macro json_is_object(json_expression) -%}
    {{ return(adapter.dispatch('json_is_object', 'meterworks')(json_expression)) }}
{%- endmacro %}

{% macro default__json_is_object(json_expression) -%}
    json_type({{ json_expression }}) = 'OBJECT'
{%- endmacro %}

{% macro spark__json_is_object(json_expression) -%}
    left(ltrim({{ json_expression }}), 1) = '{'
{%- endmacro %}

{#- True when a JSON value is a string (on Spark: a scalar that is not an object or array). -#}
{% macro json_is_string(json_expression) -%}
    {{ return(adapter.dispatch('json_is_string', 'meterworks')(json_expression)) }}
{%- endmacro %}

{% macro default__json_is_string(json_expression) -%}
    json_type({{ json_expression }}) = 'VARCHAR'
{%- endmacro %}

{% macro spark__json_is_string(json_expression) -%}
    left(ltrim({{ json_expression }}), 1) not in ('{', '[')
{%- endmacro %}

{#- The text of a JSON string value. -#}
{% macro json_string_value(json_expression) -%}
    {{ return(adapter.dispatch('json_string_value', 'meterworks')(json_expression)) }}
{%- endmacro %}

{% macro default__json_string_value(json_expression) -%}
    json_extract_string({{ json_expression }}, '$')
{%- endmacro %}

{% macro spark__json_string_value(json_expression) -%}
    {{ json_expression }}
{%- endmacro %}

{#- The elements of a JSON array (from json_path_array) whose `key` equals the text `value`. -#}
{% macro json_array_where(array_expression, key, value) -%}
    {{ return(adapter.dispatch('json_array_where', 'meterworks')(array_expression, key, value)) }}
{%- endmacro %}

{% macro default__json_array_where(array_expression, key, value) -%}
    list_filter({{ array_expression }}, lambda x: json_extract_string(x, '$.{{ key }}') = '{{ value }}')
{%- endmacro %}

{% macro spark__json_array_where(array_expression, key, value) -%}
    filter({{ array_expression }}, x -> get_json_object(x, '$.{{ key }}') = '{{ value }}')
{%- endmacro %}
