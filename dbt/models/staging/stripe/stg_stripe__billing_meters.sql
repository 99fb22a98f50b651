select
    id as stripe_meter_id,
    {{ meterworks.json_path_text('data', 'event_name') }} as event_name,
    {{ meterworks.json_path_text('data', 'display_name') }} as display_name,
    {{ meterworks.json_path_text('data', 'default_aggregation.formula') }} as aggregation_formula,
    {{ meterworks.json_path_text('data', 'status') }} as status
from {{ meterworks.stripe_objects('billing.meter') }}
