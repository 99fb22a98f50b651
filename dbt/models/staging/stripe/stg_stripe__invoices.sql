{#- Stripe invoices. The subscription is at parent.subscription_details.subscription since API
    2025-03-31.basil, on the invoice itself before. `period_start/end` of an invoice are not
    the service period (use the lines' periods). -#}
select
    id as invoice_id,
    {{ meterworks.json_path_text('data', 'customer') }} as stripe_customer_id,
    coalesce(
        {{ meterworks.json_path_text('data', 'parent.subscription_details.subscription') }},
        {{ meterworks.json_path_text('data', 'subscription') }}
    ) as subscription_id,
    {{ meterworks.json_path_text('data', 'status') }} as status,
    {{ meterworks.json_path_text('data', 'billing_reason') }} as billing_reason,
    {{ meterworks.json_path_text('data', 'number') }} as invoice_number,
    lower({{ meterworks.json_path_text('data', 'currency') }}) as currency,
    cast({{ meterworks.json_path_text('data', 'subtotal') }} as {{ dbt.type_bigint() }}) as subtotal,
    cast({{ meterworks.json_path_text('data', 'total') }} as {{ dbt.type_bigint() }}) as total,
    cast({{ meterworks.json_path_text('data', 'amount_due') }} as {{ dbt.type_bigint() }}) as amount_due,
    cast({{ meterworks.json_path_text('data', 'amount_paid') }} as {{ dbt.type_bigint() }}) as amount_paid,
    created as created_at,
    {{ meterworks.json_path_epoch('data', 'status_transitions.finalized_at') }} as finalized_at,
    {{ meterworks.json_path_epoch('data', 'status_transitions.paid_at') }} as paid_at,
    {{ meterworks.json_path_epoch('data', 'status_transitions.voided_at') }} as voided_at,
    {{ meterworks.json_path_epoch('data', 'period_start') }} as invoice_period_start,
    {{ meterworks.json_path_epoch('data', 'period_end') }} as invoice_period_end
from {{ meterworks.stripe_objects('invoice') }}
