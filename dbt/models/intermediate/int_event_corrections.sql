{{
    config(
        materialized=('table' if target.type == 'spark' else 'incremental'),
        incremental_strategy='delete+insert',
        unique_key='transaction_id',
    )
}}

{#- Every version of every transaction that has been corrected: the original record and each
    void/amend pointing at it, with the event_seq of the version that superseded it.
    Small (corrections are rare), so the effective-event views can anti-join it cheaply.
    Incremental runs rebuild only the transactions corrected by rows after the watermark. -#}

with events as (
    select * from {{ ref('stg_meterworks__events') }}
),

new_corrections as (
    select corrects_transaction_id as transaction_id
    from events
    where
        action in ('void', 'amend')
    {%- if is_incremental() %}
            and event_seq > (select coalesce(max(t.version_seq), -1) from {{ this }} as t)
        {%- endif %}
),

corrected_transactions as (
    select distinct transaction_id from new_corrections
),

versions as (
    select
        e.transaction_id,
        e.event_seq as version_seq,
        e.transaction_id as version_transaction_id,
        e.action
    from events as e
    inner join corrected_transactions as t
        on e.transaction_id = t.transaction_id
    where e.action = 'record'

    union all

    select
        e.corrects_transaction_id as transaction_id,
        e.event_seq as version_seq,
        e.transaction_id as version_transaction_id,
        e.action
    from events as e
    inner join corrected_transactions as t
        on e.corrects_transaction_id = t.transaction_id
    where e.action in ('void', 'amend')
)

select
    transaction_id,
    version_seq,
    version_transaction_id,
    action,
    lead(version_seq) over (
        partition by transaction_id order by version_seq
    ) as superseded_at_seq
from versions
