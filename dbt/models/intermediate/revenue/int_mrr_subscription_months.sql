{#- Recurring revenue of every subscription in every month, normalised to a month, in the
    subscription's currency (minor units, decimal(38,6)), net of discounts, before FX.

    Closed months (before the month of as_of) come from invoice lines: lines of licensed
    recurring prices, not prorations, on invoices that are not draft or void. A line counts in
    month m when its service period [start, end), cut at the subscription's ended_at, contains
    m's mid-month instant (the 15th 00:00 UTC): a calendar period anchored in any time zone, and
    every period of a contiguous series, lands in exactly one month, and annual lines in twelve.
    When several lines of one subscription item contain the instant (a re-anchored plan change),
    the one with the latest period start wins. Where no synced invoice line reaches a month, the
    live items' current service periods (billed in advance) fill it, at today's price and
    percent discount (an annual renewal invoiced before Stripe was first synced). Amount: line amount − its discount amounts,
    times the monthly factor of the price's interval.

    The current month (the month of as_of) comes from the live subscription items of active and
    past_due subscriptions (trialing, incomplete, canceled, unpaid and paused do not count):
    quantity × unit amount of licensed per-unit recurring prices, less the subscription's
    discounts in force at as_of (percent_off summed and capped at 100 %, then amount_off; a
    `once` coupon is a one-off and never reduces MRR), times the monthly factor. -#}
with as_of as (
    select
        {{ meterworks.as_of() }} as as_of,
        cast(date_trunc('month', {{ meterworks.as_of() }}) as date) as current_month
),

customers as (
    select
        stripe_customer_id,
        customer_id
    from {{ ref('stg_stripe__customers') }}
),

subscriptions as (
    select * from {{ ref('stg_stripe__subscriptions') }}
),

prices as (
    select
        price_id,
        currency,
        billing_scheme,
        unit_amount_decimal,
        recurring_interval,
        recurring_interval_count
    from {{ ref('stg_stripe__prices') }}
    where price_type = 'recurring' and coalesce(usage_type, 'licensed') = 'licensed'
),

line_discounts as (
    select
        invoice_line_id,
        sum(discount_amount) as discount_amount
    from {{ ref('stg_stripe__discounts') }}
    where applies_to = 'invoice_line'
    group by 1
),

billed_lines as (
    select
        l.invoice_line_id,
        l.subscription_id,
        coalesce(l.subscription_item_id, l.invoice_line_id) as item_key,
        coalesce(c.customer_id, i.stripe_customer_id) as customer_id,
        coalesce(l.currency, i.currency) as currency,
        l.period_start,
        least(l.period_end, coalesce(s.ended_at, l.period_end)) as service_end,
        l.amount - coalesce(d.discount_amount, 0) as net_amount,
        p.recurring_interval,
        p.recurring_interval_count
    from {{ ref('stg_stripe__invoice_lines') }} as l
    inner join {{ ref('stg_stripe__invoices') }} as i on l.invoice_id = i.invoice_id
    inner join prices as p on l.price_id = p.price_id
    left join subscriptions as s on l.subscription_id = s.subscription_id
    left join customers as c on i.stripe_customer_id = c.stripe_customer_id
    left join line_discounts as d on l.invoice_line_id = d.invoice_line_id
    where
        i.status in ('open', 'paid', 'uncollectible')
        and not l.is_proration
        and l.period_start is not null
        and l.period_end > l.period_start
),

live_discounts as (
    select
        d.subscription_id,
        least(coalesce(sum(d.percent_off), 0), 100) as percent_off,
        coalesce(sum(d.amount_off), 0) as amount_off
    from {{ ref('stg_stripe__discounts') }} as d
    cross join as_of as a
    where
        d.applies_to = 'subscription'
        and coalesce(d.duration, 'forever') != 'once'
        and coalesce(d.discount_start, a.as_of) <= a.as_of
        and (d.discount_end is null or d.discount_end > a.as_of)
    group by 1
),

item_periods as (
    -- the items' current periods: billed in advance, they fill months the synced invoices do
    -- not reach (an annual renewal before the first sync); real invoice lines take precedence
    select
        'item:' || si.subscription_item_id as invoice_line_id,
        s.subscription_id,
        si.subscription_item_id as item_key,
        coalesce(c.customer_id, s.stripe_customer_id) as customer_id,
        coalesce(p.currency, s.currency) as currency,
        si.current_period_start as period_start,
        least(si.current_period_end, coalesce(s.ended_at, si.current_period_end)) as service_end,
        cast(
            coalesce(si.quantity, 1) * p.unit_amount_decimal * (100 - coalesce(d.percent_off, 0)) / 100
            as decimal(38, 12)
        ) as net_amount,
        p.recurring_interval,
        p.recurring_interval_count,
        1 as precedence
    from subscriptions as s
    inner join {{ ref('stg_stripe__subscription_items') }} as si on s.subscription_id = si.subscription_id
    inner join prices as p on si.price_id = p.price_id
    left join customers as c on s.stripe_customer_id = c.stripe_customer_id
    left join live_discounts as d on s.subscription_id = d.subscription_id
    where
        s.status not in ('trialing', 'incomplete', 'incomplete_expired')
        and p.billing_scheme = 'per_unit'
        and si.current_period_end > si.current_period_start
),

service_periods as (
    select
        *,
        0 as precedence
    from billed_lines
    union all
    select * from item_periods
),

candidate_months as (
    select
        b.*,
        cast(m.month_start as date) as month,  -- noqa: RF04
        row_number() over (
            partition by b.item_key, cast(m.month_start as date)
            order by b.period_start desc, b.precedence asc, b.invoice_line_id desc
        ) as month_rank
    from service_periods as b
    cross join as_of as a
    {{ meterworks.cross_join_unnest(
        meterworks.series(
            "date_trunc('month', b.period_start)",
            "date_trunc('month', b.service_end)",
            'interval 1 month'
        ),
        'm',
        'month_start'
    ) }}
    where
        {{ meterworks.mid_month_instant('m.month_start') }} >= b.period_start
        and {{ meterworks.mid_month_instant('m.month_start') }} < b.service_end
        and cast(m.month_start as date) < a.current_month
),

line_months as (
    select * from candidate_months
    where month_rank = 1
),

history as (
    select
        subscription_id,
        customer_id,
        currency,
        month,
        min(case when precedence = 0 then 'invoice_lines' else 'subscription_items' end) as mrr_source,
        sum(
            {{ meterworks.exact_divide(
                'net_amount * ' ~ meterworks.monthly_numerator('recurring_interval'),
                meterworks.monthly_denominator('recurring_interval', 'recurring_interval_count')
            ) }}
        ) as mrr_local
    from line_months
    group by 1, 2, 3, 4
),

live_subscriptions as (
    select
        s.subscription_id,
        coalesce(c.customer_id, s.stripe_customer_id) as customer_id,
        coalesce(max(p.currency), max(s.currency)) as currency,
        max(p.recurring_interval) as recurring_interval,
        max(p.recurring_interval_count) as recurring_interval_count,
        sum(
            {{ meterworks.exact_amount_decimal(
                meterworks.exact_amount('coalesce(si.quantity, 1)', 'p.unit_amount_decimal')
            ) }}
        ) as gross_amount
    from subscriptions as s
    inner join {{ ref('stg_stripe__subscription_items') }} as si on s.subscription_id = si.subscription_id
    inner join prices as p on si.price_id = p.price_id
    left join customers as c on s.stripe_customer_id = c.stripe_customer_id
    where s.status in ('active', 'past_due') and p.billing_scheme = 'per_unit'
    group by 1, 2
),

current_month as (
    select
        l.subscription_id,
        l.customer_id,
        l.currency,
        a.current_month as month,  -- noqa: RF04
        'subscription_items' as mrr_source,
        {{ meterworks.exact_divide(
            'greatest(l.gross_amount * (100 - coalesce(d.percent_off, 0)) - coalesce(d.amount_off, 0) * 100, 0) * '
            ~ meterworks.monthly_numerator('l.recurring_interval'),
            '100 * ' ~ meterworks.monthly_denominator('l.recurring_interval', 'l.recurring_interval_count')
        ) }} as mrr_local
    from live_subscriptions as l
    cross join as_of as a
    left join live_discounts as d on l.subscription_id = d.subscription_id
)

select * from history
union all
select * from current_month
