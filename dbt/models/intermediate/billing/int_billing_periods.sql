{#- The closed billing periods of every metered Stripe charge, one row per charge and period:
    the periods its invoice lines cover, and the gaps between them (from the subscription's
    start to the start of its current period, or to its end when it ended). A gap is a period
    that should have been invoiced and was not; it may span several billing periods. -#}
with charges as (
    select
        *,
        -- a trial bills no usage: periods are owed from the trial's end
        case
            when trial_end > started_at then trial_end else started_at
        end as billable_from
    from {{ ref('int_billing_charges') }}
    where charge_source = 'stripe' and charge_type = 'metered'
),

invoiced as (
    select
        subscription_item_id,
        period_start,
        period_end
    from {{ ref('int_invoiced_lines') }}
    where subscription_item_id in (select c.subscription_item_id from charges as c)
    group by 1, 2, 3
),

ordered as (
    select
        i.subscription_item_id,
        i.period_start,
        i.period_end,
        lag(i.period_end) over (
            partition by i.subscription_item_id order by i.period_start
        ) as previous_end
    from invoiced as i
    inner join charges as c on i.subscription_item_id = c.subscription_item_id
),

covered as (
    select
        subscription_item_id,
        max(period_end) as covered_until
    from invoiced
    group by 1
),

gaps_between as (
    select
        o.subscription_item_id,
        o.period_start as period_end,
        coalesce(o.previous_end, c.billable_from) as period_start
    from ordered as o
    inner join charges as c on o.subscription_item_id = c.subscription_item_id
    where o.period_start > coalesce(o.previous_end, c.billable_from)
),

gaps_after as (
    select
        c.subscription_item_id,
        coalesce(v.covered_until, c.billable_from) as period_start,
        -- owed up to the current period, or to the end of a subscription that ended
        coalesce(c.ended_at, c.current_period_start) as period_end
    from charges as c
    left join covered as v on c.subscription_item_id = v.subscription_item_id
),

periods as (
    select
        subscription_item_id,
        period_start,
        period_end,
        true as is_invoiced
    from invoiced
    union all
    select
        subscription_item_id,
        period_start,
        period_end,
        false as is_invoiced
    from gaps_between
    union all
    select
        subscription_item_id,
        period_start,
        period_end,
        false as is_invoiced
    from gaps_after
    where period_end > period_start
)

select
    c.customer_id,
    c.subscription_id,
    p.subscription_item_id,
    c.meter_code,
    c.stripe_price_id,
    c.contract_price_id,
    c.contract_price_source,
    c.currency,
    p.period_start,
    p.period_end,
    p.is_invoiced
from periods as p
inner join charges as c on p.subscription_item_id = c.subscription_item_id
