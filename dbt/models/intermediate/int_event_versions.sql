{#- Every raw event row as a version of its transaction: transaction_id is the corrected
    transaction for voids/amends, and superseded_at_seq is set once a later correction
    replaced this version. -#}

select
    e.event_seq,
    e.batch_id,
    e.transaction_id as source_transaction_id,
    e.action,
    e.customer_id,
    e.event_name,
    e.event_ts,
    e.properties,
    c.superseded_at_seq,
    coalesce(e.corrects_transaction_id, e.transaction_id) as transaction_id
from {{ ref('stg_meterworks__events') }} as e
left join {{ ref('int_event_corrections') }} as c
    on e.event_seq = c.version_seq
