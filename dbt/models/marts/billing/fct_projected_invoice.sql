{#- What the invoice of each customer's open billing period will be, per charge: quantity and
    amount to date, and projected to the period's end, in the charge's currency (amounts in
    minor units, rated Stripe-exactly with the contract price).

    Open periods: the current period of active, trialing and past-due Stripe subscription items;
    for catalog customers billed outside Stripe, the calendar month in their time zone.

    Projection (additive meters, count and sum): quantity to date plus, for every remaining
    local day of the period, that weekday's usual daily usage (the mean of the same weekday over
    the last 4 complete weeks, days without usage counting as 0), prorated for the partial
    first and last day. Gauges (max, latest) and unique counts project as their value to date.
    Licensed items (e.g. a base fee) project as their quantity. Ops adjustments: usage
    adjustments of the period are added to the quantity to date; each credit on the period is a
    line of its own (charge_type 'credit', negative amounts). -#}

{%- set local_month_start = dbt.date_trunc('month', meterworks.utc_to_local('a.as_of', 'c.timezone')) %}
{%- set local_today = 'cast(' ~ meterworks.utc_to_local('a.as_of', 'w.timezone') ~ ' as date)' %}
{%- set day_start_utc = meterworks.local_to_utc('d.local_day', 'w.timezone') %}
{%- set day_end_utc = meterworks.local_to_utc(dbt.dateadd('day', 1, 'd.local_day'), 'w.timezone') %}
{%- set share_start = 'greatest(' ~ day_start_utc ~ ', a.as_of)' %}
{%- set intervals_before = 'k.n * c.billing_interval_count' %}
{%- set intervals_after = '(k.n + 1) * c.billing_interval_count' %}
{%- set share_end = 'least(' ~ day_end_utc ~ ', w.period_end)' %}

with as_of as (
    select {{ meterworks.as_of() }} as as_of
),

customers as (
    select * from {{ ref('dim_customers') }}
),

charges as (
    select
        c.*,
        coalesce(cu.timezone, 'UTC') as timezone
    from {{ ref('int_billing_charges') }} as c
    left join customers as cu on c.customer_id = cu.customer_id
),

-- A live subscription renews on its own: when the synced current period has already ended
-- (the sync lags), the open period is the one holding as_of, rolled forward by the interval.
rolled as (
    select
        c.*,
        {{ meterworks.add_interval('c.current_period_start', 'c.billing_interval', intervals_before) }}
            as period_start,
        {{ meterworks.add_interval('c.current_period_start', 'c.billing_interval', intervals_after) }}
            as period_end
    from charges as c
    cross join (select {{ meterworks.unnest(meterworks.int_range(0, 60)) }} as n) as k
    where
        c.charge_source = 'stripe'
        and c.subscription_status in ('active', 'trialing', 'past_due')
        and c.current_period_start is not null
),

open_periods as (
    select r.*
    from rolled as r
    cross join as_of as a
    where
        r.period_start <= a.as_of
        and r.period_end > a.as_of
        and (r.ended_at is null or r.ended_at > a.as_of)

    union all

    select
        c.*,
        {{ meterworks.local_to_utc(local_month_start, 'c.timezone') }} as period_start,
        {{ meterworks.local_to_utc(dbt.dateadd('month', 1, local_month_start), 'c.timezone') }} as period_end
    from charges as c
    cross join as_of as a
    where c.charge_source = 'catalog'
),

windows as (
    select
        p.*,
        md5(p.subscription_item_id || '|' || cast(p.period_start as {{ dbt.type_string() }})) as window_key,
        p.period_start as window_start,
        least(p.period_end, a.as_of) as window_end
    from open_periods as p
    cross join as_of as a
    where p.charge_type = 'metered'
),

to_date as (
    {{ meterworks.measure_usage('windows') }}
),

-- the usual usage of each weekday: last 4 complete local weeks before today
history_days as (
    select
        w.window_key,
        cast({{ dbt.dateadd('day', '-d.day_offset', local_today) }} as date) as usage_date
    from windows as w
    cross join as_of as a
    cross join (select {{ meterworks.unnest(meterworks.int_range(1, 29)) }} as day_offset) as d
),

history as (
    select
        h.window_key,
        h.usage_date,
        coalesce(sum(u.quantity), 0) as quantity
    from history_days as h
    inner join windows as w on h.window_key = w.window_key
    left join {{ ref('fct_usage_daily') }} as u
        on
            w.customer_id = u.customer_id
            and w.meter_code = u.meter_code
            and h.usage_date = u.usage_date
    group by 1, 2
),

weekday_rate as (
    select
        window_key,
        dayofweek(usage_date) as day_of_week,
        sum(quantity) as history_quantity,
        count(*) as history_days
    from history
    group by 1, 2
),

-- the local days left in the period, each with the seconds of it still to come
remaining_days as (
    select
        w.window_key,
        d.local_day,
        greatest(
            0,
            {{ dbt.datediff(share_start, share_end, 'second') }}
        ) as remaining_seconds
    from windows as w
    cross join as_of as a
    {{ meterworks.cross_join_unnest(
        meterworks.series(
            'cast(' ~ local_today ~ ' as timestamp)',
            'cast(cast(' ~ meterworks.utc_to_local('w.period_end', 'w.timezone') ~ ' as date) as timestamp)',
            'interval 1 day'
        ),
        'd',
        'local_day'
    ) }}
),

