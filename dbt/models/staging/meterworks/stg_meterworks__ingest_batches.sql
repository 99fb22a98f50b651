select
    batch_id,
    started_at,
    committed_at,
    files,
    rows_read,
    accepted,
    duplicates,
    conflicts,
    quarantined,
    corrections,
    first_event_seq,
    last_event_seq
from {{ source('meterworks', 'ingest_batches') }}
