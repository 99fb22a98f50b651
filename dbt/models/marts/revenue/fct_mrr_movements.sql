{#- The monthly MRR bridge. Per month: ending = starting + new + expansion + reactivation
    − contraction − churned, exactly (all amounts decimal(38,6), sums of fct_mrr's rounded
    customer amounts). starting_mrr is the previous month's book restated at this month's FX
    rates; fx_restatement_mrr = starting_mrr − previous ending_mrr (0 in one currency).
    nrr_ttm / grr_ttm: exact cohort of the customers paying 12 months earlier, both months at
    this month's rates; GRR caps each customer at its MRR 12 months earlier. Null without a
    full 12 months of history or with nothing to start from. -#}
with mrr as (
    select * from {{ ref('fct_mrr') }}
),

month_range as (
    select
        min(month) as first_month,
        max(month) as last_month
    from mrr
),

month_starts as (
    select
        {{ meterworks.unnest(meterworks.series(
            'cast(first_month as timestamp)', 'cast(last_month as timestamp)', 'interval 1 month'
        )) }} as month_start
    from month_range
),

months as (
    select cast(month_start as date) as month  -- noqa: RF04
    from month_starts
),

bridge as (
    select
        m.month,
        coalesce(sum(r.previous_mrr), 0) as starting_mrr,
        coalesce(sum(r.mrr) filter (where r.movement = 'new'), 0) as new_mrr,
        coalesce(sum(r.mrr_change) filter (where r.movement = 'expansion'), 0) as expansion_mrr,
        coalesce(sum(r.mrr) filter (where r.movement = 'reactivation'), 0) as reactivation_mrr,
        coalesce(-sum(r.mrr_change) filter (where r.movement = 'contraction'), 0) as contraction_mrr,
        coalesce(sum(r.previous_mrr) filter (where r.movement = 'churn'), 0) as churned_mrr,
        coalesce(sum(r.mrr), 0) as ending_mrr,
        count(r.customer_id) filter (where r.previous_mrr > 0) as starting_customers,
        count(r.customer_id) filter (where r.mrr > 0) as ending_customers,
        count(r.customer_id) filter (where r.movement = 'new') as new_customers,
        count(r.customer_id) filter (where r.movement = 'expansion') as expansion_customers,
        count(r.customer_id) filter (where r.movement = 'reactivation') as reactivation_customers,
        count(r.customer_id) filter (where r.movement = 'contraction') as contraction_customers,
        count(r.customer_id) filter (where r.movement = 'churn') as churned_customers
    from months as m
    left join mrr as r on m.month = r.month
    group by 1
),

usage_rates_ranked as (
    select
        u.month,
        u.usage_mrr_local,
        case
            when u.currency = {{ meterworks.reporting_currency() }} then cast(1 as decimal(18, 10))
            else f.rate_to_reporting
        end as fx_rate,
        row_number() over (
            partition by u.customer_id, u.month, u.currency order by f.month desc nulls last
        ) as rate_rank
    from {{ ref('int_usage_months') }} as u
    left join {{ ref('int_fx_rates') }} as f on u.currency = f.currency and u.month >= f.month
),

usage_rates as (
    select
        month,
        usage_mrr_local,
        fx_rate
    from usage_rates_ranked
    where rate_rank = 1
),

usage as (
    select
        month,
        sum(cast(round(usage_mrr_local * fx_rate, 6) as decimal(38, 6))) as usage_mrr
    from usage_rates
    group by 1
),

-- trailing 12 months: the cohort paying 12 months earlier, restated at this month's rates
cohort as (
    select
        m.month,
        c.customer_id,
        c.mrr_source_currency,
        c.currency
    from months as m
    inner join mrr as c on c.month = m.month - interval 12 month and c.mrr > 0
),

cohort_rates_ranked as (
    select
        c.month,
        c.customer_id,
        c.mrr_source_currency,
        case
            when c.currency = {{ meterworks.reporting_currency() }} then cast(1 as decimal(18, 10))
            else f.rate_to_reporting
        end as fx_rate,
        row_number() over (
            partition by c.month, c.customer_id order by f.month desc nulls last
        ) as rate_rank
    from cohort as c
    left join {{ ref('int_fx_rates') }} as f on c.currency = f.currency and c.month >= f.month
),

cohort_rates as (
    select
        month,
        customer_id,
        mrr_source_currency,
        fx_rate
    from cohort_rates_ranked
    where rate_rank = 1
),

cohort_values as (
    select
        c.month,
        cast(round(c.mrr_source_currency * c.fx_rate, 6) as decimal(38, 6)) as start_mrr,
        coalesce(r.mrr, 0) as current_mrr
    from cohort_rates as c
    left join mrr as r on c.customer_id = r.customer_id and c.month = r.month
),

ttm as (
    select
        month,
        sum(start_mrr) as start_mrr,
        sum(current_mrr) as current_mrr,
        sum(least(current_mrr, start_mrr)) as retained_mrr
    from cohort_values
    group by 1
),

first_month as (
    select min(month) as first_month from months
)

select
    b.month,
    {{ meterworks.reporting_currency() }} as reporting_currency,
    cast(b.starting_mrr as decimal(38, 6)) as starting_mrr,
    cast(b.new_mrr as decimal(38, 6)) as new_mrr,
    cast(b.expansion_mrr as decimal(38, 6)) as expansion_mrr,
    cast(b.reactivation_mrr as decimal(38, 6)) as reactivation_mrr,
    cast(b.contraction_mrr as decimal(38, 6)) as contraction_mrr,
    cast(b.churned_mrr as decimal(38, 6)) as churned_mrr,
    cast(b.ending_mrr as decimal(38, 6)) as ending_mrr,
    cast(
        b.starting_mrr - coalesce(lag(b.ending_mrr) over (order by b.month), 0) as decimal(38, 6)
    ) as fx_restatement_mrr,
    b.starting_customers,
    b.ending_customers,
    b.new_customers,
    b.expansion_customers,
    b.reactivation_customers,
    b.contraction_customers,
    b.churned_customers,
    cast(b.ending_mrr * 12 as decimal(38, 6)) as arr,
    case
        when b.ending_customers > 0 then {{ meterworks.exact_divide('b.ending_mrr', 'b.ending_customers') }}
    end as arpa,
    case
        when b.starting_mrr > 0 then cast(round(
                (b.starting_mrr + b.expansion_mrr - b.contraction_mrr - b.churned_mrr) / b.starting_mrr, 6
            ) as decimal(18, 6))
    end as nrr,
    case
        when b.starting_mrr > 0 then cast(round(
                (b.starting_mrr - b.contraction_mrr - b.churned_mrr) / b.starting_mrr, 6
            ) as decimal(18, 6))
    end as grr,
    case
        when b.month - interval 12 month >= f.first_month and t.start_mrr > 0
            then cast(round(t.current_mrr / t.start_mrr, 6) as decimal(18, 6))
    end as nrr_ttm,
    case
        when b.month - interval 12 month >= f.first_month and t.start_mrr > 0
            then cast(round(t.retained_mrr / t.start_mrr, 6) as decimal(18, 6))
    end as grr_ttm,
    case
        when b.starting_customers > 0
            then cast(round(b.churned_customers / b.starting_customers, 6) as decimal(18, 6))
    end as logo_churn_rate,
    coalesce(u.usage_mrr, cast(0 as decimal(38, 6))) as usage_mrr
from bridge as b
cross join first_month as f
left join usage as u on b.month = u.month
left join ttm as t on b.month = t.month
