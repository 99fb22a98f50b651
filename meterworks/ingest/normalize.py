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
#: What ``normalize_select`` reads of each document: every field as text, the objects as JSON.
DOCUMENT_FIELDS = {**{name: "VARCHAR" for name in _FIELDS}, "properties": "JSON", "data": "JSON"}
_SPEC = json.dumps(DOCUMENT_FIELDS)
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
    A meter with filters only constrains the events its filters select. The checks are grouped
    by event (one comparison of the event name per row; within an event, catalog order). With
    ``typed`` the JSON type of each required property is computed once per row, in the
    returned columns (``_pt<n>``: the n-th property of the row's event), not once per check.
    """
    checks: dict[str, list[tuple[str, str]]] = {}
    slots: dict[str, list[str]] = {}
    for meter in catalog.meters:
        if not meter.property:
            continue
        path = _prop_path(meter.property)
        event_props = slots.setdefault(meter.event, [])
        if meter.property not in event_props:
            event_props.append(meter.property)
        ptype = (
            f"_pt{event_props.index(meter.property)}" if typed else f"json_type({props}, {path})"
        )
        applies = []
        for fkey, allowed in sorted(meter.filters.items()):
            values = ", ".join(q(v) for v in allowed)
            applies.append(f"json_extract_string({props}, {_prop_path(fkey)}) in ({values}) and ")
        cond = "".join(applies)
        missing = f"coalesce({ptype}, 'NULL') = 'NULL'"
        who = f"meter {meter.code!r} ({meter.aggregation})"
        event_checks = checks.setdefault(meter.event, [])
        event_checks.append(
            (
                f"when {cond}{missing} then 'missing_property'",
                f"when {cond}{missing} then "
                f"{q(f'property {meter.property!r} is required by {who}')}",
            )
        )
        if meter.aggregation in VALUE_AGGREGATIONS:
            # CASE, not OR/AND: only a string value is read again and matched (OR/AND evaluate
            # both sides for every row). NULL stays NULL (the missing check came first anyway).
            numeric = (
                f"(case when {ptype} is null then NULL "
                f"when {ptype} in ('BIGINT', 'UBIGINT', 'DOUBLE') then true "
                f"when {ptype} = 'VARCHAR' then regexp_matches("
                f"json_extract_string({props}, {path}), {q(JSON_NUMBER_RE)}) else false end)"
            )
            event_checks.append(
                (
                    f"when {cond}not {numeric} then 'non_numeric_value'",
                    f"when {cond}not {numeric} then "
                    f"{q(f'property {meter.property!r} must be a number for {who}, got ')} || "
                    f"json_extract({props}, {path})::VARCHAR",
                )
            )
    type_columns = []
    for n in range(max((len(names) for names in slots.values()), default=0)):
        by_event = " ".join(
            f"when {q(event)} then json_type({props}, {_prop_path(names[n])})"
            for event, names in slots.items()
            if len(names) > n
        )
        type_columns.append(f"case event_name {by_event} end as _pt{n}")
    if not checks:
        return "NULL", "NULL", type_columns

    def by_event(part: int) -> str:
        return (
            "case event_name "
            + " ".join(
                f"when {q(event)} then case {' '.join(c[part] for c in event_checks)} end"
                for event, event_checks in checks.items()
            )
            + " end"
        )

    return by_event(0), by_event(1), type_columns


def fast_path_ok(keys: list[str]) -> bool:
    """Whether rows with the key list ``keys`` (``json_keys``: in order, repeats kept) can take
    a fast path of ``canonical_props_sql``: no repeated key (see ``_general_props_sql``) and
    every key addressable by a JSON path (not empty, no backslash)."""
    return len(set(keys)) == len(keys) and all(key and "\\" not in key for key in keys)


def _general_props_sql() -> str:
    """Canonical text of any object, from its keys ``_k`` (``json_keys``) and its member list
    ``_m`` (``[{k, v}]`` in written order, ``v`` the JSON text of the value).

    Keys sorted, null-valued members dropped, no whitespace. An object that repeats a key gets
    the form the sampled fast path has always given it: when the first occurrences of its keys
    are already in order, the members stay as written (repeats included); otherwise each key
    once, in order, with its first value.
    """
    firsts = "list_filter(_m, lambda e, i: list_position(_k, e.k) = i)"
    first_keys = f"list_transform({firsts}, lambda e: e.k)"
    ordered = f"""case
                when len(list_distinct(_k)) = len(_k) then list_sort(_m)
                when {first_keys} = list_sort({first_keys}) then _m
                else list_sort({firsts}) end"""
    return f"""'{{' || array_to_string(list_transform(
            list_filter({ordered}, lambda e: e.v <> 'null'),
            lambda e: to_json(e.k)::VARCHAR || ':' || e.v), ',') || '}}'"""


def _fast_key_sets(key_sets: list[tuple[int, list[str]]]) -> list[tuple[int, list[str]]]:
    return [(sig, keys) for sig, keys in key_sets if fast_path_ok(keys)]


def _sig_in(sigs) -> str:
    """``props_sig`` is one of ``sigs``. Neither ``IN (...)`` nor ``list_contains``: DuckDB
    plans a list of five or more constants as a join, and a join in the normalising insert
    loses the file order that line numbers are taken from (test_normalize_plan_has_no_join)."""
    return f"list_position([{', '.join(sigs)}]::UBIGINT[], props_sig) is not null"


def _as_is_sql(key_sets: list[tuple[int, list[str]]]) -> str:
    """SQL for ``_asis``: the properties text is canonical as it is (a fast key set with sorted
    keys, no null value; the text is what ``json_transform`` wrote, so without whitespace)."""
    sigs = [str(sig) for sig, keys in _fast_key_sets(key_sets) if keys == sorted(keys)]
    if not sigs:
        return "false"
    return f"case when {_sig_in(sigs)} then not contains(props, 'null') else false end"


def _fast_values_sql(key_sets: list[tuple[int, list[str]]]) -> str:
    """SQL for ``_v``: the values (JSON text, in sorted key order) of a row whose key set has
    a fast path but whose text is not canonical as it is; one parse for all keys."""
    cases = [
        f"when {sig} then json_extract(props, [{', '.join(map(_prop_path, sorted(keys)))}])"
        for sig, keys in _fast_key_sets(key_sets)
        if keys
    ]
    if not cases:
        return "NULL::JSON[]"
    return f"case when _asis then NULL else case props_sig {' '.join(cases)} end end"


#: The most common fast key sets get a branch of their own in ``canonical_props_sql``
#: (fastest per row); the others share one list-based expression (cheaper to plan).
INLINE_KEY_SETS = 8


def _key_text(key: str, key_json: dict[str, str] | None) -> str:
    return q(key_json[key]) if key_json and key in key_json else f"to_json({q(key)})::VARCHAR"


def _key_texts_sql(
    key_sets: list[tuple[int, list[str]]], key_json: dict[str, str] | None = None
) -> str:
    """SQL for ``_kt``: the JSON text of the sorted keys of a row on a shared fast path."""
    cases = [
        f"when {sig} then [{', '.join(_key_text(key, key_json) for key in sorted(keys))}]"
        for sig, keys in _fast_key_sets(key_sets)[INLINE_KEY_SETS:]
        if keys
    ]
    return f"case props_sig {' '.join(cases)} end" if cases else "NULL::VARCHAR[]"


def canonical_props_sql(
    key_sets: list[tuple[int, list[str]]], key_json: dict[str, str] | None = None
) -> str:
    """SQL for the canonical properties text of ``_mw_rows.props``.

    Canonical = top-level keys sorted, no whitespace, null-valued keys dropped. Rebuilding a
    JSON object per row is slow in SQL, so the batch's most common key sets (``props_sig`` ->
    keys, found by the caller) get a fast path: keys already sorted and no null (``_asis``) ->
    the text as it is; otherwise the non-null values of the sorted keys (``_v``) joined with
    the keys' JSON text (``key_json``: ``to_json(key)`` of each key, computed once by the
    caller, else in the SQL; ``_kt`` for the key sets after the first ``INLINE_KEY_SETS``).
    Everything else takes the general path (``_general_props_sql``), which gives the same text.
    """
    branches = ["when _asis then props"] if _fast_key_sets(key_sets) else []
    fast = [(sig, keys) for sig, keys in _fast_key_sets(key_sets) if keys]
    for sig, keys in fast[:INLINE_KEY_SETS]:
        members = ", ".join(
            f"case when _v[{i}] <> 'null' then concat({_key_text(key, key_json)}, ':', _v[{i}]) end"
            for i, key in enumerate(sorted(keys), start=1)
        )
        branches.append(
            f"when props_sig = {sig} then concat('{{', concat_ws(',', {members}), '}}')"
        )
    shared = [str(sig) for sig, _ in fast[INLINE_KEY_SETS:]]
    if shared:
        branches.append(
            f"when {_sig_in(shared)} then '{{' || array_to_string(list_filter("
            "list_transform(_v, lambda v, i: case when v <> 'null' then concat(_kt[i], ':', v) end),"
            " lambda m: m is not null), ',') || '}'"
        )
    general = _general_props_sql()
    if not branches:
        return general
    return f"case {' '.join(branches)} else {general} end"


def _canonical_columns(
    general: str, as_is: str = "false", values: str = "NULL::JSON[]", key_texts: str = "NULL"
) -> str:
    """CTEs from ``cs`` (``props``, ``_k``, ``props_sig``) to ``g`` (+ ``_asis``, ``_v``,
    ``_kt``, ``_m``)."""
    return f"""
    ga as (
        select *, {as_is} as _asis from cs
    ),
    gv as (
        select *,
            {values} as _v,
            -- values (JSON text, in written order) of the objects that take the general path
            case when {general} then json_extract(props, '$.*') end as _vg
        from ga
    ),
    g as (
        select *,
            case when _v is not null then {key_texts} end as _kt,
            case when _vg is not null
                 then list_transform(_k, lambda key, i: {{'k': key, 'v': _vg[i]}}) end as _m
        from gv
    )"""


def fast_values_check_select(key_sets: list[tuple[int, list[str]]]) -> str:
    """A query that binds the fast paths' JSON paths (``_v``) without reading any row: the
    caller drops a key set whose paths DuckDB would not take."""
    return (
        f"select {_fast_values_sql(key_sets)} "
        "from (select NULL::UBIGINT as props_sig, NULL::VARCHAR as props, false as _asis)"
    )


def fast_sigs(key_sets: list[tuple[int, list[str]]]) -> list[int]:
    """The ``props_sig`` values ``canonical_props_sql`` has a fast path for."""
    return [sig for sig, _ in _fast_key_sets(key_sets)]


def key_set_sample_select(source: str, limit: int) -> str:
    """``(props_sig, props)`` of the first ``limit`` rows of ``source`` whose properties are an
    object (the sig as ``normalize_select`` computes it).

    Only picks which key sets get a fast path, so it can be rough: it skips the validation
    (a row that will be quarantined only takes a place in the sample).
    """
    spec = json.dumps(
        {"specversion": "VARCHAR", "event": "JSON", "properties": "JSON", "data": "JSON"}
    )
    return f"""
    with x as (
        select json_transform(try_cast(doc as JSON), {q(spec)}) as s
        from (select doc from ({source}) limit {limit})
    ),
    p as (
        select case when s.specversion is not null then s.data::VARCHAR
                    when starts_with(s.event::VARCHAR, '{{')
                        then json_extract(s.event, '$.properties')::VARCHAR
                    else s.properties::VARCHAR end as props
        from x
    )
    select hash(json_keys(props)) as props_sig, props from p where starts_with(props, '{{')
    """


def content_sql(
    customer: str = "customer_id",
    event: str = "event_name",
    ts: str = "event_ts",
    props: str = "props",
    action: str = "action",
    corrects: str = "corrects",
) -> str:
    """SQL for an event's content, which decides duplicate (same content) or conflict
    (different content) between two rows of one transaction id: customer, event, timestamp,
    canonical properties, action and the corrected id.

    Compared as a value, not hashed: only the ids a batch sees twice or already stored are
    compared, so nothing is computed (or stored) for the others. Inside a struct NULL equals
    NULL, which is what ``corrects`` of two records needs.
    """
    return f"row({customer}, {event}, {ts}, {props}, {action}, {corrects})"


def normalize_select(
    source: str,
    catalog: Catalog,
    now: datetime,
    key_sets: list[tuple[int, list[str]]] | None = None,
    utc_session: bool = False,
    key_json: dict[str, str] | None = None,
    parsed: bool = False,
) -> str:
    """The select that turns ``source`` rows into normalised, validated rows.

    ``source`` has columns ``(file_idx, line_no, raw, doc, keep_raw)``; with ``parsed``,
    ``(file_idx, line_no, raw, keep_raw, s)`` instead, ``s`` being every row's JSON object
    already transformed to ``DOCUMENT_FIELDS`` (``readers.jsonl_columnar_source``). Only rows
    that may end up in quarantine keep their raw text (all rows when ``keep_raw``): valid rows
    do not need it, which halves the memory of a big batch. ``key_sets`` (see
    ``canonical_props_sql``) turns on canonical properties; without it ``props`` is the text as
    read and ``props_sig`` its key-set signature.

    ``key_json``: see ``canonical_props_sql``. ``utc_session``: the connection's TimeZone is
    UTC, so a TIMESTAMPTZ converts to TIMESTAMP by its epoch value (ICU's calendar conversion
    per row costs as much as parsing the timestamp).
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
        canonical = "props"
        canonical_columns = _canonical_columns("false")
    else:
        canonical = f"case when reason is null then {canonical_props_sql(key_sets, key_json)} end"
        sigs = fast_sigs(key_sets)
        general = "reason is null" + (
            f" and (props_sig is null or not {_sig_in(map(str, sigs))})" if sigs else ""
        )
        canonical_columns = _canonical_columns(
            general,
            _as_is_sql(key_sets),
            _fast_values_sql(key_sets),
            _key_texts_sql(key_sets, key_json),
        )
    if utc_session:
        # same value as ts_tz::TIMESTAMP in a UTC session; +-infinity have no epoch
        tz_to_ts = (
            "case when isfinite(ts_tz) then make_timestamp(epoch_us(ts_tz)) "
            "else ts_tz::TIMESTAMP end"
        )
    else:
        tz_to_ts = "ts_tz::TIMESTAMP"

    def pick(cloudevents: str, orb: str, lago: str, metronome: str, canonical: str) -> str:
        return (
            f"case shape when 'canonical' then {canonical} when 'lago' then {lago} "
            f"when 'orb' then {orb} when 'metronome' then {metronome} "
            f"when 'cloudevents' then {cloudevents} end"
        )

    if parsed:
        documents = f"""
        select file_idx, line_no, raw, keep_raw, true as is_json, true as is_obj, s
        from ({source})"""
    else:
        documents = f"""
        select file_idx, line_no, raw, keep_raw,
            -- CASE, not OR/AND: DuckDB short-circuits only CASE inside a projection
            case when s is not null then true else trim(doc::VARCHAR) = 'null' end as is_json,
            case when s is null then false
                 when starts_with(doc::VARCHAR, '{{') then true
                 else starts_with(ltrim(doc::VARCHAR), '{{') end as is_obj, s
        from (
            select *, json_transform(try_cast(doc as JSON), {q(_SPEC)}) as s
            from ({source})
        )"""

    return f"""
    with x as ({documents}
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
    tz as (
        select *,
            case when ts_num is null then try_cast(ts_text as TIMESTAMPTZ) end as ts_tz
        from f
    ),
    t as (
        select *,
            case
                when ts_text is null then NULL
                when ts_num is null then {tz_to_ts}
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
        from tz
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
            case when reason is null then json_keys(props) end as _k
        from r
    ),
    cs as (
        select *,
            case when reason is null then hash(_k) end as props_sig
        from c
    ),
{canonical_columns},
    k as (
        select * replace ({canonical} as props) from g
    )
    select file_idx, line_no,
        case when keep_raw or reason is not null or action <> 'record' then raw end as raw,
        shape, transaction_id, customer_id, event_name, event_ts, props,
        {"props_sig" if key_sets is None else "NULL::UBIGINT"} as props_sig,
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
