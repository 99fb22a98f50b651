{#- JSON helpers. The raw layer stores JSON as text so it stays portable; every engine
    spells JSON access differently, so each helper is adapter-dispatched. -#}

{#- The value of top-level key `key_expression` (a SQL expression) as text; null when absent. -#}
{% macro json_extract_text(json_expression, key_expression) -%}
    {{ return(adapter.dispatch('json_extract_text', 'meterworks')(json_expression, key_expression)) }}
{%- endmacro %}

{% macro default__json_extract_text(json_expression, key_expression) -%}
    json_extract_string({{ json_expression }}, '$."' || {{ key_expression }} || '"')
{%- endmacro %}

{% macro spark__json_extract_text(json_expression, key_expression) -%}
    get_json_object({{ json_expression }}, concat('$.', {{ key_expression }}))
{%- endmacro %}

{#- A text expression quoted as a JSON string literal ('null' when null). -#}
{% macro json_quote_text(expression) -%}
    {{ return(adapter.dispatch('json_quote_text', 'meterworks')(expression)) }}
{%- endmacro %}

{% macro default__json_quote_text(expression) -%}
    coalesce(to_json(cast({{ expression }} as {{ dbt.type_string() }})), 'null')
{%- endmacro %}

{% macro spark__json_quote_text(expression) -%}
    coalesce(to_json(array({{ expression }})), '[null]')
{%- endmacro %}

{#- A JSON array of strings (text) parsed into an array. -#}
{% macro parse_json_string_array(json_expression) -%}
    {{ return(adapter.dispatch('parse_json_string_array', 'meterworks')(json_expression)) }}
{%- endmacro %}

{% macro default__parse_json_string_array(json_expression) -%}
    cast(coalesce(from_json({{ json_expression }}, '["VARCHAR"]'), []) as {{ dbt.type_string() }}[])
{%- endmacro %}

{% macro spark__parse_json_string_array(json_expression) -%}
    coalesce(from_json({{ json_expression }}, 'array<string>'), array())
{%- endmacro %}

{#- Meter filters: a JSON object {property: [allowed values]} parsed into an array of
    {property, allowed_values} structs, so any number of filters is applied generically. -#}
{% macro parse_json_filters(json_expression) -%}
    {{ return(adapter.dispatch('parse_json_filters', 'meterworks')(json_expression)) }}
{%- endmacro %}

{% macro default__parse_json_filters(json_expression) -%}
    list_transform(
        coalesce(json_keys({{ json_expression }}), []),
        lambda k: struct_pack(
            property := k,
            allowed_values := coalesce(
                from_json(json_extract({{ json_expression }}, '$."' || k || '"'), '["VARCHAR"]'), []
            )
        )
    )
{%- endmacro %}

{% macro spark__parse_json_filters(json_expression) -%}
    transform(
        map_entries(from_json({{ json_expression }}, 'map<string, array<string>>')),
        e -> named_struct('property', e.key, 'allowed_values', e.value)
    )
{%- endmacro %}

{#- True when every filter's property has one of its allowed values in the event properties. -#}
{% macro filters_match(filters_expression, properties_expression) -%}
    {{ return(adapter.dispatch('filters_match', 'meterworks')(filters_expression, properties_expression)) }}
{%- endmacro %}

{% macro default__filters_match(filters_expression, properties_expression) -%}
    coalesce(list_bool_and(list_transform(
        {{ filters_expression }},
        lambda f: coalesce(list_contains(f.allowed_values, {{ meterworks.json_extract_text(properties_expression, 'f.property') }}), false)
    )), true)
{%- endmacro %}

{% macro spark__filters_match(filters_expression, properties_expression) -%}
    forall(
        {{ filters_expression }},
        f -> coalesce(array_contains(f.allowed_values, {{ meterworks.json_extract_text(properties_expression, 'f.property') }}), false)
    )
{%- endmacro %}

{#- Canonical JSON text of the group-by values, in group-by order: '{"model":"gpt-4o"}';
    '{}' when the meter has no group-by. Values are rendered as JSON strings. -#}
{% macro dimensions_json(group_by_expression, properties_expression) -%}
    {{ return(adapter.dispatch('dimensions_json', 'meterworks')(group_by_expression, properties_expression)) }}
{%- endmacro %}

{% macro default__dimensions_json(group_by_expression, properties_expression) -%}
    case
        when len({{ group_by_expression }}) = 0 then '{}'
        else '{' || array_to_string(list_transform(
            {{ group_by_expression }},
            lambda k: {{ meterworks.json_quote_text('k') }} || ':'
            || {{ meterworks.json_quote_text(meterworks.json_extract_text(properties_expression, 'k')) }}
        ), ',') || '}'
    end
{%- endmacro %}

{% macro spark__dimensions_json(group_by_expression, properties_expression) -%}
    concat('{', array_join(transform(
        {{ group_by_expression }},
        k -> concat(to_json(array(k)), ':', to_json(array({{ meterworks.json_extract_text(properties_expression, 'k') }})))
    ), ','), '}')
{%- endmacro %}

{#- Number of elements of an array. -#}
{% macro array_length(expression) -%}
    {{ return(adapter.dispatch('array_length', 'meterworks')(expression)) }}
{%- endmacro %}

{% macro default__array_length(expression) -%}
    len({{ expression }})
{%- endmacro %}

{% macro spark__array_length(expression) -%}
    size({{ expression }})
{%- endmacro %}

{#- The text at a JSON path (dotted, e.g. 'parent.subscription_details.subscription'). -#}
{% macro json_path_text(json_expression, path) -%}
    {{ return(adapter.dispatch('json_path_text', 'meterworks')(json_expression, path)) }}
{%- endmacro %}

{% macro default__json_path_text(json_expression, path) -%}
    json_extract_string({{ json_expression }}, '$.{{ path }}')
{%- endmacro %}

{% macro spark__json_path_text(json_expression, path) -%}
    get_json_object({{ json_expression }}, '$.{{ path }}')
{%- endmacro %}

{#- A Stripe epoch-seconds field at a JSON path as a UTC timestamp. -#}
{% macro json_path_epoch(json_expression, path) -%}
    {{ return(adapter.dispatch('json_path_epoch', 'meterworks')(json_expression, path)) }}
{%- endmacro %}

{% macro default__json_path_epoch(json_expression, path) -%}
    cast(to_timestamp(try_cast({{ meterworks.json_path_text(json_expression, path) }} as bigint)) as timestamp)
{%- endmacro %}

{#- The elements of a JSON array at a path, one row each (use in a lateral/unnest position). -#}
{% macro json_path_array(json_expression, path) -%}
    {{ return(adapter.dispatch('json_path_array', 'meterworks')(json_expression, path)) }}
{%- endmacro %}

{% macro default__json_path_array(json_expression, path) -%}
    coalesce(cast(json_extract({{ json_expression }}, '$.{{ path }}') as json[]), [])
{%- endmacro %}

{#- Live (not deleted) raw Stripe objects of one type: the `from` of every Stripe staging model. -#}
{% macro stripe_objects(object_type) -%}
    (
        select
            id,
            parent_id,
            created,
            livemode,
            synced_at,
            data
        from {{ source('stripe', 'stripe_objects') }}
        where
            object_type = '{{ object_type }}'
            and coalesce({{ meterworks.json_path_text('data', 'deleted') }}, 'false') != 'true'
    )
{%- endmacro %}
