{#- Spark reads the raw tables from the Parquet lake written by meterworks.engine.lake
    (env METERWORKS_LAKE, an absolute path or an object-store URI Spark can read): one view
    `raw.<table>` per folder, re-created at the start of every dbt invocation (on-run-start),
    so the dbt sources (schema raw) resolve on Spark exactly as they do on DuckDB, and new
    partitions and files are always seen. Nothing to do on DuckDB (the sources are its own
    raw schema). -#}
{% macro register_lake_sources() -%}
    {{ return(adapter.dispatch('register_lake_sources', 'meterworks')()) }}
{%- endmacro %}

{% macro default__register_lake_sources() -%}
    {{ return('') }}
{%- endmacro %}

{#- Keep in step with meterworks.engine.lake.LAKE_TABLES. -#}
{% macro lake_tables() -%}
    {{ return([
        'events', 'quarantine', 'ingest_batches', 'catalog_meters', 'catalog_customers',
        'catalog_plan_charges', 'catalog_price_tiers', 'adjustments', 'stripe_objects', 'fx_rates',
    ]) }}
{%- endmacro %}

{% macro spark__register_lake_sources() -%}
    {%- if execute -%}
        {%- set lake = env_var('METERWORKS_LAKE', '') | replace('\\', '/') -%}
        {%- if not lake -%}
            {{ exceptions.raise_compiler_error(
                'METERWORKS_LAKE is not set: export the raw tables first (meterworks.engine.lake)'
            ) }}
        {%- endif -%}
        {%- do run_query('create database if not exists raw') -%}
        {%- for table in meterworks.lake_tables() -%}
            {%- do run_query(
                'create or replace view raw.' ~ table
                ~ ' as select * from parquet.`' ~ lake.rstrip('/') ~ '/' ~ table ~ '`'
            ) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return('') }}
{%- endmacro %}

{#- run-operation: register Parquet folders as Spark tables, e.g.
    dbt run-operation register_parquet_relations --args '{relations: {"intermediate.x": "/lake/x"}}'
    (stands in relations built elsewhere, e.g. DuckDB's metering tables to tell a metering
    difference from one downstream: scripts/spark/compare_engines.py --metering-from-duckdb). -#}
{% macro register_parquet_relations(relations) -%}
    {%- for name, location in relations.items() -%}
        {%- set schema = name.split('.')[0] -%}
        {%- do run_query('create database if not exists ' ~ schema) -%}
        {%- set existing = adapter.get_relation(database=none, schema=schema, identifier=name.split('.')[1]) -%}
        {%- if existing is not none -%}
            {%- do adapter.drop_relation(existing) -%}
        {%- endif -%}
        {%- do run_query('create table ' ~ name ~ ' using parquet location \'' ~ location ~ '\'') -%}
        {%- do log('registered ' ~ name ~ ' over ' ~ location, info=true) -%}
    {%- endfor -%}
{%- endmacro %}
