{#- Invoice lines of metered subscription items on invoices that count (not void, not draft),
    net of the credit notes issued against them. -#}
with invoices as (
    select * from {{ ref('stg_stripe__invoices') }}
    where status in ('open', 'paid', 'uncollectible')
),

credits as (
    select
        invoice_line_id,
        sum(coalesce(quantity, 0)) as credited_quantity,
        sum(amount) as credited_amount,
        count(*) as credit_note_lines
    from {{ ref('stg_stripe__credit_note_lines') }}
    where invoice_line_id is not null
    group by 1
)

select
    l.invoice_line_id,
    l.invoice_id,
    i.status as invoice_status,
    i.finalized_at,
    l.subscription_id,
    l.subscription_item_id,
    l.price_id,
    l.period_start,
    l.period_end,
    l.currency,
    l.quantity as gross_quantity,
    l.amount as gross_amount,
    coalesce(c.credited_quantity, 0) as credited_quantity,
    coalesce(c.credited_amount, 0) as credited_amount,
    {{ meterworks.add_quantities('l.quantity', '-coalesce(c.credited_quantity, 0)') }} as net_quantity,
    l.amount - coalesce(c.credited_amount, 0) as net_amount
from {{ ref('stg_stripe__invoice_lines') }} as l
inner join invoices as i on l.invoice_id = i.invoice_id
left join credits as c on l.invoice_line_id = c.invoice_line_id
where not l.is_proration
