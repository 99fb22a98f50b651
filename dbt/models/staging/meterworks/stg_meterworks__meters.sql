with parsed as (
    select
        meter_code,
        event_name,
        aggregation,
        property,
        unit,
        description,
        group_by as group_by_json,
        filters as filters_json,
        {{ meterworks.parse_json_string_array('group_by') }} as group_by,
        {{ meterworks.parse_json_filters('filters') }} as filters
    from {{ source('meterworks', 'catalog_meters') }}
)

select
    meter_code,
    event_name,
    aggregation,
    property,
    unit,
    description,
    group_by_json,
    filters_json,
    group_by,
    filters,
    {{ meterworks.to_count(meterworks.array_length('filters')) }} as filter_count
from parsed
