{#- A table on Spark, where a view is recomputed by every reader (the usage marts, billing's
    measured usage and the audits each parse the event JSON again); a view on DuckDB. -#}
{{ config(materialized=('table' if target.type == 'spark' else 'view')) }}

{#- The meter application over the effective events: one row per (effective event, meter
    listening to its event name) whose filters all match. -#}

with effective as (
    select * from {{ ref('int_events_effective') }}
),

applied as (
    {{ meterworks.apply_meters('effective') }}
)

select
    transaction_id,
    event_seq,
    customer_id,
    event_name,
    event_ts,
    meter_code,
    aggregation,
    dimensions,
    quantity,
    unique_value,
    timezone,
    offset_minutes,
    local_ts
from applied
