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
