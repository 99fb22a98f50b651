{#- What each customer pays for, one row per charge:
    * `stripe`: a subscription item of a Stripe subscription (metered items carry the meter
      they bill; licensed items, e.g. a base fee, have none);
    * `catalog`: a plan charge of a catalog customer that has no Stripe customer (billed
      outside Stripe, calendar months in the customer's time zone).
    `contract_price_id` is the price Meterworks rates with: the catalog plan's price for the
    meter when the customer's catalog plan has one (the agreed price; a Stripe price that
    differs is pricing drift), else the Stripe price. -#}
with catalog_customers as (
    select * from {{ ref('stg_meterworks__customers') }}
),

plan_charges as (
    select * from {{ ref('stg_meterworks__plan_charges') }}
),

stripe_customers as (
    select * from {{ ref('stg_stripe__customers') }}
),

stripe_items as (
    select
        c.customer_id,
        s.subscription_id,
        i.subscription_item_id,
        i.price_id as stripe_price_id,
        pm.meter_code,
        i.quantity as licensed_quantity,
        s.status as subscription_status,
        s.started_at,
        s.trial_end,
        s.ended_at,
        i.current_period_start,
        i.current_period_end,
        p.currency,
        coalesce(p.recurring_interval, 'month') as billing_interval,
        coalesce(p.recurring_interval_count, 1) as billing_interval_count,
        case when p.usage_type = 'metered' then 'metered' else 'licensed' end as charge_type
    from {{ ref('stg_stripe__subscription_items') }} as i
    inner join {{ ref('stg_stripe__subscriptions') }} as s on i.subscription_id = s.subscription_id
    inner join stripe_customers as c on s.stripe_customer_id = c.stripe_customer_id
    left join {{ ref('stg_stripe__prices') }} as p on i.price_id = p.price_id
    left join {{ ref('int_price_meters') }} as pm on i.price_id = pm.price_id
),

stripe_charges as (
    select
        i.customer_id,
        'stripe' as charge_source,
        i.subscription_id,
        i.subscription_item_id,
        i.charge_type,
        i.meter_code,
        i.stripe_price_id,
        coalesce(pc.price_id, i.stripe_price_id) as contract_price_id,
        case when pc.price_id is not null then 'catalog' else 'stripe' end as contract_price_source,
        pc.included,
        i.licensed_quantity,
        i.subscription_status,
        i.started_at,
        i.trial_end,
        i.ended_at,
        i.current_period_start,
        i.current_period_end,
        i.billing_interval,
        i.billing_interval_count,
        i.currency
    from stripe_items as i
    left join catalog_customers as cc on i.customer_id = cc.customer_id
    left join plan_charges as pc
        on
            cc.plan_code = pc.plan_code
            and i.meter_code = pc.meter_code
            and pc.price_id is not null
),

catalog_charges as (
    select
        cc.customer_id,
        'catalog' as charge_source,
        cast(null as {{ dbt.type_string() }}) as subscription_id,
        'catalog:' || cc.customer_id || ':' || pc.meter_code as subscription_item_id,
        'metered' as charge_type,
        pc.meter_code,
        cast(null as {{ dbt.type_string() }}) as stripe_price_id,
        pc.price_id as contract_price_id,
        'catalog' as contract_price_source,
        pc.included,
        cast(null as decimal(38, 9)) as licensed_quantity,
        'active' as subscription_status,
        cast(null as timestamp) as started_at,
        cast(null as timestamp) as trial_end,
        cast(null as timestamp) as ended_at,
        cast(null as timestamp) as current_period_start,
        cast(null as timestamp) as current_period_end,
        'month' as billing_interval,
        1 as billing_interval_count,
        pc.currency
    from catalog_customers as cc
    inner join plan_charges as pc on cc.plan_code = pc.plan_code
    where not exists (
            select 1 from stripe_customers as sc
            where sc.customer_id = cc.customer_id
        )
)

select * from stripe_charges
union all
select * from catalog_charges
