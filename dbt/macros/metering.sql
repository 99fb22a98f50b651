{#- The meter application, shared by the int_meter_events view (full builds) and by the
    incremental branches of the usage marts (which apply it to a small set of versions).

    `versions` names a relation or CTE with the columns of int_event_versions. Returns one
    row per (version, meter listening to its event name) whose filters all match, with the
    meter's value, the canonical dimensions and the customer's local time.

    Every meter of the catalog table gets its own branch with constant JSON paths (see
    meter_specs): a generic expression that reads the property names from the meter row builds
    a JSON path per row and runs a lambda per group-by key and filter, about twice the cost of
    the whole meter application. A meter row that matches no specialised definition (a unit
    test's fixture, a catalog rewritten during the run) takes the generic branch, so the
    result never depends on the catalog read at compile time. -#}
{% macro apply_meters(versions) -%}
    {%- set specs = meterworks.meter_specs() %}
    select
        v.transaction_id,
        v.event_seq,
        v.superseded_at_seq,
        v.customer_id,
        v.event_name,
        v.event_ts,
        m.meter_code,
        m.aggregation,
        {{ meterworks.meter_case(specs, 'dimensions', 'v.properties') }} as dimensions,
        {{ meterworks.meter_case(specs, 'quantity', 'v.properties') }} as quantity,
        {{ meterworks.meter_case(specs, 'unique_value', 'v.properties') }} as unique_value,
        o.timezone,
        o.offset_minutes,
        {{ meterworks.add_minutes('v.event_ts', 'o.offset_minutes') }} as local_ts
    from {{ versions }} as v
    inner join (
        select
            mm.*,
            {{ meterworks.meter_spec_index(specs, 'mm') }} as spec_index
        from {{ ref('stg_meterworks__meters') }} as mm
    ) as m
        on v.event_name = m.event_name
    left join {{ ref('stg_meterworks__customers') }} as c
        on v.customer_id = c.customer_id
    inner join {{ ref('int_timezone_offsets') }} as o
        on
            coalesce(c.timezone, 'UTC') = o.timezone
            and {{ meterworks.floor_to_15_minutes('v.event_ts') }} = o.bucket_start_utc
    where m.filter_count = 0 or {{ meterworks.meter_case(specs, 'filters_match', 'v.properties') }}
{%- endmacro %}

{#- The meters of the catalog table, read when the model runs (empty while parsing, or when
    the table does not exist): a list
    of {meter_code, event_name, aggregation, property, group_by_json, filters_json, group_by,
    filters}. Meters whose group_by/filters are not the JSON the catalog writes are left out
    (they take the generic branch). -#}
{% macro meter_specs() -%}
    {%- set specs = [] -%}
    {#- from the graph, not source(): a unit test (empty graph) must not depend on it -#}
    {%- set node = graph.get('sources', {}).get('source.meterworks.meterworks.catalog_meters') if execute -%}
    {%- set relation = adapter.get_relation(
        database=node.database, schema=node.schema, identifier=node.identifier
    ) if node -%}
    {%- if relation -%}
        {%- set rows = run_query(
            'select meter_code, event_name, aggregation, property, group_by, filters from '
            ~ relation ~ ' order by meter_code limit 200'
        ) -%}
        {%- for row in rows -%}
            {%- set group_by = fromjson(row[4]) -%}
            {%- set filters = fromjson(row[5]) -%}
            {%- if group_by is iterable and group_by is not mapping and group_by is not string
                and filters is mapping -%}
                {%- do specs.append({
                    'meter_code': row[0], 'event_name': row[1], 'aggregation': row[2],
                    'property': row[3], 'group_by_json': row[4], 'filters_json': row[5],
                    'group_by': group_by, 'filters': filters,
                }) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(specs) }}
{%- endmacro %}

{#- A SQL string literal. -#}
{% macro sql_literal(value) -%}
    {{ return(adapter.dispatch('sql_literal', 'meterworks')(value)) }}
{%- endmacro %}

{% macro default__sql_literal(value) -%}
    '{{ value | string | replace("'", "''") }}'
{%- endmacro %}

{#- Spark reads a backslash in a string literal as an escape, and a quote as '\''. -#}
{% macro spark__sql_literal(value) -%}
    '{{ value | string | replace("\\", "\\\\") | replace("'", "\\'") }}'
{%- endmacro %}

{#- 1-based index of the spec a meter row (alias `alias`, columns of stg_meterworks__meters)
    matches exactly, else 0. -#}
{% macro meter_spec_index(specs, alias) -%}
    {%- if specs | length == 0 -%}
        0
    {%- else -%}
        case
        {%- for spec in specs %}
            when
                {{ alias }}.meter_code = {{ meterworks.sql_literal(spec.meter_code) }}
                and {{ alias }}.event_name = {{ meterworks.sql_literal(spec.event_name) }}
                and {{ alias }}.aggregation = {{ meterworks.sql_literal(spec.aggregation) }}
                and {% if spec.property is none %}{{ alias }}.property is null{% else %}{{ alias }}.property = {{ meterworks.sql_literal(spec.property) }}{% endif %}
                and {{ alias }}.group_by_json = {{ meterworks.sql_literal(spec.group_by_json) }}
                and {{ alias }}.filters_json = {{ meterworks.sql_literal(spec.filters_json) }}
                then {{ loop.index }}
        {%- endfor %}
            else 0
        end
    {%- endif -%}
{%- endmacro %}

{#- One column of the meter application (`dimensions`, `quantity`, `unique_value` or
    `filters_match`) for a meter row `m` and event properties `properties`: a branch with
    constant paths per spec, the generic expression for any other meter row. -#}
{% macro meter_case(specs, column, properties) -%}
    {%- set generic = meterworks.meter_column(column, properties) -%}
    {%- if specs | length == 0 -%}
        {{ generic }}
    {%- else -%}
        case m.spec_index
        {%- for spec in specs %}
            when {{ loop.index }} then {{ meterworks.meter_column(column, properties, spec) }}
        {%- endfor %}
            else {{ generic }}
        end
    {%- endif -%}
{%- endmacro %}

{#- The expression of one meter-application column: generic (property names read from the
    meter row `m`) or, with `spec`, for that one meter with its names as constants. -#}
{% macro meter_column(column, properties, spec=none) -%}
    {%- if column == 'dimensions' -%}
        {%- if spec is none -%}
            {{ meterworks.dimensions_json('m.group_by', properties) }}
        {%- elif spec.group_by | length == 0 -%}
            '{}'
        {%- else -%}
            {%- set parts = [] -%}
            {%- for key in spec.group_by -%}
                {%- set k = meterworks.sql_literal(key) -%}
                {%- do parts.append(
                    meterworks.json_quote_text(k) ~ " || ':' || "
                    ~ meterworks.json_quote_text(meterworks.json_extract_text(properties, k))
                ) -%}
            {%- endfor -%}
            {{ dbt.concat(["'{'", parts | join(" || ',' || "), "'}'"]) }}
        {%- endif -%}
    {%- elif column == 'quantity' -%}
        {%- if spec is none -%}
            case
                when m.aggregation in ('sum', 'max', 'latest')
                    then {{ meterworks.to_quantity(meterworks.json_extract_text(properties, 'm.property')) }}
            end
        {%- elif spec.aggregation in ('sum', 'max', 'latest') and spec.property is not none -%}
            {{ meterworks.to_quantity(meterworks.json_extract_text(properties, meterworks.sql_literal(spec.property))) }}
        {%- else -%}
            cast(null as {{ meterworks.quantity_type() }})
        {%- endif -%}
    {%- elif column == 'unique_value' -%}
        {%- if spec is none -%}
            case
                when m.aggregation = 'unique_count'
                    then {{ meterworks.json_extract_text(properties, 'm.property') }}
            end
        {%- elif spec.aggregation == 'unique_count' and spec.property is not none -%}
            {{ meterworks.json_extract_text(properties, meterworks.sql_literal(spec.property)) }}
        {%- else -%}
            cast(null as {{ dbt.type_string() }})
        {%- endif -%}
    {%- elif column == 'filters_match' -%}
        {%- if spec is none -%}
            {{ meterworks.filters_match('m.filters', properties) }}
        {%- elif spec.filters | length == 0 -%}
            true
        {%- else -%}
            {%- set conditions = [] -%}
            {%- for key, allowed in spec.filters | dictsort -%}
                {%- if allowed | length == 0 -%}
                    {%- do conditions.append('false') -%}
                {%- else -%}
                    {%- set values = [] -%}
                    {%- for value in allowed -%}
                        {%- do values.append(meterworks.sql_literal(value)) -%}
                    {%- endfor -%}
                    {%- do conditions.append(
                        'coalesce(' ~ meterworks.json_extract_text(properties, meterworks.sql_literal(key))
                        ~ ' in (' ~ values | join(', ') ~ '), false)'
                    ) -%}
                {%- endif -%}
            {%- endfor -%}
            ({{ conditions | join(' and ') }})
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#- The incremental watermark of a usage model: the highest event_seq it has aggregated.
    Rendered as a literal so the engine can prune on it. -#}
{% macro usage_watermark() -%}
    {%- if execute and is_incremental() -%}
        {%- set result = run_query('select coalesce(max(last_event_seq), -1) from ' ~ this) -%}
        {{- result.columns[0].values()[0] -}}
    {%- else -%}
        -1
    {%- endif -%}
{%- endmacro %}

{#- CTEs `changed_versions` and `changed_meter_events`: every non-void version that became
    effective after the watermark (new records and amends, late events included) and every
    version superseded after it (the original content of voided/amended transactions), with
    meters applied. Their keys are exactly the usage keys whose aggregates may have changed. -#}
{% macro changed_meter_events_ctes(watermark) -%}
    changed_versions as (
        select *
        from {{ ref('int_event_versions') }}
        where
            action != 'void'
            and (event_seq > {{ watermark }} or superseded_at_seq > {{ watermark }})
    ),

    changed_meter_events as (
        {{ meterworks.apply_meters('changed_versions') }}
    )
{%- endmacro %}

{#- CTE `candidate_versions`: effective versions of the customers in `changed_windows`
    (customer_id, window_start_utc, window_end_utc) inside their UTC window: a cheap superset of
    the events to re-aggregate, filtered before any JSON is parsed. With `event_names`, only
    events those meters listen to. -#}
{% macro candidate_versions_cte(changed_windows, event_names=none) -%}
    customer_windows as (
        select
            customer_id,
            min(window_start_utc) as window_start_utc,
            max(window_end_utc) as window_end_utc
        from {{ changed_windows }}
        group by 1
    ),

    candidate_versions as (
        select e.*
        from {{ ref('int_events_effective') }} as e
        inner join customer_windows as w
            on
                e.customer_id = w.customer_id
                and e.event_ts >= w.window_start_utc
                and e.event_ts < w.window_end_utc
        {%- if event_names %}
        where e.event_name in (select m.event_name from {{ event_names }} as m)
        {%- endif %}
    )
{%- endmacro %}

{#- CTEs `unique_count_meters`, `candidate_versions`, `candidate_meter_events` and
    `unique_meter_events`: the effective meter events of unique_count meters that fall in a
    changed key (`changed_keys`: customer_id, meter_code, dimensions, `period_column`, plus the
    UTC window columns candidate_versions_cte reads), where `period_expression` maps an event
    (alias `me`) to its period. A distinct count cannot be rolled up from smaller grains, so
    the changed keys' whole periods are re-read. -#}
{% macro changed_unique_meter_events_ctes(changed_keys, period_expression, period_column) -%}
    unique_count_meters as (
        select event_name from {{ ref('stg_meterworks__meters') }}
        where aggregation = 'unique_count'
    ),

    {{ meterworks.candidate_versions_cte(changed_keys, 'unique_count_meters') }},

    candidate_meter_events as (
        {{ meterworks.apply_meters('candidate_versions') }}
    ),

    unique_meter_events as (
        select me.*
        from candidate_meter_events as me
        where
            me.aggregation = 'unique_count'
            and exists (
                select 1
                from {{ changed_keys }} as k
                where
                    me.customer_id = k.customer_id
                    and me.meter_code = k.meter_code
                    and me.dimensions = k.dimensions
                    and {{ period_expression }} = k.{{ period_column }}
            )
    )
{%- endmacro %}
