select
    event_seq,
    batch_id,
    transaction_id,
    action,
    corrects_transaction_id,
    customer_id,
    event_name,
    event_ts,
    properties,
    source_shape,
    source_file,
    source_line,
    ingested_at
from {{ source('meterworks', 'events') }}
