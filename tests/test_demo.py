"""The demo generator: determinism, the catalog, the manifest against the files, distributions.

The manifest's expected ingestion outcome is checked against ``_reference_ingest``, a small
independent reading of the files per the contract in docs/architecture.md (shapes, timestamps,
quarantine reasons, first-wins dedup, corrections). It shares no code with the generator, so a
rendering bug in the files shows up as a mismatch here, not in the real ingester's tests.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow.parquet as pq
import pytest

from meterworks.catalog import Catalog, load_catalog
from meterworks.config import EXAMPLE_CATALOG
from meterworks.demo import DemoSummary, generate_demo
from meterworks.demo.simulate import (
    API,
    API_GUARD,
    COMPLETION,
    PREMIUM_MODEL,
    TOKENS_GUARD,
    simulate,
)

SMALL = {"seed": 7, "customers": 30, "days": 40, "end": date(2025, 3, 15)}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoSummary:
    return generate_demo(tmp_path_factory.mktemp("demo"), **SMALL)


@pytest.fixture(scope="module")
def manifest(demo: DemoSummary) -> dict:
    return json.loads(demo.manifest_path.read_text())


# -- reading the files back, independently of the generator -------------------------------------


def _rows(path: Path):
    """(line number, raw text, parsed row or an exception) for every row of a file."""
    name = path.name
    if name.endswith(".parquet"):
        for i, row in enumerate(pq.read_table(path).to_pylist(), start=1):
            yield i, json.dumps(row), row
        return
    data = path.read_bytes()
    if name.endswith(".gz"):
        data = gzip.decompress(data)
    text = data.decode("utf-8")
    if ".csv" in name:
        for i, row in enumerate(csv.DictReader(io.StringIO(text)), start=1):
            yield i, json.dumps(row), {k: (v if v != "" else None) for k, v in row.items()}
        return
    for i, line in enumerate(text.splitlines(), start=1):
        try:
            yield i, line, json.loads(line)
        except ValueError as exc:
            yield i, line, exc


def _timestamp(value) -> datetime | None:
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.isdigit()):
        number = float(value)
        return datetime.fromtimestamp(number / 1000 if number > 1e11 else number, UTC)
    try:
        ts = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _normalise(row: dict) -> dict:
    if isinstance(row.get("event"), dict):  # Lago API body wrapper
        row = row["event"]
    if "specversion" in row:
        keys = ("id", "subject", "type", "time", "data")
    elif "code" in row:
        keys = ("transaction_id", "external_customer_id", "code", "timestamp", "properties")
    elif "event_name" in row or "idempotency_key" in row:
        keys = ("idempotency_key", "external_customer_id", "event_name", "timestamp", "properties")
    elif "event_type" in row:
        keys = ("transaction_id", "customer_id", "event_type", "timestamp", "properties")
    else:
        keys = ("transaction_id", "customer_id", "event", "timestamp", "properties")
    out = dict(
        zip(("tid", "customer", "name", "ts", "props"), (row.get(k) for k in keys), strict=True)
    )
    out["action"] = row.get("action", "record")
    out["corrects"] = row.get("corrects")
    return out


def _reference_ingest(events_dir: Path, catalog: Catalog, now: datetime) -> dict:
    counts: Counter = Counter()
    reasons: Counter = Counter()
    content_of: dict[str, tuple] = {}  # transaction id -> content of the first accepted row
    effective: dict[str, tuple | None] = {}  # record tid -> effective content (None = voided)
    for path in sorted(events_dir.iterdir()):
        for _line, _raw, row in _rows(path):
            counts["rows_read"] += 1
            reason, content = _validate(row, catalog, now, effective)
            if reason:
                reasons[reason] += 1
                continue
            tid = content[0]
            if tid in content_of:
                if content_of[tid] == content[1:]:
                    counts["duplicates"] += 1
                else:
                    reasons["conflict"] += 1
                continue
            content_of[tid] = content[1:]
            action, corrects = content[1], content[2]
            if action == "record":
                counts["records"] += 1
                effective[tid] = content[3:]
            else:
                counts["corrections"] += 1
                effective[corrects] = None if action == "void" else content[3:]
    counts.update({"quarantined": sum(reasons.values()), "conflicts": reasons["conflict"]})
    return {"counts": counts, "reasons": reasons, "effective": effective}


def _validate(row, catalog: Catalog, now: datetime, effective: dict) -> tuple[str | None, tuple]:
    if isinstance(row, Exception):
        return "invalid_json", ()
    if not isinstance(row, dict):
        return "not_an_object", ()
    r = _normalise(row)
    if not r["tid"]:
        return "missing_transaction_id", ()
    if r["action"] not in ("record", "void", "amend"):
        return "invalid_correction", ()
    if r["action"] != "record" and not r["corrects"]:
        return "invalid_correction", ()
    if r["action"] == "void":
        if r["corrects"] not in effective:
            return "unknown_correction_target", ()
        return None, (r["tid"], "void", r["corrects"])
    if not r["customer"]:
        return "missing_customer", ()
    if not r["name"]:
        return "missing_event_name", ()
    if r["ts"] is None:
        return "missing_timestamp", ()
    ts = _timestamp(r["ts"])
    if ts is None:
        return "invalid_timestamp", ()
    props = r["props"] if r["props"] is not None else {}
    if isinstance(props, str):
        props = json.loads(props)
    if not isinstance(props, dict):
        return "invalid_properties", ()
    meters = catalog.meters_for_event(r["name"])
    if not meters:
        return "unknown_event", ()
    for meter in meters:
        if meter.aggregation in ("sum", "max", "latest"):
            if meter.property not in props:
                return "missing_property", ()
            if not isinstance(props[meter.property], (int, float)):
                return "non_numeric_value", ()
    if ts < now - timedelta(days=catalog.backdating_days):
        return "outside_backdating_window", ()
    if ts > now + timedelta(minutes=catalog.future_tolerance_minutes):
        return "timestamp_in_future", ()
    if r["action"] == "amend" and r["corrects"] not in effective:
        return "unknown_correction_target", ()
    content = (r["customer"], r["name"], ts, json.dumps(props, sort_keys=True))
    return None, (r["tid"], r["action"], r["corrects"], *content)


def _meter_totals(effective: dict, catalog: Catalog) -> dict[tuple, tuple[Decimal, int]]:
    """(customer, meter, local month, dimensions) -> (quantity, event count)."""
    tz = {c.id: ZoneInfo(c.timezone) for c in catalog.customers}
    groups: dict[tuple, list] = defaultdict(list)
    for content in effective.values():
        if content is None:
            continue
        customer, name, ts, props_text = content
        props = json.loads(props_text)
        month = ts.astimezone(tz[customer]).strftime("%Y-%m-01")
        for m in catalog.meters_for_event(name):
            if any(str(props.get(k)) not in v for k, v in m.filters.items()):
                continue
            dims = (
                json.dumps({k: props.get(k) for k in m.group_by}, separators=(",", ":"))
                if m.group_by
                else "{}"
            )
            groups[(customer, m.code, month, dims)].append((ts, props.get(m.property)))
    aggregation = {m.code: m.aggregation for m in catalog.meters}
    return {key: _aggregate(aggregation[key[1]], items) for key, items in groups.items()}


def _aggregate(aggregation: str, items: list) -> tuple[Decimal, int]:
    values = [Decimal(str(v)) if isinstance(v, (int, float)) else v for _, v in items]
    if aggregation == "count":
        quantity = Decimal(len(items))
    elif aggregation == "sum":
        quantity = sum(values, Decimal(0))
    elif aggregation == "max":
        quantity = max(values)
    elif aggregation == "unique_count":
        quantity = Decimal(len(set(values)))
    else:  # latest
        quantity = values[max(range(len(items)), key=lambda i: items[i][0])]
    return quantity, len(items)


# -- tests --------------------------------------------------------------------------------------


def test_same_seed_gives_identical_files_and_another_seed_does_not(demo, tmp_path):
    again = generate_demo(tmp_path / "again", **SMALL)
    written = sorted(p.relative_to(demo.out_dir) for p in demo.out_dir.rglob("*") if p.is_file())
    assert written == sorted(p.relative_to(again.out_dir) for p in again.out_dir.rglob("*") if p.is_file())  # fmt: skip
    for rel in written:
        assert (demo.out_dir / rel).read_bytes() == (again.out_dir / rel).read_bytes(), rel
    other = generate_demo(tmp_path / "other", **{**SMALL, "seed": 8})
    ours = {f["path"]: f["sha256"] for f in json.loads(demo.manifest_path.read_text())["files"]}
    theirs = {f["path"]: f["sha256"] for f in json.loads(other.manifest_path.read_text())["files"]}
    assert not set(ours.items()) & set(theirs.items())
    assert demo.catalog_path.read_bytes() != other.catalog_path.read_bytes()


def test_regenerating_replaces_stale_event_files(tmp_path):
    stale = tmp_path / "events" / "canonical-1999-01.jsonl"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}\n")
    generate_demo(tmp_path, **{**SMALL, "customers": 10, "days": 28})
    assert not stale.exists()


def test_catalog_loads_and_covers_every_customer(demo, manifest):
    catalog = load_catalog(demo.catalog_path)
    assert catalog.backdating_days == SMALL["days"] + 30
    assert {m.code: m.aggregation for m in catalog.meters} == {
        "api_calls": "count",
        "tokens": "sum",
        "premium_tokens": "sum",
        "storage_gb": "max",
        "active_users": "unique_count",
        "seats": "latest",
    }
    assert [p.code for p in catalog.plans] == ["free", "starter", "growth", "scale", "enterprise"]
    assert [c.id for c in catalog.customers] == [f"cus_demo_{i:04d}" for i in range(1, 31)]
    assert len({c.name for c in catalog.customers}) == 30
    assert {"America/Los_Angeles", "Europe/Berlin", "Asia/Kolkata"} & {c.timezone for c in catalog.customers}  # fmt: skip
    schemes = {(c.pricing.billing_scheme, c.pricing.tiers_mode, bool(c.pricing.transform_quantity))
               for p in catalog.plans for c in p.charges if c.pricing}  # fmt: skip
    assert {("per_unit", None, False), ("per_unit", None, True), ("tiered", "graduated", False),
            ("tiered", "volume", False)} <= schemes  # fmt: skip
    assert sum(manifest["customers_by_plan"].values()) == 30


def test_manifest_rows_match_the_files(demo, manifest):
    listed = {f["path"]: f for f in manifest["files"]}
    on_disk = sorted(str(p.relative_to(demo.out_dir)) for p in demo.events_dir.iterdir())
    assert sorted(listed) == on_disk
    for path, entry in listed.items():
        assert sum(1 for _ in _rows(demo.out_dir / path)) == entry["rows"], path
    assert sum(f["rows"] for f in manifest["files"]) == manifest["expected"]["rows_read"]
    assert {f["shape"] for f in manifest["files"]} == {"canonical", "lago", "orb", "metronome", "cloudevents"}  # fmt: skip
    assert {f["format"] for f in manifest["files"]} == {"jsonl", "jsonl.gz", "csv", "csv.gz", "parquet"}  # fmt: skip


def test_expected_outcome_matches_an_independent_reading_of_the_files(demo, manifest):
    catalog = load_catalog(demo.catalog_path)
    expected = manifest["expected"]
    now = datetime.fromisoformat(expected["ingest_not_before_utc"]) + timedelta(hours=1)
    result = _reference_ingest(demo.events_dir, catalog, now)
    counts, reasons = result["counts"], result["reasons"]
    assert counts["rows_read"] == expected["rows_read"]
    assert counts["records"] == expected["accepted"]["records"]
    assert counts["corrections"] == expected["accepted"]["corrections"]
    assert counts["duplicates"] == expected["duplicates"]
    assert counts["conflicts"] == expected["conflicts"]
    assert dict(reasons) == expected["quarantined"]["by_reason"]
    assert counts["quarantined"] == expected["quarantined"]["total"]
    live = [c for c in result["effective"].values() if c is not None]
    assert len(live) == expected["effective_events"]

    totals = _meter_totals(result["effective"], catalog)
    with demo.expected_totals_path.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(totals)
    for row in rows:
        key = (row["customer_id"], row["meter_code"], row["period_month"], row["dimensions"])
        assert totals[key] == (Decimal(row["quantity"]), int(row["event_count"])), key
    for code, meter in expected["meters"].items():
        mine = [q for (_, m, _, _), (q, _) in totals.items() if m == code]
        assert sum(mine, Decimal(0)) == Decimal(meter["quantity_total"]), code
        assert sum(n for (_, m, _, _), (_, n) in totals.items() if m == code) == meter["events"]


def test_faults_are_all_there(manifest):
    expected = manifest["expected"]
    assert set(expected["quarantined"]["by_reason"]) >= {
        "invalid_json", "not_an_object", "missing_transaction_id", "missing_customer",
        "missing_event_name", "missing_timestamp", "invalid_timestamp", "invalid_properties",
        "unknown_event", "missing_property", "non_numeric_value", "outside_backdating_window",
        "timestamp_in_future", "unknown_correction_target", "invalid_correction", "conflict",
    }  # fmt: skip
    assert expected["conflicts"] >= 8
    assert expected["accepted"]["corrections"] >= 10
    assert 0.015 < expected["duplicates"] / expected["rows_read"] < 0.06
    faults = manifest["faults"]
    assert faults["late_events"] > 0 and faults["cross_shape_twins"] > 0
    assert faults["voided_events"] > 0


def test_anomaly_labels(demo):
    catalog = load_catalog(demo.catalog_path)
    with demo.labels_path.open() as f:
        labels = list(csv.DictReader(f))
    assert {row["kind"] for row in labels} == {
        "spike",
        "retry_storm",
        "drop_to_zero",
        "level_shift",
    }
    ids = {c.id for c in catalog.customers}
    start = datetime.combine(SMALL["end"] - timedelta(days=SMALL["days"] - 1), datetime.min.time(), UTC)  # fmt: skip
    stop = datetime.combine(SMALL["end"] + timedelta(days=1), datetime.min.time(), UTC)
    for row in labels:
        assert row["customer_id"] in ids
        assert row["meter_code"] in {"api_calls", "tokens", "premium_tokens"}
        lo, hi = (datetime.fromisoformat(row[k]) for k in ("start_utc", "end_utc"))
        assert start <= lo < hi <= stop
        assert float(row["factor"]) >= 0


def test_spikes_and_drops_are_visible_in_the_data():
    truth = simulate(7, 60, 60, date(2025, 3, 15))
    ev = truth.events
    for a in truth.anomalies:
        if a.meter_code != "api_calls" or a.kind == "level_shift":
            continue
        mine = ev["ts"][(ev["cust"] == a.cust) & (ev["etype"] == API)]
        hours = (a.end_ts - a.start_ts) / 3600
        inside = ((mine >= a.start_ts) & (mine < a.end_ts)).sum() / hours
        usual = len(mine) / ((truth.t1 - truth.t0) / 3600)
        if a.kind == "drop_to_zero":
            assert inside == 0
        else:
            assert inside > 4 * usual, a


@pytest.fixture(scope="module")
def default_truth():
    return simulate(7, 200, 120, date(2025, 5, 31))


def test_default_labels_are_on_series_worth_a_page(default_truth):
    """The default demo's labels sit on steady customers well above the volume guard, mix the
    kinds, and some are recent: in the summary's 30 days, and in the first run's alert window."""
    truth = default_truth
    ev, cust = truth.events, truth.customers
    local_day = (ev["ts"] - truth.t0) // 86_400  # UTC days: close enough for a median
    kinds = Counter(a.kind for a in truth.anomalies)
    assert set(kinds) == {"spike", "retry_storm", "drop_to_zero", "level_shift"}
    assert kinds["spike"] >= 3
    guards = {"api_calls": API_GUARD, "tokens": TOKENS_GUARD, "premium_tokens": TOKENS_GUARD}
    for a in truth.anomalies:
        assert cust.start_day[a.cust] == 0 and cust.stop_day[a.cust] == 120, a
        mine = ev["cust"] == a.cust
        if a.meter_code == "api_calls":
            mine &= ev["etype"] == API
            weights = None
        else:
            mine &= ev["etype"] == COMPLETION
            if a.meter_code == "premium_tokens":
                mine &= ev["a"] == PREMIUM_MODEL
            weights = ev["b"][mine]
        per_day = np.bincount(local_day[mine], weights=weights, minlength=120)
        assert np.median(per_day) >= 2 * guards[a.meter_code], (a, np.median(per_day))
        if a.kind == "drop_to_zero":
            assert (a.end_ts - a.start_ts) >= 86_400 - 3600, a  # a day or more (DST)
        if a.meter_code == "tokens" and cust.model_mix[a.cust, PREMIUM_MODEL] > 0:
            assert any(
                b.cust == a.cust and b.meter_code == "premium_tokens" and b.start_ts == a.start_ts
                for b in truth.anomalies
            ), a
    recent = [a for a in truth.anomalies if a.start_ts >= truth.t1 - 30 * 86_400]
    assert len({(a.cust, a.start_ts) for a in recent}) >= 4
    assert any(a.start_ts >= truth.t1 - 2 * 86_400 for a in truth.anomalies)
    assert any(a.kind == "retry_storm" and a.end_ts > truth.t1 - 6 * 3600 for a in truth.anomalies)


def test_llm_usage_is_steady(default_truth):
    """Customers using the completion API send dozens of completions a day or more; only those
    with a real premium volume use the premium model."""
    truth = default_truth
    ev, cust = truth.events, truth.customers
    comp = ev["etype"] == COMPLETION
    active_days = np.maximum(cust.stop_day - cust.start_day, 1)
    per_day = np.bincount(ev["cust"][comp], minlength=cust.n) / active_days
    users = cust.completion_ratio > 0
    assert 0.15 < users.mean() < 0.6
    assert (per_day[~users] == 0).all()
    steady = users & (cust.start_day == 0) & (cust.stop_day == 120)
    assert np.median(per_day[steady]) >= 30
    premium = np.bincount(ev["cust"][comp & (ev["a"] == PREMIUM_MODEL)], minlength=cust.n)
    assert (premium > 0).sum() >= 5
    assert (premium[steady] / 120 >= 15).sum() == (premium[steady] > 0).sum()


def test_default_size_is_heavy_tailed_and_weekly(default_truth):
    truth = default_truth
    ev = truth.events
    assert 600_000 < len(ev["ts"]) < 1_500_000
    api = ev["etype"] == API
    per_customer = np.sort(np.bincount(ev["cust"][api], minlength=200))[::-1]
    assert per_customer[:10].sum() / per_customer.sum() > 0.40  # top 5 % of customers
    days = (ev["ts"][api] - truth.t0) // 86_400
    weekday = np.array([(truth.start + timedelta(days=int(d))).weekday() for d in range(120)])
    per_day = np.bincount(days, minlength=120)
    assert per_day[weekday < 5].mean() > 1.5 * per_day[weekday >= 5].mean()
    hours = (ev["ts"][api] % 86_400) // 3600  # UTC: Americas + Europe make a clear day shape
    assert np.bincount(hours, minlength=24).max() > 2 * np.bincount(hours, minlength=24).min()
    first = np.array([ev["ts"][ev["cust"] == i].min() for i in range(200)])
    last = np.array([ev["ts"][ev["cust"] == i].max() for i in range(200)])
    assert (first > truth.t0 + 7 * 86_400).sum() >= 10  # customers who signed up mid-history
    assert (last < truth.t1 - 7 * 86_400).sum() >= 5  # customers who churned


def test_summary(demo, manifest):
    assert demo.rows == manifest["expected"]["rows_read"]
    assert demo.accepted_events == manifest["expected"]["accepted"]["records"]
    assert demo.catalog_path.exists() and demo.labels_path.exists()
    assert "customers" in str(demo)


def test_bad_parameters_are_refused(tmp_path):
    with pytest.raises(ValueError):
        generate_demo(tmp_path, customers=3)


def test_example_catalog_loads():
    catalog = load_catalog(EXAMPLE_CATALOG)
    assert catalog.meters and catalog.plans and catalog.customers
    assert any(c.webhook_url for c in catalog.customers)
    assert any(m.filters for m in catalog.meters) and any(m.group_by for m in catalog.meters)
