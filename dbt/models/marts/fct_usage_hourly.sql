{{
    config(
        materialized=('table' if target.type == 'spark' else 'incremental'),
        incremental_strategy='delete+insert',
        unique_key=['customer_id', 'meter_code', 'dimensions', 'usage_hour'],
        post_hook="{{ meterworks.delete_empty_usage_rows() }}",
    )
}}

{#- Usage per customer, meter, dimensions and local wall-clock hour, from the meter events
    (see the usage_rollup macro; incremental runs re-aggregate only the touched keys). -#}

-- depends_on: {{ ref('int_event_versions') }}
-- depends_on: {{ ref('int_events_effective') }}
-- depends_on: {{ ref('stg_meterworks__meters') }}
-- depends_on: {{ ref('stg_meterworks__customers') }}
-- depends_on: {{ ref('int_timezone_offsets') }}

{{ meterworks.usage_rollup('hour') }}
