{#- Stripe customers. `customer_id` is the id Meterworks meters by: the customer's
    metadata.meterworks_customer_id when set, else the Stripe id. -#}
select
    coalesce(
        {{ meterworks.json_path_text('data', 'metadata.meterworks_customer_id') }}, id
    ) as customer_id,
    id as stripe_customer_id,
    {{ meterworks.json_path_text('data', 'name') }} as customer_name,
    {{ meterworks.json_path_text('data', 'email') }} as email,
    lower({{ meterworks.json_path_text('data', 'currency') }}) as currency,
    created as created_at,
    livemode
from {{ meterworks.stripe_objects('customer') }}
