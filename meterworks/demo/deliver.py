"""How the true events reach Meterworks: files, shapes, and everything real pipelines get wrong.

``plan_delivery`` decides, for every row of every file, what it is: a placement of a true event
(possibly a retry, a cross-shape twin or a conflicting variant), a correction, or a malformed
row with the quarantine reason it must get. ``expected_outcome`` then replays those rows in
sorted path order with the ingestion contract of ``docs/architecture.md`` (validate, first
``transaction_id`` wins, same content = duplicate, different content = conflict, corrections
apply to accepted targets, the latest correction wins) to get the exact expected result.

Versions: a *version* is one content of an event (``cust, etype, ts, a, b``). Versions
``0..n_events-1`` are the true events; conflicting variants and amend payloads are appended.
Two rows carry the same content exactly when they point at the same version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from meterworks.demo.simulate import (
    API,
    COMPLETION,
    DAY,
    MODELS,
    SHAPES,
    Truth,
)

RECORD, CORRECTION, BAD = 0, 1, 2


def backdating_days_for(days: int) -> int:
    """The demo catalog's window: the whole history plus a month of slack."""
    return days + 30


FORMAT_OF_SUFFIX = {
    ".jsonl.gz": "jsonl.gz",
    ".jsonl": "jsonl",
    ".csv.gz": "csv.gz",
    ".csv": "csv",
    ".parquet": "parquet",
}


def file_format(name: str) -> str:
    return next(fmt for suffix, fmt in FORMAT_OF_SUFFIX.items() if name.endswith(suffix))


