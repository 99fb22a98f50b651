{#- MRR per customer and month, from the customer's first paying month through the month it
    churns (months without MRR inside a lifetime included, at 0). See the YAML and README for the
    policies. FX: each month is converted at that month's rate (the latest FX-table rate at or
    before the month; the reporting currency at 1), and previous_mrr is the previous month's
    source amount restated at THIS month's rate, so mrr_change and the movement never contain an
    FX move; the revaluation of the opening book is fct_mrr_movements.fx_restatement_mrr. -#}
with as_of as (
    select cast(date_trunc('month', {{ meterworks.as_of() }}) as date) as current_month
),

subscription_months as (
    select * from {{ ref('int_mrr_subscription_months') }}
),

customer_months as (
    select
        customer_id,
        month,
        min(currency) as currency,
        sum(mrr_local) as mrr_local,
        count(distinct case when mrr_local > 0 then subscription_id end) as active_subscriptions
    from subscription_months
    group by 1, 2
),

lifetimes as (
    select
        customer_id,
        min(month) as first_paying_month,
        max(month) as last_paying_month
    from customer_months
    where mrr_local > 0
    group by 1
),

spine as (
    select
        l.customer_id,
        cast(m.month_start as date) as month  -- noqa: RF04
    from lifetimes as l
    cross join as_of as a
    {{ meterworks.cross_join_unnest(
        meterworks.series(
            'cast(l.first_paying_month as timestamp)',
            'cast(least(l.last_paying_month + interval 1 month, a.current_month) as timestamp)',
            'interval 1 month'
        ),
        'm',
        'month_start'
    ) }}
),

filled as (
    select
        s.customer_id,
        s.month,
        coalesce(cm.mrr_local, 0) as mrr_local,
        coalesce(
            lag(coalesce(cm.mrr_local, 0)) over (partition by s.customer_id order by s.month), 0
        ) as previous_mrr_local,
        coalesce(cm.active_subscriptions, 0) as active_subscriptions,
        -- the currency of the customer's latest month with a subscription
        coalesce(
            cm.currency,
            {{ meterworks.last_value_ignore_nulls('cm.currency') }} over (
                partition by s.customer_id order by s.month rows between unbounded preceding and current row
            )
        ) as currency,
        s.month = min(s.month) over (partition by s.customer_id) as is_first_month
    from spine as s
    left join customer_months as cm on s.customer_id = cm.customer_id and s.month = cm.month
),

rates_ranked as (
    select
        f.customer_id,
        f.month,
        case
            when f.currency = {{ meterworks.reporting_currency() }} then cast(1 as decimal(18, 10))
            else r.rate_to_reporting
        end as fx_rate,
        row_number() over (
            partition by f.customer_id, f.month order by r.month desc nulls last
        ) as rate_rank
    from filled as f
    left join {{ ref('int_fx_rates') }} as r
        on f.currency = r.currency and f.month >= r.month
),

rates as (
    select
        customer_id,
        month,
        fx_rate
    from rates_ranked
    where rate_rank = 1
),

usage as (
    select
        customer_id,
        month,
        sum(usage_mrr_local) as usage_mrr_local
    from {{ ref('int_usage_months') }}
    group by 1, 2
),

converted as (
    select
        f.month,
        f.customer_id,
        f.mrr_local,
        cast(round(f.mrr_local * r.fx_rate, 6) as decimal(38, 6)) as mrr,
        cast(round(coalesce(u.usage_mrr_local, 0) * r.fx_rate, 6) as decimal(38, 6)) as usage_mrr,
        cast(round(f.previous_mrr_local * r.fx_rate, 6) as decimal(38, 6)) as previous_mrr,
        f.is_first_month,
        f.currency,
        r.fx_rate,
        f.active_subscriptions
    from filled as f
    inner join rates as r on f.customer_id = r.customer_id and f.month = r.month
    left join usage as u on f.customer_id = u.customer_id and f.month = u.month
)

select
    month,
    customer_id,
    mrr,
    usage_mrr,
    previous_mrr,
    cast(mrr - previous_mrr as decimal(38, 6)) as mrr_change,
    case
        when is_first_month then 'new'
        when mrr = 0 and previous_mrr > 0 then 'churn'
        when mrr > 0 and previous_mrr = 0 then 'reactivation'
        when mrr > previous_mrr then 'expansion'
        when mrr < previous_mrr then 'contraction'
    end as movement,
    currency,
    fx_rate,
    {{ meterworks.reporting_currency() }} as reporting_currency,
    active_subscriptions,
    cast(mrr_local as decimal(38, 6)) as mrr_source_currency
from converted
