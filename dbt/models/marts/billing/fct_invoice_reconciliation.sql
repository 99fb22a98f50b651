{#- Usage vs invoice, per customer, closed billing period and meter of every metered Stripe
    charge. Quantities compare what Meterworks measured in the line's period with the line's
    quantity net of credit notes; amounts compare Meterworks' rating of its own quantity with the
    contract price (the catalog plan's price when there is one, else the Stripe price) against
    the line's amount net of credit notes. Void and draft invoices do not count. Ops usage
    adjustments of the period are part of the measured quantity (adjustment_quantity says how
    much of it).

    status, first match wins (tolerances: vars reconciliation_quantity_tolerance, relative, and
    reconciliation_amount_tolerance, minor units):
      missing_invoice        usage in a closed period no counted invoice of the subscription covers
      unbilled_usage         measured more than invoiced (late usage after the invoice, or a
                             missing line on an invoice that exists)
      invoice_without_usage  invoiced a quantity where nothing was measured
      quantity_mismatch      invoiced more than measured
      amount_mismatch        same quantity, different money (pricing drift)
      matched                everything agrees -#}

{#- Tolerances: a dbt var wins, else the environment, else 0 (exact). -#}
{%- set quantity_tolerance = var(
    'reconciliation_quantity_tolerance', env_var('METERWORKS_RECONCILIATION_QUANTITY_TOLERANCE', '0')
) %}
{%- set amount_tolerance = var(
    'reconciliation_amount_tolerance', env_var('METERWORKS_RECONCILIATION_AMOUNT_TOLERANCE', '0')
) %}

with periods as (
    select
        *,
        md5(subscription_item_id || '|' || cast(period_start as {{ dbt.type_string() }})) as window_key,
        period_start as window_start,
        period_end as window_end
    from {{ ref('int_billing_periods') }}
),

measured as (
    {{ meterworks.measure_usage('periods') }}
),

lines as (
    select
        subscription_item_id,
        period_start,
        period_end,
        {{ meterworks.sorted_distinct_string_agg('invoice_id', "','") }} as invoice_ids,
        count(*) as invoice_lines,
        sum(gross_quantity) as gross_quantity,
        sum(credited_quantity) as credited_quantity,
        sum(net_quantity) as invoiced_quantity,
        cast(sum(gross_amount) as {{ dbt.type_bigint() }}) as gross_amount,
        cast(sum(credited_amount) as {{ dbt.type_bigint() }}) as credited_amount,
        cast(sum(net_amount) as {{ dbt.type_bigint() }}) as invoiced_amount,
        max(finalized_at) as finalized_at
    from {{ ref('int_invoiced_lines') }}
    group by 1, 2, 3
),

-- metered lines only: a base fee billed in advance covers the next period, not its usage
subscription_invoices as (
    select distinct
        l.subscription_id,
        l.period_start,
        l.period_end
    from {{ ref('int_invoiced_lines') }} as l
    inner join {{ ref('int_billing_charges') }} as c
        on l.subscription_item_id = c.subscription_item_id
    where c.charge_type = 'metered'
),

joined as (
    select
        p.*,
        l.invoice_ids,
        l.invoice_lines,
        l.gross_quantity,
        l.credited_quantity,
        l.invoiced_quantity,
        l.gross_amount,
        l.credited_amount,
        l.invoiced_amount,
        l.finalized_at,
        {{ meterworks.add_quantities('coalesce(m.quantity, 0)', 'coalesce(adj.adjustment_quantity, 0)') }}
            as measured_quantity,
        coalesce(m.event_count, 0) as measured_event_count,
        coalesce(adj.adjustment_quantity, 0) as adjustment_quantity,
        exists(
            select 1
            from subscription_invoices as s
            where
                s.subscription_id = p.subscription_id
                and s.period_start < p.period_end
                and s.period_end > p.period_start
        ) as subscription_invoiced
    from periods as p
    left join measured as m on p.window_key = m.window_key
    left join {{ ref('int_usage_adjustments') }} as adj
        on
            p.customer_id = adj.customer_id
            and p.meter_code = adj.meter_code
            and p.period_start = adj.period_start
    left join lines as l
        on
            p.subscription_item_id = l.subscription_item_id
            and p.period_start = l.period_start
            and p.period_end = l.period_end
    where p.is_invoiced or coalesce(m.quantity, 0) + coalesce(adj.adjustment_quantity, 0) > 0
),

to_rate as (
    select
        window_key as rating_key,
        contract_price_id as price_id,
        measured_quantity as quantity
    from joined
),

rated as (
    {{ meterworks.rate_usage('to_rate', ref('int_billing_prices'), ref('int_billing_price_tiers')) }}
),

compared as (
    select
        j.*,
        r.amount as expected_amount,
        {{ meterworks.add_quantities('j.measured_quantity', '-coalesce(j.invoiced_quantity, 0)') }}
            as quantity_delta,
        coalesce(j.invoiced_amount, 0) - r.amount as amount_delta,
        {{ quantity_tolerance }} * abs(j.measured_quantity) as quantity_tolerance
    from joined as j
    left join rated as r on j.window_key = r.rating_key
)

select
    customer_id,
    subscription_id,
    subscription_item_id,
    meter_code,
    period_start,
    period_end,
    currency,
    invoice_ids,
    finalized_at as invoice_finalized_at,
    measured_quantity,
    measured_event_count,
    adjustment_quantity,
    invoiced_quantity,
    credited_quantity,
    quantity_delta,
    expected_amount,
    invoiced_amount,
    credited_amount,
    amount_delta,
    contract_price_id as expected_price_id,
    contract_price_source as expected_price_source,
    stripe_price_id,
    case
        when not is_invoiced and not subscription_invoiced then 'missing_invoice'
        when not is_invoiced then 'unbilled_usage'
        when measured_quantity = 0 and invoiced_quantity > 0 then 'invoice_without_usage'
        when measured_quantity - invoiced_quantity > quantity_tolerance then 'unbilled_usage'
        when invoiced_quantity - measured_quantity > quantity_tolerance then 'quantity_mismatch'
        when abs(amount_delta) > {{ amount_tolerance }} then 'amount_mismatch'
        else 'matched'
    end as status
from compared
