{#- Lines of credit notes that are not void, with the invoice line each one credits. A credit
    note's lines are embedded in it (first page) and may also be stored on their own. -#}
with notes as (
    select
        id as credit_note_id,
        data
    from {{ meterworks.stripe_objects('credit_note') }}
    where coalesce({{ meterworks.json_path_text('data', 'status') }}, 'issued') != 'void'
),

embedded as (
    select
        credit_note_id,
        data as note_json,
        {{ meterworks.unnest(meterworks.json_path_array('data', 'lines.data')) }} as line_json
    from notes
),

standalone as (
    select
        n.credit_note_id,
        n.data as note_json,
        l.data as line_json
    from {{ meterworks.stripe_objects('credit_note_line_item') }} as l
    inner join notes as n on l.parent_id = n.credit_note_id
),

lines as (
    select * from embedded
    union all
    select * from standalone
),

parsed as (
    select
        {{ meterworks.json_path_text('line_json', 'id') }} as credit_note_line_id,
        credit_note_id,
        {{ meterworks.json_path_text('note_json', 'invoice') }} as invoice_id,
        {{ meterworks.json_path_text('line_json', 'invoice_line_item') }} as invoice_line_id,
        {{ meterworks.json_path_text('line_json', 'type') }} as line_type,
        cast({{ meterworks.json_path_text('line_json', 'quantity') }} as decimal(38, 9)) as quantity,
        cast({{ meterworks.json_path_text('line_json', 'amount') }} as {{ dbt.type_bigint() }}) as amount,
        {{ meterworks.json_path_epoch('note_json', 'created') }} as created_at
    from lines
),

ranked as (
    select
        *,
        row_number() over (partition by credit_note_line_id order by credit_note_id) as row_rank
    from parsed
)

select
    credit_note_line_id,
    credit_note_id,
    invoice_id,
    invoice_line_id,
    line_type,
    quantity,
    amount,
    created_at
from ranked
where row_rank = 1
