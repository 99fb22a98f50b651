{#- The effective events: for each transaction, the version with the highest event_seq among
    the original and its corrections; a transaction whose effective version is a void is gone,
    and an amend's content replaces the original's. -#}

select
    event_seq,
    batch_id,
    transaction_id,
    source_transaction_id,
    action,
    customer_id,
    event_name,
    event_ts,
    properties,
    superseded_at_seq
from {{ ref('int_event_versions') }}
where
    superseded_at_seq is null
    and action != 'void'
