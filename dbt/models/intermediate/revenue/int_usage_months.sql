{#- Usage revenue per customer and month, in the line currency (minor units, decimal(38,6)):
    lines of metered recurring prices on finalized invoices that are not void (open, paid,
    uncollectible with a finalized_at), prorations excluded, net of credit notes and of the
    line's discount amounts, times the monthly factor of the price's interval (1 for monthly
    meters). A line counts in the month its service period ends, read one day before its
    exclusive end, so a period closing at local midnight on the 1st (any UTC offset) counts in
    the month it closes. -#}
with line_discounts as (
    select
        invoice_line_id,
        sum(discount_amount) as discount_amount
    from {{ ref('stg_stripe__discounts') }}
    where applies_to = 'invoice_line'
    group by 1
),

invoices as (
    select
        invoice_id,
        stripe_customer_id
    from {{ ref('stg_stripe__invoices') }}
),

lines as (
    select
        l.currency,
        cast(date_trunc('month', l.period_end - interval 1 day) as date) as month,  -- noqa: RF04
        p.recurring_interval,
        p.recurring_interval_count,
        coalesce(c.customer_id, i.stripe_customer_id) as customer_id,
        l.net_amount - coalesce(d.discount_amount, 0) as net_amount
    from {{ ref('int_invoiced_lines') }} as l
    inner join invoices as i on l.invoice_id = i.invoice_id
    inner join {{ ref('stg_stripe__prices') }} as p on l.price_id = p.price_id
    left join {{ ref('stg_stripe__customers') }} as c on i.stripe_customer_id = c.stripe_customer_id
    left join line_discounts as d on l.invoice_line_id = d.invoice_line_id
    where
        p.usage_type = 'metered'
        and l.finalized_at is not null
        and l.period_end is not null
)

select
    customer_id,
    month,
    currency,
    sum(
        {{ meterworks.exact_divide(
            'net_amount * ' ~ meterworks.monthly_numerator('recurring_interval'),
            meterworks.monthly_denominator('recurring_interval', 'recurring_interval_count')
        ) }}
    ) as usage_mrr_local
from lines
group by 1, 2, 3