def splitmix64(x: np.ndarray) -> np.ndarray:
    """A bijection on uint64: distinct inputs give distinct, random-looking outputs."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _hex_ids(seed: int, stream: int, n: int) -> list[str]:
    base = np.uint64((seed & 0xFFFFFF) << 36 | (stream & 0xF) << 32)
    return [f"{v:016x}" for v in splitmix64(np.arange(n, dtype=np.uint64) | base).tolist()]


def _uuid(hex_a: str, hex_b: str) -> str:
    s = hex_a + hex_b
    return f"{s[:8]}-{s[8:12]}-{s[12:16]}-{s[16:20]}-{s[20:]}"


@dataclass
class Extra:
    """A row that is not a placement of an event version: a correction or a malformed row."""

    file: str
    key: float
    kind: int  # CORRECTION or BAD
    payload: Any  # JSONL: the line text; CSV/Parquet: a dict of column values
    tid: str | None = None
    reason: str | None = None  # BAD: the expected quarantine reason
    action: str | None = None  # CORRECTION: void | amend
    target: int = -1  # CORRECTION: event index corrected
    version: int = -1  # CORRECTION (amend): the replacement content


@dataclass
class Delivery:
    truth: Truth
    versions: dict[str, np.ndarray]
    tids: list[str]  # transaction id of each true event
    event_shape: np.ndarray  # shape index of each true event (its customer's integration)
    files: dict[str, str]  # file name -> shape
    # record placements (parallel arrays)
    p_file: np.ndarray  # index into file_names
    p_key: np.ndarray
    p_event: np.ndarray
    p_version: np.ndarray
    file_names: list[str]
    extras: list[Extra] = field(default_factory=list)
    epoch_ms_files: set[str] = field(default_factory=set)
    notes: dict[str, int] = field(default_factory=dict)


def _month(ts: np.ndarray) -> np.ndarray:
    """``YYYY-MM`` (UTC) of each epoch second."""
    months = ts.astype("datetime64[s]").astype("datetime64[M]")
    unique, inverse = np.unique(months, return_inverse=True)
    return np.array([str(m) for m in unique], dtype=object)[inverse]


def plan_delivery(truth: Truth, seed: int) -> Delivery:
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x64656C69]))
    ev = truth.events
    n = len(ev["ts"])
    cust = truth.customers
    shape = cust.shape[ev["cust"]]
    month = _month(ev["ts"])
    months = sorted(set(month.tolist()))
    newest = months[-1]

    # -- transaction ids, in the style of each source ----------------------------------------
    hex_a, hex_b = _hex_ids(seed, 1, n), _hex_ids(seed, 2, n)
    prefix = {0: "evt_", 1: "txn_", 3: "mtr_"}
    tids = [
        _uuid(a, b) if s in (2, 4) else prefix[s] + a
        for a, b, s in zip(hex_a, hex_b, shape.tolist(), strict=True)
    ]

    # -- file of each event's first delivery ---------------------------------------------------
    canonical_gz = set(months[:-2] if len(months) > 2 else months[:-1])

    def canonical_file(m: str) -> str:
        return f"canonical-{m}.jsonl" + (".gz" if m in canonical_gz else "")

    orb_months = sorted(set(month[shape == 2].tolist())) or [newest]
    orb_gz = {orb_months[0]} if len(orb_months) > 1 else set()

    def orb_file(m: str) -> str:
        return f"orb-events-{m}.csv" + (".gz" if m in orb_gz else "")

    def file_for(s: int, m: str) -> str:
        return {
            0: canonical_file,
            2: orb_file,
            3: lambda m: f"metronome-usage-{m}.parquet",
            4: lambda m: f"cloudevents-{m}.jsonl",
        }[s](m)

    lago_split = truth.t0 + int((truth.t1 - truth.t0) * 0.6) // DAY * DAY
    lago_overlap_end = lago_split + 7 * DAY
    names = np.empty(n, dtype=object)
    for s in (0, 2, 3, 4):
        for m in set(month[shape == s].tolist()):
            names[(shape == s) & (month == m)] = file_for(s, m)
    lago = shape == 1
    names[lago & (ev["ts"] < lago_split)] = "lago-export-1.jsonl"
    names[lago & (ev["ts"] >= lago_split)] = "lago-export-2.jsonl"
    newest_canonical = canonical_file(newest)

    placements: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def place(files: np.ndarray, keys: np.ndarray, events: np.ndarray, versions=None) -> None:
        placements.append(
            (files, keys.astype(np.float64), events, events if versions is None else versions)
        )

    special = np.zeros(n, dtype=bool)  # events picked for one fault; faults never overlap
    idx = np.arange(n)
    kinds_ok = (ev["etype"] == API) | (ev["etype"] == COMPLETION)

    def pick(mask: np.ndarray, k: int) -> np.ndarray:
        pool = np.flatnonzero(mask & ~special)
        chosen = np.sort(rng.choice(pool, size=min(k, len(pool)), replace=False))
        special[chosen] = True
        return chosen

    # late events: delivered in the newest canonical file although weeks old
    late_window = (
        (shape == 0)
        & (month != newest)
        & (ev["ts"] >= truth.t1 - 60 * DAY)
        & (ev["ts"] < truth.t1 - 10 * DAY)
    )
    late = pick(late_window & (rng.random(n) < 0.004), n)
    names[late] = newest_canonical
    late_keys = np.full(len(late), 2.0 * n) + np.arange(len(late))  # after the month's events

    # a retry file re-sends 12-36 hours of canonical events from the middle of the history
    retry_t0 = truth.t0 + (truth.t1 - truth.t0) // 2 // DAY * DAY + 9 * 3600
    retry_month = str(_month(np.array([retry_t0]))[0])
    retry_file = f"canonical-{retry_month}-retry.jsonl"
    retry_hours = int(np.clip((truth.t1 - truth.t0) / DAY * 0.3, 12, 36))
    in_retry = (shape == 0) & (ev["ts"] >= retry_t0) & (ev["ts"] < retry_t0 + retry_hours * 3600)
    in_retry &= ~special
    special |= in_retry

    # conflicting duplicates: same transaction id, different content
    variants: dict[str, list[np.ndarray]] = {k: [] for k in ("cust", "etype", "ts", "a", "b")}
    n_versions = n

    def new_version(e: int, **changes: int) -> int:
        nonlocal n_versions
        for k in variants:
            variants[k].append(np.array([changes.get(k, ev[k][e])]))
        n_versions += 1
        return n_versions - 1

    def changed_content(e: int) -> dict[str, int]:
        if ev["etype"][e] == COMPLETION:
            return {"b": int(ev["b"][e]) + int(rng.integers(50, 900))}
        return {"b": 500 if ev["b"][e] != 500 else 200}  # api_request: another status

    conflict_rows: list[tuple[str, float, int, int]] = []  # file, key, event, version
    canonical_month = (shape == 0) & (month == retry_month) & ~in_retry & kinds_ok
    for e in pick(canonical_month, 3):  # the variant sorts first (retry file): it wins
        conflict_rows.append(
            (retry_file, float(e), int(e), new_version(int(e), **changed_content(e)))
        )
    for j, e in enumerate(pick((shape == 0) & kinds_ok & (month != retry_month), 7)):
        key = 3.0 * n + j  # re-sent with other content at the end of the newest file
        conflict_rows.append(
            (newest_canonical, key, int(e), new_version(int(e), **changed_content(e)))
        )
    orb_newest = orb_file(orb_months[-1])
    for j, e in enumerate(pick((shape == 2) & kinds_ok & (month == orb_months[-1]), 2)):
        conflict_rows.append(
            (orb_newest, 3.0 * n + j, int(e), new_version(int(e), **changed_content(e)))
        )

    # the same events delivered through two shapes (a migration's dual-write window)
    twins: list[tuple[np.ndarray, np.ndarray]] = []
    for from_shape, to_shape, k in ((0, 4, 30), (1, 0, 20), (0, 2, 20)):
        chosen = pick((shape == from_shape) & kinds_ok, k)
        twins.append(
            (np.array([file_for(to_shape, m) for m in month[chosen]], dtype=object), chosen)
        )

    # corrections (canonical shape, at the very end of the newest canonical file)
    extras: list[Extra] = []
    corr_pool = (shape == 0) & kinds_ok & (ev["ts"] < truth.t1 - 3 * DAY)
    voids = pick(corr_pool, 12)
    amends = pick(corr_pool & (ev["etype"] == COMPLETION), 10)
    amends = np.concatenate([amends, pick(corr_pool, 12 - len(amends))])
    corr_targets = np.ravel(np.column_stack([voids[: len(amends)], amends[: len(voids)]]))
    corr_hex = _hex_ids(seed, 3, 64)
    corr_key = 4.0 * n
    corrections: list[tuple[str, int, int]] = []  # action, target event, version
    for j, e in enumerate(corr_targets.tolist()):
        if j % 2 == 0:
            corrections.append(("void", e, -1))
        else:
            change = changed_content(e)
            if ev["etype"][e] == COMPLETION and j % 4 == 1:  # re-attribute to another model
                change["a"] = (int(ev["a"][e]) + 1) % len(MODELS)
            corrections.append(("amend", e, new_version(e, **change)))
    if len(corr_targets) >= 4:
        twice, then_void = int(corr_targets[1]), int(corr_targets[3])  # both amended above
        corrections.append(("amend", twice, new_version(twice, **changed_content(twice))))
        corrections.append(("void", then_void, -1))
    versions = {k: np.concatenate([ev[k], *variants[k]]).astype(np.int64) for k in variants}

    for j, (action, e, v) in enumerate(corrections):
        tid = f"cor_{corr_hex[j]}"
        extras.append(
            Extra(
                newest_canonical,
                corr_key + j,
                CORRECTION,
                None,
                tid=tid,
                action=action,
                target=e,
                version=v,
            )
        )

    # first deliveries of every event (the late ones at the end of the newest file), then copies
    on_time = np.ones(n, dtype=bool)
    on_time[late] = False
    place(names[on_time], idx[on_time], idx[on_time])
    place(names[late], late_keys, late)
    lago_copy = np.flatnonzero(lago & (ev["ts"] >= lago_split) & (ev["ts"] < lago_overlap_end))
    place(np.full(len(lago_copy), "lago-export-1.jsonl", dtype=object), lago_copy, lago_copy)
    retry = np.flatnonzero(in_retry)
    place(np.full(len(retry), retry_file, dtype=object), retry, retry)
    for files, chosen in twins:
        place(files, chosen.astype(np.float64), chosen)
    if conflict_rows:
        f, k, e, v = zip(*conflict_rows, strict=True)
        place(np.array(f, dtype=object), np.array(k), np.array(e), np.array(v))

    p_file = np.concatenate([p[0] for p in placements])
    p_key = np.concatenate([p[1] for p in placements])
    p_event = np.concatenate([p[2] for p in placements]).astype(np.int64)
    p_version = np.concatenate([p[3] for p in placements]).astype(np.int64)

    # retried exact duplicates inside the same file, a few hundred rows later
    dup = (rng.random(len(p_file)) < 0.016) & ~special[p_event]
    p_file = np.concatenate([p_file, p_file[dup]])
    p_key = np.concatenate([p_key, p_key[dup] + rng.uniform(1, 400, dup.sum())])
    p_event = np.concatenate([p_event, p_event[dup]])
    p_version = np.concatenate([p_version, p_version[dup]])

    file_names = sorted(set(p_file.tolist()) | {x.file for x in extras})
    file_index = {name: i for i, name in enumerate(file_names)}
    delivery = Delivery(
        truth=truth,
        versions=versions,
        tids=tids,
        event_shape=shape,
        files={},
        p_file=np.array([file_index[f] for f in p_file.tolist()], dtype=np.int64),
        p_key=p_key,
        p_event=p_event,
        p_version=p_version,
        file_names=file_names,
        extras=extras,
        epoch_ms_files={canonical_file(months[0])} if len(months) > 1 else set(),
        notes={
            "late_events": len(late),
            "retry_window_events": len(retry),
            "lago_overlap_events": len(lago_copy),
            "cross_shape_twins": int(sum(len(c) for _, c in twins)),
            "conflicting_variants": len(conflict_rows),
            "within_file_retries": int(dup.sum()),
        },
    )
    _add_malformed(
        delivery, rng, newest_canonical, canonical_file(months[0]), orb_newest, months[-1], shape
    )
    delivery.file_names = sorted(set(delivery.file_names) | {x.file for x in delivery.extras})
    remap = {name: i for i, name in enumerate(delivery.file_names)}
    delivery.p_file = np.array(
        [remap[file_names[i]] for i in delivery.p_file.tolist()], dtype=np.int64
    )
    delivery.files = {name: _shape_of_file(name) for name in delivery.file_names}
    return delivery


def _shape_of_file(name: str) -> str:
    return next(shape for shape in SHAPES if name.startswith(shape))


def _rfc3339(ts: int) -> str:
    return str(np.datetime64(ts, "s")) + "Z"


def _add_malformed(
    d: Delivery,
    rng: np.random.Generator,
    newest_canonical: str,
    older: str,
    orb_newest: str,
    newest: str,
    shape: np.ndarray,
) -> None:
    """A handful of rows for every quarantine reason a file can trigger."""
    truth = d.truth
    ids = truth.customers.ids
    n = len(truth.events["ts"])
    mid = truth.t0 + (truth.t1 - truth.t0) // 2 + 12_345
    counter = iter(range(1, 10_000))

    def cust_of(s: int) -> str:
        pool = np.flatnonzero(truth.customers.shape == s)
        return ids[int(rng.choice(pool))] if len(pool) else ids[0]

    def canon(reason: str, file: str | None = None, **row: Any) -> None:
        tid = f"bad_{next(counter):04d}"
        base = {
            "transaction_id": tid,
            "customer_id": cust_of(0),
            "event": "api_request",
            "timestamp": _rfc3339(mid + int(rng.integers(-40, 40)) * 3600),
            "properties": {"endpoint": "/v1/search", "status": 200},
        }
        base.update(row)
        base = {k: v for k, v in base.items() if v is not _DROP}
        line = json.dumps(base, separators=(",", ":"))
        d.extras.append(
            _bad(file or newest_canonical, line, reason, base.get("transaction_id"), rng, n)
        )

    def raw(reason: str, line: str, file: str | None = None) -> None:
        d.extras.append(_bad(file or newest_canonical, line, reason, None, rng, n))

    c = cust_of(0)
    ts = _rfc3339(mid)
    raw("invalid_json", f'{{"transaction_id":"bad_t01","customer_id":"{c}","event":"api_request","timestamp":"{ts}","properties":{{"endpoint":"/v1/se')  # fmt: skip
    raw("invalid_json", f"{{'transaction_id': 'bad_t02', 'customer_id': '{c}', 'event': 'api_request'}}", older)  # fmt: skip
    raw("invalid_json", f'{{"transaction_id":"bad_t03","customer_id":"{c}","event":"api_request","timestamp":"{ts}","properties":{{}}}} trailing')  # fmt: skip
    raw("not_an_object", f'["api_request","{c}","{ts}"]')
    raw("not_an_object", '"api_request"', older)
    canon("missing_transaction_id", transaction_id=_DROP)
    canon("missing_transaction_id", older, transaction_id=_DROP)
    canon("missing_customer", customer_id=_DROP)
    canon("missing_customer", older, customer_id=_DROP)
    canon("missing_event_name", event=_DROP)
    canon("missing_timestamp", timestamp=_DROP)
    canon("missing_timestamp", older, timestamp=_DROP)
    canon("invalid_timestamp", timestamp="not-a-date")
    canon("invalid_timestamp", timestamp="2024-13-45T25:61:00Z")
    canon("invalid_properties", properties=[1, 2])
    canon("unknown_event", event="page_view")
    canon("unknown_event", older, event="api_requests")
    canon("missing_property", event="completion", properties={"model": MODELS[0]})
    canon("non_numeric_value", event="completion", properties={"model": MODELS[0], "tokens": "lots"})  # fmt: skip
    canon("non_numeric_value", event="storage_snapshot", properties={"gb": "n/a"})
    window = backdating_days_for((truth.t1 - truth.t0) // DAY)
    for days_before in (window + 60, window + 90, window + 400):
        canon("outside_backdating_window", timestamp=_rfc3339(truth.t0 - days_before * DAY))
    for days_after in (400, 500):
        canon("timestamp_in_future", timestamp=_rfc3339(truth.t1 + days_after * DAY))
    raw("unknown_correction_target", '{"transaction_id":"bad_c01","action":"void","corrects":"evt_0000000000000000"}')  # fmt: skip
    target_pool = np.flatnonzero(shape == 0)
    target = d.tids[int(target_pool[0])] if len(target_pool) else "evt_unknown"
    raw("invalid_correction", f'{{"transaction_id":"bad_c02","action":"delete","corrects":"{target}"}}')  # fmt: skip
    canon("invalid_correction", action="amend", properties={"endpoint": "/v1/chat", "status": 200})

    # the other shapes break in their own ways
    lago_file = "lago-export-2.jsonl"
    c = cust_of(1)
    raw("invalid_timestamp", f'{{"transaction_id":"bad_l01","external_customer_id":"{c}","code":"api_request","timestamp":"soon","properties":{{}}}}', lago_file)  # fmt: skip
    raw("unknown_event", f'{{"transaction_id":"bad_l02","external_customer_id":"{c}","code":"page_view","timestamp":{mid},"properties":{{}}}}', lago_file)  # fmt: skip
    c = cust_of(2)
    orb_row = {"idempotency_key": "bad_o01", "external_customer_id": None, "event_name": "api_request",
               "timestamp": _rfc3339(mid), "properties": '{"endpoint":"/v1/chat","status":200}'}  # fmt: skip
    d.extras.append(_bad(orb_newest, orb_row, "missing_customer", "bad_o01", rng, n))
    orb_row = {**orb_row, "idempotency_key": "bad_o02", "external_customer_id": c,
               "event_name": "completion", "properties": '{"model":"orion-mini","tokens":"n/a"}'}  # fmt: skip
    d.extras.append(_bad(orb_newest, orb_row, "non_numeric_value", "bad_o02", rng, n))
    metronome_file = f"metronome-usage-{newest}.parquet"
    c = cust_of(3)
    row = {"transaction_id": "bad_m01", "customer_id": None, "event_type": "api_request",
           "timestamp": _rfc3339(mid), "properties": '{"endpoint":"/v1/chat","status":200}'}  # fmt: skip
    d.extras.append(_bad(metronome_file, row, "missing_customer", "bad_m01", rng, n))
    row = {**row, "transaction_id": "bad_m02", "customer_id": c, "event_type": "page_view"}
    d.extras.append(_bad(metronome_file, row, "unknown_event", "bad_m02", rng, n))
    ce_file = f"cloudevents-{newest}.jsonl"
    c = cust_of(4)
    raw("missing_timestamp", f'{{"specversion":"1.0","id":"bad_e01","source":"//gateway.demo.meterworks","type":"api_request","subject":"{c}","data":{{"endpoint":"/v1/chat","status":200}}}}', ce_file)  # fmt: skip
    raw("missing_customer", f'{{"specversion":"1.0","id":"bad_e02","source":"//gateway.demo.meterworks","type":"api_request","time":"{_rfc3339(mid)}","data":{{"endpoint":"/v1/chat","status":200}}}}', ce_file)  # fmt: skip


_DROP = object()


def _bad(file: str, payload: Any, reason: str, tid: str | None, rng, n: int) -> Extra:
    return Extra(file, float(rng.uniform(0, 2.0 * n)), BAD, payload, tid=tid, reason=reason)


# -- the expected outcome ------------------------------------------------------------------------


@dataclass
class Outcome:
    rows_read: int
    accepted_records: int
    accepted_corrections: int
    duplicates: int
    conflicts: int
    quarantined_by_reason: dict[str, int]
    accepted_by_shape: dict[str, int]
    effective: np.ndarray  # version index of every effective (non-voided) event
    rows_per_file: dict[str, int]


def ordered_rows(d: Delivery) -> pd.DataFrame:
    """Every row of every file in ingestion order (files by name, then line)."""
    rec = pd.DataFrame(
        {
            "file": d.p_file,
            "key": d.p_key,
            "kind": RECORD,
            "event": d.p_event,
            "version": d.p_version,
            "extra": -1,
        }
    )
    file_index = {name: i for i, name in enumerate(d.file_names)}
    ext = pd.DataFrame(
        {
            "file": [file_index[x.file] for x in d.extras],
            "key": [x.key for x in d.extras],
            "kind": [x.kind for x in d.extras],
            "event": [x.target for x in d.extras],
            "version": [x.version for x in d.extras],
            "extra": np.arange(len(d.extras)),
        }
    )
    rows = pd.concat([rec, ext], ignore_index=True)
    rows = rows.sort_values(["file", "key", "kind", "extra"], kind="stable", ignore_index=True)
    rows["line"] = rows.groupby("file").cumcount() + 1
    return rows


def expected_outcome(d: Delivery, rows: pd.DataFrame) -> Outcome:
    reasons: dict[str, int] = {}
    records = rows[rows["kind"] == RECORD]
    first = ~records["event"].duplicated()
    winner = records[first].set_index("event")
    same = records["version"].to_numpy() == winner["version"].reindex(records["event"]).to_numpy()
    duplicates = int((~first & same).sum())
    conflicts = int((~first & ~same).sum())
    if conflicts:
        reasons["conflict"] = conflicts
    for x in d.extras:
        if x.kind == BAD:
            reasons[x.reason] = reasons.get(x.reason, 0) + 1

    effective = winner["version"].to_dict()  # event -> version
    accepted_at = records[first].reset_index().set_index("event")["index"]  # position in rows
    corrections = rows[rows["kind"] == CORRECTION]
    accepted_corrections = 0
    for position, row in corrections.iterrows():
        x = d.extras[int(row["extra"])]
        target = x.target
        if target not in accepted_at.index or accepted_at[target] > position:
            reasons["unknown_correction_target"] = reasons.get("unknown_correction_target", 0) + 1
            continue
        accepted_corrections += 1
        if x.action == "void":
            effective.pop(target, None)
        else:
            effective[target] = x.version

    shapes = np.array([SHAPES.index(d.files[name]) for name in d.file_names])
    by_shape = np.bincount(shapes[winner["file"].to_numpy()], minlength=len(SHAPES))
    return Outcome(
        rows_read=len(rows),
        accepted_records=len(winner),
        accepted_corrections=accepted_corrections,
        duplicates=duplicates,
        conflicts=conflicts,
        quarantined_by_reason=dict(sorted(reasons.items())),
        accepted_by_shape={s: int(c) for s, c in zip(SHAPES, by_shape, strict=True)},
        effective=np.array(sorted(effective.values()), dtype=np.int64),
        rows_per_file={
            name: int(c)
            for name, c in zip(
                d.file_names, np.bincount(rows["file"], minlength=len(d.file_names)), strict=True
            )
        },
    )
