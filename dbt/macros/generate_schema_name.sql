{#- Use the folder's custom schema (staging / intermediate / marts) as-is, without the
    target-schema prefix dbt adds by default: the marts are a public interface and their
    schema name must not depend on the profile. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
