select
    batch_id,
    source_file,
    source_line,
    raw_text,
    reason,
    detail,
    transaction_id,
    customer_id,
    event_name,
    quarantined_at
from {{ source('meterworks', 'quarantine') }}
