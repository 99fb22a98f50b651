{#- Post-hook of the incremental usage models. An incremental run inserts a zero row
    (event_count = 0) for every changed key that has no usage left (all of it voided or
    amended away) so that delete+insert removes the stale row; this deletes those markers,
    so the table holds exactly the rows a full refresh would build. On Spark the usage models
    are tables rebuilt in full (no delete+insert, no DELETE without Delta/Iceberg), which never
    hold such rows: nothing to do. -#}
{% macro delete_empty_usage_rows() -%}
    {{ return(adapter.dispatch('delete_empty_usage_rows', 'meterworks')()) }}
{%- endmacro %}

{% macro default__delete_empty_usage_rows() -%}
    delete from {{ this }} where event_count = 0
{%- endmacro %}

{% macro spark__delete_empty_usage_rows() -%}
{%- endmacro %}
