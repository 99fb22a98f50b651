"""Shape detection, normalisation and per-row validation, as one SQL select.

Input: a relation ``(file_idx, line_no, raw, doc, keep_raw)`` (see ``readers``). Output: one row per input
row with the canonical fields, the canonical properties text and, for rows that cannot be used,
a quarantine ``reason`` and ``detail``. Each JSON document is parsed once for all its fields
(one ``json_transform`` into a struct of all fields), which is what keeps 10M rows fast.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from meterworks.catalog import VALUE_AGGREGATIONS, Catalog
from meterworks.ingest.readers import JSON_NUMBER_RE, q

# Top-level fields of every shape (all read as text; objects come back as JSON text).
_FIELDS = [
    "transaction_id",  # canonical, lago, metronome
    "customer_id",  # canonical, metronome, orb
    "event",  # canonical; an object here is Lago's API body wrapper {"event": {...}}
    "timestamp",  # canonical, lago, orb, metronome
    "code",  # lago
    "external_customer_id",  # lago, orb
    "external_subscription_id",  # lago
    "idempotency_key",  # orb
    "event_name",  # orb
    "event_type",  # metronome
    "specversion",  # cloudevents
    "id",  # cloudevents
    "subject",  # cloudevents
    "type",  # cloudevents
    "time",  # cloudevents
    "action",  # corrections
    "corrects",  # corrections
]
_SPEC = json.dumps({**{name: "VARCHAR" for name in _FIELDS}, "properties": "JSON", "data": "JSON"})
_WRAPPED = [
    "transaction_id", "external_customer_id", "external_subscription_id", "code", "timestamp",
    "action", "corrects",
]  # fmt: skip
_WRAPPED_SPEC = json.dumps({**{name: "VARCHAR" for name in _WRAPPED}, "properties": "JSON"})

_NUMERIC_TS_RE = r"^-?[0-9]+(\.[0-9]+)?$"


def _prop_path(prop: str) -> str:
    return q("$." + '"' + prop.replace('"', '\\"') + '"')


def property_checks(
    catalog: Catalog, props: str = "props", typed: bool = False
) -> tuple[str, str, list[str]]:
    """SQL ``(reason, detail, type columns)`` for the catalog's property requirements.

    Evaluated on rows whose event name is known; ``props`` is the properties' JSON text column.
    A meter with filters only constrains the events its filters select. With ``typed`` the
    JSON type of each required property is computed once per row, in the returned columns
    (``_pt<n>``), instead of once per check.
    """
    reason_cases: list[str] = []
    detail_cases: list[str] = []
    type_columns: list[str] = []
    slots: dict[tuple[str, str], str] = {}
    for meter in catalog.meters:
        if not meter.property:
            continue
        path = _prop_path(meter.property)
        key = (meter.event, meter.property)
        if key not in slots:
            slots[key] = f"_pt{len(slots)}"
            type_columns.append(
                f"case when event_name = {q(meter.event)} then json_type({props}, {path}) end "
                f"as {slots[key]}"
            )
        ptype = slots[key] if typed else f"json_type({props}, {path})"
        applies = [f"event_name = {q(meter.event)}"]
        for fkey, allowed in sorted(meter.filters.items()):
            values = ", ".join(q(v) for v in allowed)
            applies.append(f"json_extract_string({props}, {_prop_path(fkey)}) in ({values})")
        cond = " and ".join(applies)
        missing = f"coalesce({ptype}, 'NULL') = 'NULL'"
        who = f"meter {meter.code!r} ({meter.aggregation})"
        reason_cases.append(f"when {cond} and {missing} then 'missing_property'")
        detail_cases.append(
            f"when {cond} and {missing} then "
            f"{q(f'property {meter.property!r} is required by {who}')}"
        )
        if meter.aggregation in VALUE_AGGREGATIONS:
            numeric = (
                f"({ptype} in ('BIGINT', 'UBIGINT', 'DOUBLE') or "
                f"({ptype} = 'VARCHAR' and regexp_matches("
                f"json_extract_string({props}, {path}), {q(JSON_NUMBER_RE)})))"
            )
            reason_cases.append(f"when {cond} and not {numeric} then 'non_numeric_value'")
            detail_cases.append(
                f"when {cond} and not {numeric} then "
                f"{q(f'property {meter.property!r} must be a number for {who}, got ')} || "
                f"json_extract({props}, {path})::VARCHAR"
            )
    if not reason_cases:
        return "NULL", "NULL", type_columns
    return (
        "case " + " ".join(reason_cases) + " end",
        "case " + " ".join(detail_cases) + " end",
        type_columns,
    )


def canonical_props_sql(key_sets: list[tuple[int, list[str]]]) -> str:
    """SQL for the canonical properties text of ``_mw_rows.props``.

    Canonical = top-level keys sorted, no whitespace, null-valued keys dropped. Rebuilding a
    JSON object per row is slow in SQL, so the batch's most common key sets (``props_sig`` ->
    keys, found by the caller) get a fast path: already sorted -> the text as is; otherwise a
    ``json_transform`` into a struct with sorted fields. Everything else takes the general path.
    """
    branches = []
    for sig, keys in key_sets:
        if keys == sorted(keys):
            branches.append(f"when props_sig = {sig} then props")
        else:
            spec = json.dumps({key: "JSON" for key in sorted(keys)})
            branches.append(
                f"when props_sig = {sig} then to_json(json_transform(props, {q(spec)}))::VARCHAR"
            )
    general = """'{' || array_to_string(list_transform(
            list_filter(
                list_sort(map_entries(json_transform(props, '"MAP(VARCHAR, JSON)"'))),
                lambda e: e.value is not null),
            lambda e: to_json(e.key)::VARCHAR || ':' || e.value::VARCHAR), ',') || '}'"""
    if not branches:
        return general
    return "case " + " ".join(branches) + f" else {general} end"


def content_hash_sql(props: str = "props") -> str:
    """SQL for ``content_hash``: the canonical content (customer, event, epoch microseconds,
    canonical properties, action, corrects) joined by U+001F, MD5, upper 64 bits.

    NULL when a part is NULL. ``concat`` builds the text in one pass (a chain of ``||`` copies
    it once per operator); it skips NULLs, hence the explicit guard.
    """
    parts = ["customer_id", "event_name", "event_ts", props, "action"]
    return (
        f"case when {' and '.join(f'{part} is not null' for part in parts)} then "
        "(md5_number(concat(customer_id, chr(31), event_name, chr(31), "
        f"epoch_us(event_ts)::VARCHAR, chr(31), {props}, chr(31), action, chr(31), "
        "coalesce(corrects, ''))) >> 64)::UBIGINT end"
    )


def normalize_select(
    source: str,
    catalog: Catalog,
    now: datetime,
    key_sets: list[tuple[int, list[str]]] | None = None,
) -> str:
    """The select that turns ``source`` rows into normalised, validated rows.

    ``source`` has columns ``(file_idx, line_no, raw, doc, keep_raw)``. Only rows that may end
    up in quarantine keep their raw text (all rows when ``keep_raw``): valid rows do not need
    it, which halves the memory of a big batch. ``key_sets`` (see ``canonical_props_sql``)
    turns on canonical properties and ``content_hash``; without it ``props`` is the text as
    read and ``content_hash`` is NULL (used to sample key sets).
    """
    oldest = now - timedelta(days=catalog.backdating_days)
    newest = now + timedelta(minutes=catalog.future_tolerance_minutes)
    oldest_sql = f"timestamp {q(oldest.strftime('%Y-%m-%d %H:%M:%S.%f'))}"
    newest_sql = f"timestamp {q(newest.strftime('%Y-%m-%d %H:%M:%S.%f'))}"
    events = ", ".join(q(name) for name in sorted(catalog.event_names))
    prop_reason, _, type_columns = property_checks(catalog, typed=True)
    _, prop_detail, _ = property_checks(catalog, "props_json::VARCHAR")
    typed = "".join(f",\n            {column}" for column in type_columns)
    if key_sets is None:
        canonical, hashed = "props", "NULL::UBIGINT"
    else:
        canonical = f"case when reason is null then {canonical_props_sql(key_sets)} end"
        hashed = content_hash_sql()

    def pick(cloudevents: str, orb: str, lago: str, metronome: str, canonical: str) -> str:
        return (
            f"case shape when 'canonical' then {canonical} when 'lago' then {lago} "
            f"when 'orb' then {orb} when 'metronome' then {metronome} "
            f"when 'cloudevents' then {cloudevents} end"
        )

    return f"""
    with x as (
        select file_idx, line_no, raw, keep_raw,
            -- CASE, not OR/AND: DuckDB short-circuits only CASE inside a projection
            case when s is not null then true else trim(doc::VARCHAR) = 'null' end as is_json,
            case when s is null then false
                 when starts_with(doc::VARCHAR, '{{') then true
                 else starts_with(ltrim(doc::VARCHAR), '{{') end as is_obj, s
        from (
            select *, json_transform(try_cast(doc as JSON), {q(_SPEC)}) as s
            from ({source})
        )
    ),
    y as (
        select *,
            case when is_obj and starts_with(s.event, '{{')
                 then json_transform(s.event, {q(_WRAPPED_SPEC)}) end as w,
            case
                when not is_obj then NULL
                when s.specversion is not null then 'cloudevents'
                when starts_with(s.event, '{{') then 'lago'
                when s.idempotency_key is not null or s.event_name is not null then 'orb'
                when s.code is not null or s.external_customer_id is not null
                    or s.external_subscription_id is not null then 'lago'
                when s.event_type is not null then 'metronome'
                else 'canonical'
            end as shape
        from x
    ),
    yt as (
        select *, case when w is not null then w.timestamp
                       when shape = 'cloudevents' then s.time else s.timestamp end as ts_raw
        from y
    ),
    f as (
        select file_idx, line_no, raw, keep_raw, is_json, is_obj, shape,
            nullif(case when w is not null then w.transaction_id else {
        pick(
            "s.id", "s.idempotency_key", "s.transaction_id", "s.transaction_id", "s.transaction_id"
        )
    } end, '') as transaction_id,
            nullif(case when w is not null
                 then coalesce(w.external_customer_id, w.external_subscription_id)
                 else {
        pick(
            "s.subject",
            "coalesce(s.external_customer_id, s.customer_id)",
            "coalesce(s.external_customer_id, s.external_subscription_id)",
            "s.customer_id",
            "s.customer_id",
        )
    } end, '') as customer_id,
            nullif(case when w is not null then w.code else {
        pick("s.type", "s.event_name", "s.code", "s.event_type", "s.event")
    } end, '')
                as event_name,
            nullif(ts_raw, '') as ts_text,
            -- no number has a ':' (an RFC 3339 time always has one): skip the DOUBLE cast
            case when contains(ts_raw, ':') then NULL else try_cast(ts_raw as DOUBLE) end
                as ts_num,
            case when w is not null then w.properties
                 when shape = 'cloudevents' then s.data else s.properties end as props_json,
            lower(nullif(case when w is not null then w.action else s.action end, ''))
                as action_in,
            nullif(case when w is not null then w.corrects else s.corrects end, '')
                as corrects
        from yt
    ),
    t as (
        select *,
            case
                when ts_text is null then NULL
                when ts_num is null then try_cast(ts_text as TIMESTAMPTZ)::TIMESTAMP
                when not regexp_matches(ts_text, {q(_NUMERIC_TS_RE)}) or abs(ts_num) > 1e14
                    then NULL
                when abs(ts_num) > 1e11 then make_timestamp(cast(ts_num * 1000 as BIGINT))
                else make_timestamp(cast(ts_num * 1000000 as BIGINT))
            end as event_ts,
            coalesce(action_in, 'record') as action,
            case
                when props_json is null or props_json::VARCHAR = 'null' then '{{}}'
                when starts_with(props_json::VARCHAR, '{{') then props_json::VARCHAR
            end as props
        from f
    ),
    tp as (
        select *{typed} from t
    ),
    v as (
        select *,
            case
                -- the common case first: a plain record with everything present
                when action_in is null and corrects is null and event_ts is not null
                     and transaction_id is not null and customer_id is not null
                     and props is not null and event_name in ({events}) then {prop_reason}
                when not is_json then 'invalid_json'
                when not is_obj then 'not_an_object'
                when action_in is not null and action_in not in ('record', 'void', 'amend')
                    then 'invalid_correction'
                when transaction_id is null then 'missing_transaction_id'
                when action <> 'record' and corrects is null then 'invalid_correction'
                when action = 'record' and corrects is not null then 'invalid_correction'
                when corrects = transaction_id then 'invalid_correction'
                when action = 'void' then NULL
                when customer_id is null then 'missing_customer'
                when event_name is null then 'missing_event_name'
                when ts_text is null then 'missing_timestamp'
                when event_ts is null then 'invalid_timestamp'
                when props is null then 'invalid_properties'
                when event_name not in ({events}) then 'unknown_event'
                else {prop_reason}
            end as reason0
        from tp
    ),
    r as (
        select *,
            case
                when reason0 is not null then reason0
                when action = 'void' then NULL
                when event_ts < {oldest_sql} then 'outside_backdating_window'
                when event_ts > {newest_sql} then 'timestamp_in_future'
            end as reason
        from v
    ),
    c as (
        select * replace (case when reason is null then props end as props),
            case when reason is null and not contains(props, 'null')
                 then hash(json_keys(props)) end as props_sig
        from r
    ),
    k as (
        select * replace ({canonical} as props) from c
    )
    select file_idx, line_no,
        case when keep_raw or reason is not null or action <> 'record' then raw end as raw,
        shape, transaction_id, customer_id, event_name, event_ts, props,
        {"props_sig" if key_sets is None else "NULL::UBIGINT"} as props_sig,
        case when reason is null then {hashed} end as content_hash,
        action, corrects, reason,
        case
            when reason is null then NULL
            when reason = 'invalid_json' then 'the line is not valid JSON'
            when reason = 'not_an_object' then 'the row is JSON but not an object'
            when reason = 'invalid_correction' then (
                case when action_in not in ('record', 'void', 'amend')
                        then 'action must be record, void or amend, got ' || action_in
                     when action = 'record'
                        then '"corrects" is only allowed with action void or amend'
                     when corrects = transaction_id then 'an event cannot correct itself'
                     else 'action ' || action || ' needs "corrects": <transaction_id>' end)
            when reason = 'missing_transaction_id' then 'no transaction id (' || (
                case shape when 'cloudevents' then 'id' when 'orb' then 'idempotency_key'
                           else 'transaction_id' end) || ') in a ' || shape || ' event'
            when reason = 'missing_customer' then 'no customer (' || (
                case shape when 'cloudevents' then 'subject'
                           when 'orb' then 'external_customer_id or customer_id'
                           when 'lago' then 'external_customer_id or external_subscription_id'
                           else 'customer_id' end) || ') in a ' || shape || ' event'
            when reason = 'missing_event_name' then 'no event name (' || (
                case shape when 'cloudevents' then 'type' when 'orb' then 'event_name'
                           when 'lago' then 'code' when 'metronome' then 'event_type'
                           else 'event' end) || ') in a ' || shape || ' event'
            when reason = 'missing_timestamp' then 'no timestamp in a ' || shape || ' event'
            when reason = 'invalid_timestamp' then 'cannot read timestamp ' || ts_text
                || ' (expected RFC 3339, epoch seconds or epoch milliseconds)'
            when reason = 'invalid_properties' then 'properties must be a JSON object, got '
                || left(props_json::VARCHAR, 200)
            when reason = 'unknown_event' then 'no meter listens to event ' || event_name
            when reason = 'outside_backdating_window' then 'timestamp '
                || strftime(event_ts, '%Y-%m-%dT%H:%M:%SZ')
                || ' is older than the backdating window ({catalog.backdating_days} days, before '
                || {q(oldest.strftime("%Y-%m-%dT%H:%M:%SZ"))} || ')'
            when reason = 'timestamp_in_future' then 'timestamp '
                || strftime(event_ts, '%Y-%m-%dT%H:%M:%SZ') || ' is more than '
                || '{catalog.future_tolerance_minutes} minutes in the future'
            else {prop_detail}
        end as detail
    from k
    """
