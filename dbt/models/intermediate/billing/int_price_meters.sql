{#- Which Meterworks meter a metered Stripe price bills, first match wins: the price's
    metadata.meterworks_meter, the event name of the Stripe billing meter it is linked to
    (recurring.meter), then a lookup key that is the meter code or ends in `_<meter code>`
    (the longest such code). Prices that map to no known meter are left out. -#}
with meters as (
    select meter_code from {{ ref('stg_meterworks__meters') }}
),

prices as (
    select
        p.price_id,
        p.metadata_meter_code,
        p.lookup_key,
        bm.event_name as billing_meter_event_name
    from {{ ref('stg_stripe__prices') }} as p
    left join {{ ref('stg_stripe__billing_meters') }} as bm
        on p.stripe_meter_id = bm.stripe_meter_id
    where p.usage_type = 'metered'
),

by_lookup_key as (
    select
        p.price_id,
        m.meter_code,
        row_number() over (partition by p.price_id order by length(m.meter_code) desc) as rn
    from prices as p
    inner join meters as m
        on
            p.lookup_key = m.meter_code
            or right(p.lookup_key, length(m.meter_code) + 1) = '_' || m.meter_code
)

select
    p.price_id,
    coalesce(by_metadata.meter_code, by_meter.meter_code, k.meter_code) as meter_code,
    case
        when by_metadata.meter_code is not null then 'metadata'
        when by_meter.meter_code is not null then 'billing_meter'
        else 'lookup_key'
    end as mapped_by
from prices as p
left join meters as by_metadata on p.metadata_meter_code = by_metadata.meter_code
left join meters as by_meter on p.billing_meter_event_name = by_meter.meter_code
left join by_lookup_key as k on p.price_id = k.price_id and k.rn = 1
where coalesce(by_metadata.meter_code, by_meter.meter_code, k.meter_code) is not null
