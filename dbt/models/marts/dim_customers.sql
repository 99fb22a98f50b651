{#- Customers from the catalog plus every customer seen in events (time zone UTC when the
    catalog does not know them). -#}

with seen as (
    select distinct customer_id
    from {{ ref('stg_meterworks__events') }}
),

catalog as (
    select * from {{ ref('stg_meterworks__customers') }}
)

select
    c.customer_name,
    c.plan_code,
    coalesce(c.customer_id, s.customer_id) as customer_id,
    coalesce(c.timezone, 'UTC') as timezone,
    c.customer_id is not null as in_catalog,
    s.customer_id is not null as has_events
from catalog as c
full outer join seen as s
    on c.customer_id = s.customer_id
