{#- Post-hook of the incremental usage models. An incremental run inserts a zero row
    (event_count = 0) for every changed key that has no usage left (all of it voided or
    amended away) so that delete+insert removes the stale row; this deletes those markers,
    so the table holds exactly the rows a full refresh would build. -#}
{% macro delete_empty_usage_rows() -%}
    delete from {{ this }} where event_count = 0
{%- endmacro %}
