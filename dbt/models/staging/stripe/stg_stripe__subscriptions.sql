select
    id as subscription_id,
    {{ meterworks.json_path_text('data', 'customer') }} as stripe_customer_id,
    {{ meterworks.json_path_text('data', 'status') }} as status,
    lower({{ meterworks.json_path_text('data', 'currency') }}) as currency,
    {{ meterworks.json_path_epoch('data', 'start_date') }} as started_at,
    {{ meterworks.json_path_epoch('data', 'billing_cycle_anchor') }} as billing_cycle_anchor,
    {{ meterworks.json_path_epoch('data', 'trial_start') }} as trial_start,
    {{ meterworks.json_path_epoch('data', 'trial_end') }} as trial_end,
    {{ meterworks.json_path_epoch('data', 'canceled_at') }} as canceled_at,
    {{ meterworks.json_path_epoch('data', 'ended_at') }} as ended_at,
    {{ meterworks.json_path_epoch('data', 'cancel_at') }} as cancel_at,
    coalesce({{ meterworks.json_path_text('data', 'cancel_at_period_end') }}, 'false') = 'true'
        as cancel_at_period_end,
    -- older API versions kept the current period on the subscription, newer ones on each item
    {{ meterworks.json_path_epoch('data', 'current_period_start') }} as legacy_period_start,
    {{ meterworks.json_path_epoch('data', 'current_period_end') }} as legacy_period_end,
    created as created_at
from {{ meterworks.stripe_objects('subscription') }}
