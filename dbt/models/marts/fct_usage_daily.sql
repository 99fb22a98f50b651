{{
    config(
        materialized=('table' if target.type == 'spark' else 'incremental'),
        incremental_strategy='delete+insert',
        unique_key=['customer_id', 'meter_code', 'dimensions', 'usage_date'],
        post_hook="{{ meterworks.delete_empty_usage_rows() }}",
    )
}}

{#- Usage per customer, meter, dimensions and local calendar day, from the meter events
    (see the usage_rollup macro): unique_count is distinct over the whole day, latest is the
    day's latest event. Not rolled up from fct_usage_hourly, so the period totals built from
    this mart never wait for the hourly aggregation. -#}

-- depends_on: {{ ref('int_event_versions') }}
-- depends_on: {{ ref('int_events_effective') }}
-- depends_on: {{ ref('stg_meterworks__meters') }}
-- depends_on: {{ ref('stg_meterworks__customers') }}
-- depends_on: {{ ref('int_timezone_offsets') }}

{{ meterworks.usage_rollup('day') }}