remaining_weekdays as (
    select
        window_key,
        dayofweek(local_day) as day_of_week,
        sum(remaining_seconds) as remaining_seconds
    from remaining_days
    group by 1, 2
),

-- per weekday: remaining seconds x that weekday's mean daily usage / 86400, in exact decimals
-- (rounded half-up to the quantity's 9 places once per weekday), the same on every engine
projection as (
    select
        r.window_key,
        sum(
            {{ meterworks.quantity_divide(
                'r.remaining_seconds * wr.history_quantity', 'wr.history_days * 86400'
            ) }}
        ) as remaining_quantity
    from remaining_weekdays as r
    left join weekday_rate as wr
        on
            r.window_key = wr.window_key
            and r.day_of_week = wr.day_of_week
    group by 1
),

-- ops usage adjustments of the period count as usage to date (and so in the projection)
metered as (
    select
        w.*,
        {{ meterworks.add_quantities('t.quantity', 'coalesce(adj.adjustment_quantity, 0)') }}
            as quantity_to_date,
        case
            when m.aggregation in ('count', 'sum')
                then {{ meterworks.add_quantities(
                    't.quantity', 'coalesce(adj.adjustment_quantity, 0)', 'coalesce(p.remaining_quantity, 0)'
                ) }}
            else {{ meterworks.add_quantities('t.quantity', 'coalesce(adj.adjustment_quantity, 0)') }}
        end as projected_quantity
    from windows as w
    inner join to_date as t on w.window_key = t.window_key
    inner join {{ ref('stg_meterworks__meters') }} as m on w.meter_code = m.meter_code
    left join projection as p on w.window_key = p.window_key
    left join {{ ref('int_usage_adjustments') }} as adj
        on
            w.customer_id = adj.customer_id
            and w.meter_code = adj.meter_code
            and w.period_start = adj.period_start
),

licensed as (
    select
        p.*,
        md5(p.subscription_item_id || '|' || cast(p.period_start as {{ dbt.type_string() }})) as window_key,
        p.period_start as window_start,
        p.period_end as window_end,
        coalesce(p.licensed_quantity, 1) as quantity_to_date,
        coalesce(p.licensed_quantity, 1) as projected_quantity
    from open_periods as p
    where p.charge_type = 'licensed'
),

lines as (
    select * from metered
    union all
    select * from licensed
),

to_rate as (
    select
        window_key || ':to_date' as rating_key,
        contract_price_id as price_id,
        quantity_to_date as quantity
    from lines
    union all
    select
        window_key || ':projected' as rating_key,
        contract_price_id as price_id,
        projected_quantity as quantity
    from lines
),

rated as (
    {{ meterworks.rate_usage('to_rate', ref('int_billing_prices'), ref('int_billing_price_tiers')) }}
),

-- ops credits on an open period: one negative line each, in the period's currency
open_invoices as (
    select distinct
        customer_id,
        currency,
        period_start,
        period_end
    from lines
),

credits as (
    select
        o.customer_id,
        'adjustment' as charge_source,
        cast(null as {{ dbt.type_string() }}) as subscription_id,
        'adjustment:' || c.adjustment_id as subscription_item_id,
        'credit' as charge_type,
        c.meter_code,
        cast(null as {{ dbt.type_string() }}) as price_id,
        cast(null as {{ dbt.type_string() }}) as price_source,
        o.currency,
        o.period_start,
        o.period_end,
        cast(null as {{ meterworks.quantity_type() }}) as included,
        cast(null as {{ meterworks.quantity_type() }}) as quantity_to_date,
        -c.amount_minor as amount_to_date,
        cast(null as {{ meterworks.quantity_type() }}) as projected_quantity,
        -c.amount_minor as projected_amount
    from {{ ref('stg_meterworks__adjustments') }} as c
    inner join open_invoices as o
        on
            c.customer_id = o.customer_id
            and c.period_start = o.period_start
            and coalesce(c.currency, o.currency) = o.currency
    where c.kind = 'credit' and c.amount_minor is not null
)

select
    l.customer_id,
    l.charge_source,
    l.subscription_id,
    l.subscription_item_id,
    l.charge_type,
    l.meter_code,
    l.contract_price_id as price_id,
    l.contract_price_source as price_source,
    l.currency,
    l.period_start,
    l.period_end,
    a.as_of,
    l.included,
    l.quantity_to_date,
    td.amount as amount_to_date,
    l.projected_quantity,
    pj.amount as projected_amount
from lines as l
cross join as_of as a
left join rated as td on l.window_key || ':to_date' = td.rating_key
left join rated as pj on l.window_key || ':projected' = pj.rating_key

union all

select
    c.customer_id,
    c.charge_source,
    c.subscription_id,
    c.subscription_item_id,
    c.charge_type,
    c.meter_code,
    c.price_id,
    c.price_source,
    c.currency,
    c.period_start,
    c.period_end,
    a.as_of,
    c.included,
    c.quantity_to_date,
    c.amount_to_date,
    c.projected_quantity,
    c.projected_amount
from credits as c
cross join as_of as a
