{#- JSON helpers. The raw layer stores JSON as text so it stays portable; every engine
    spells JSON access differently, so each helper is adapter-dispatched. -#}

{#- The value of top-level key `key_expression` (a SQL expression) as text; null when absent. -#}
{% macro json_extract_text(json_expression, key_expression) -%}
    {{ return(adapter.dispatch('json_extract_text', 'meterworks')(json_expression, key_expression)) }}
{%- endmacro %}

{% macro default__json_extract_text(json_expression, key_expression) -%}
    json_extract_string({{ json_expression }}, '$."' || {{ key_expression }} || '"')
{%- endmacro %}

{#- Spark: the key in brackets, so that a name with a dot is one key as in DuckDB's '$."k"'
    (get_json_object's brackets take no quote: a name with one goes after a dot, and a name
    with both a quote and a dot or bracket is not read), and a JSON number as the text DuckDB
    gives it (see spark_json_number_text). -#}
{% macro spark__json_extract_text(json_expression, key_expression) -%}
    transform(
        array(get_json_object(
            {{ json_expression }},
            case
                when instr({{ key_expression }}, char(39)) > 0 then concat('$.', {{ key_expression }})
                else concat('$[', char(39), {{ key_expression }}, char(39), ']')
            end
        )),
        json_text -> {{ meterworks.spark_json_number_text(
            'json_text', json_expression, "concat('$[\"', " ~ key_expression ~ ", '\"]')"
        ) }}
    )[0]
{%- endmacro %}

{#- Spark: `text`, a lambda variable holding get_json_object's read of a key of
    `json_expression` (`variant_path`: the same key as a variant path), as DuckDB's
    json_extract_string spells it. Both engines read a JSON number as a double and print it;
    Spark prints Java 17's Double.toString, which from 1e7 and below 1e-3 is 'd.dddE±n' and
    may carry more digits than needed, where DuckDB prints the shortest digits that give the
    double back, laid out like JavaScript: '12345678.5', '100000000000000000000.0', '0.0005',
    '1e-7', '1e21'. For such a text (and only then: a regex test per value) the shortest digits
    come from Jackson's Schubfach (DoubleToDecimal, in Spark's jackson-core; Java 19+ has it
    as Double.toString) and are laid out as DuckDB does. A JSON string with such a text stays
    as it is (only when the quoted text occurs in the document is the value's type looked up,
    in a variant). Not rewritten: numbers inside an object or array value (their text differs
    from DuckDB's below 1e-3 and from 1e7). -#}
{% macro spark_json_number_text(text, json_expression, variant_path) -%}
    case
        when
            {{ text }} rlike '^-?[0-9][.][0-9]+E-?[0-9]+$'
            and (
                instr({{ json_expression }}, concat('"', {{ text }}, '"')) = 0
                or coalesce(
                    schema_of_variant(variant_get(try_parse_json({{ json_expression }}), {{ variant_path }})) != 'STRING',
                    false
                )
            )
            then transform(
                array(reflect(
                    'com.fasterxml.jackson.core.io.schubfach.DoubleToDecimal',
                    'toString',
                    abs(cast({{ text }} as double))
                )),
                shortest -> transform(array(named_struct(
                    'digits', trim(TRAILING '0' FROM replace(regexp_extract(shortest, '^([0-9][.][0-9]+)E', 1), '.', '')),
                    'point', cast(regexp_extract(shortest, 'E(-?[0-9]+)$', 1) as int) + 1
                )), n -> concat(
                    case when left({{ text }}, 1) = '-' then '-' else '' end,
                    case
                        when n.point between length(n.digits) and 21
                            then concat(n.digits, repeat('0', n.point - length(n.digits)), '.0')
                        when n.point between 1 and 21
                            then concat(substr(n.digits, 1, n.point), '.', substr(n.digits, n.point + 1))
                        when n.point between -5 and 0
                            then concat('0.', repeat('0', -n.point), n.digits)
                        else concat(
                            substr(n.digits, 1, 1),
                            case when length(n.digits) > 1 then concat('.', substr(n.digits, 2)) else '' end,
                            'e',
                            cast(n.point - 1 as string)
                        )
                    end
                ))[0]
            )[0]
        else {{ text }}
    end
{%- endmacro %}

{#- A text expression quoted as a JSON string literal ('null' when null). -#}
{% macro json_quote_text(expression) -%}
    {{ return(adapter.dispatch('json_quote_text', 'meterworks')(expression)) }}
{%- endmacro %}

{% macro default__json_quote_text(expression) -%}
    coalesce(to_json(cast({{ expression }} as {{ dbt.type_string() }})), 'null')
{%- endmacro %}

{#- Spark: to_json quotes only inside a document: quote a one-element array and strip the
    brackets (the same escapes as DuckDB's to_json: \", \\, \n, \t, \u0001..., non-ASCII as is). -#}
{% macro spark__json_quote_text(expression) -%}
    transform(
        array(to_json(array(cast({{ expression }} as {{ dbt.type_string() }})))),
        quoted -> substr(quoted, 2, length(quoted) - 2)
    )[0]
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
    case
        when size({{ group_by_expression }}) = 0 then '{}'
        else concat('{', array_join(transform(
            {{ group_by_expression }},
            k -> concat(
                {{ meterworks.json_quote_text('k') }},
                ':',
                {{ meterworks.json_quote_text(meterworks.json_extract_text(properties_expression, 'k')) }}
            )
        ), ','), '}')
    end
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

{% macro spark__json_path_epoch(json_expression, path) -%}
    timestamp_seconds(try_cast({{ meterworks.json_path_text(json_expression, path) }} as bigint))
{%- endmacro %}

{#- The elements of a JSON array at a path, one row each (use in a lateral/unnest position). -#}
{% macro json_path_array(json_expression, path) -%}
    {{ return(adapter.dispatch('json_path_array', 'meterworks')(json_expression, path)) }}
{%- endmacro %}

{% macro default__json_path_array(json_expression, path) -%}
    coalesce(cast(json_extract({{ json_expression }}, '$.{{ path }}') as json[]), [])
{%- endmacro %}

{% macro spark__json_path_array(json_expression, path) -%}
    coalesce(from_json(get_json_object({{ json_expression }}, '$.{{ path }}'), 'array<string>'), array())
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
