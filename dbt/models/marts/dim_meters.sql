select
    meter_code,
    event_name,
    aggregation,
    property,
    group_by_json as group_by,
    filters_json as filters,
    unit,
    description
from {{ ref('stg_meterworks__meters') }}
