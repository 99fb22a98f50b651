"""``generate_demo``: the whole demo data set, a pure function of (seed, customers, days, end).

Written into ``out_dir``::

    catalog.yml                 meters, plans (Stripe-shaped prices), every demo customer
    events/                     the usage, as the sources deliver it (ingest this folder):
      canonical-YYYY-MM.jsonl[.gz]   canonical shape, one file per UTC month (older ones gzip'd,
                                     the oldest with epoch-millisecond timestamps); the newest
                                     also carries late events and the corrections
      canonical-YYYY-MM-retry.jsonl  a re-sent slice of history (+ conflicting variants)
      lago-export-{1,2}.jsonl        Lago export, epoch seconds, overlapping by a week; the
                                     first rows of export 2 use the API body wrapper
      orb-events-YYYY-MM.csv[.gz]    Orb CSV with a JSON `properties` column
      metronome-usage-YYYY-MM.parquet  Metronome, `properties` as JSON text
      cloudevents-YYYY-MM.jsonl      OpenMeter/CloudEvents
    anomaly_labels.csv          customer_id, meter_code, kind, start_utc, end_utc, factor
    stripe/                     the demo's Stripe account as list exports (customers, meters,
                                products, prices, subscriptions, invoices, credit notes) with a
                                handful of billing defects, and expected_reconciliation.csv:
                                what reconciliation must flag (see ``stripe_account.py``)
    expected_meter_totals.csv   customer_id, meter_code, period_month (local), dimensions,
                                quantity (exact decimal), event_count: what fct_meter_totals
                                must hold after ingesting events/ once
    manifest.json               parameters, files (path, shape, format, rows, bytes, sha256)
                                and the exact expected ingestion outcome ("expected"); "stripe":
                                object counts, the planted defects, reconciliation totals
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from meterworks.catalog import load_catalog
from meterworks.demo.catalog_yaml import render_catalog
from meterworks.demo.deliver import (
    Delivery,
    Outcome,
    backdating_days_for,
    expected_outcome,
    file_format,
    ordered_rows,
    plan_delivery,
)
from meterworks.demo.render import Renderer
from meterworks.demo.simulate import (
    API,
    COMPLETION,
    DAY,
    EVENT_TYPES,
    MODELS,
    PREMIUM_MODEL,
    SEATS,
    SESSION,
    STORAGE,
    Truth,
    local_months,
    simulate,
)
from meterworks.demo.stripe_account import write_stripe_account

MANIFEST_VERSION = 1
EVENTS_DIR = "events"
CATALOG_FILE = "catalog.yml"
MANIFEST_FILE = "manifest.json"
LABELS_FILE = "anomaly_labels.csv"
EXPECTED_TOTALS_FILE = "expected_meter_totals.csv"

# meter code -> (event type, aggregation, property) as in the demo catalog
METERS = {
    "api_calls": (API, "count", None),
    "tokens": (COMPLETION, "sum", "tokens"),
    "premium_tokens": (COMPLETION, "sum", "tokens"),
    "storage_gb": (STORAGE, "max", "gb"),
    "active_users": (SESSION, "unique_count", "user_id"),
    "seats": (SEATS, "latest", "seats"),
}


@dataclass(frozen=True)
class DemoSummary:
    """What ``generate_demo`` wrote, with the headline numbers of the expected ingestion."""

    out_dir: Path
    catalog_path: Path
    events_dir: Path
    manifest_path: Path
    labels_path: Path
    expected_totals_path: Path
    seed: int
    customers: int
    days: int
    start: date
    end: date
    files: int
    rows: int
    accepted_events: int
    corrections: int
    duplicates: int
    conflicts: int
    quarantined: int
    anomalies: int
    seconds: float = field(compare=False)

    def __str__(self) -> str:
        return (
            f"{self.customers} customers, {self.start}..{self.end}: {self.rows:,} rows in "
            f"{self.files} files -> {self.accepted_events:,} events, {self.corrections} "
            f"corrections, {self.duplicates:,} duplicates, {self.conflicts} conflicts, "
            f"{self.quarantined} quarantined; {self.anomalies} labelled anomalies"
        )


def default_end() -> date:
    """Yesterday (UTC): the last *complete* day, so no demo event lies in the future when the
    demo is ingested right away (a timestamp later today would be `timestamp_in_future`)."""
    return datetime.now(UTC).date() - timedelta(days=1)


def generate_demo(
    out_dir: Path,
    *,
    seed: int = 7,
    customers: int = 200,
    days: int = 120,
    end: date | None = None,
) -> DemoSummary:
    """Write the demo (catalog, event files, labels, manifest) into ``out_dir``.

    ``end`` is the last day of usage (UTC); by default yesterday. The output is a pure function
    of the arguments: the same arguments give byte-identical files. ``out_dir/events`` is
    replaced, so files of an earlier demo never get ingested by mistake.
    """
    if customers < 10:
        raise ValueError("the demo needs at least 10 customers")
    if days < 28:
        raise ValueError("the demo needs at least 28 days of history")
    started = time.perf_counter()
    end = end or default_end()
    out_dir = Path(out_dir)
    events_dir = out_dir / EVENTS_DIR
    if events_dir.exists():
        shutil.rmtree(events_dir)
    events_dir.mkdir(parents=True)

    truth = simulate(seed, customers, days, end)
    backdating_days = backdating_days_for(days)
    catalog_text, plan = render_catalog(truth, seed, days, backdating_days)
    (out_dir / CATALOG_FILE).write_text(catalog_text, encoding="utf-8")

    delivery = plan_delivery(truth, seed)
    rows = ordered_rows(delivery)
    outcome = expected_outcome(delivery, rows)
    renderer = Renderer(delivery)
    files: list[dict[str, Any]] = []
    boundaries = np.flatnonzero(np.diff(rows["file"].to_numpy())) + 1
    starts = np.concatenate([[0], boundaries])
    stops = np.concatenate([boundaries, [len(rows)]])
    for lo, hi in zip(starts.tolist(), stops.tolist(), strict=True):
        name = delivery.file_names[int(rows["file"].iat[lo])]
        written = renderer.write(events_dir, name, rows.iloc[lo:hi])
        assert written == outcome.rows_per_file[name]
        data = (events_dir / name).read_bytes()
        files.append(
            {
                "path": f"{EVENTS_DIR}/{name}",
                "shape": delivery.files[name],
                "format": file_format(name),
                "rows": written,
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )

    totals = _expected_meter_totals(truth, delivery, outcome)
    public = ["customer_id", "meter_code", "period_month", "dimensions", "quantity", "event_count"]
    totals[public].to_csv(out_dir / EXPECTED_TOTALS_FILE, index=False, lineterminator="\n")
    _write_labels(out_dir / LABELS_FILE, truth)
    manifest = _manifest(truth, delivery, outcome, totals, files, seed, days, backdating_days, plan)
    manifest["stripe"] = write_stripe_account(
        out_dir,
        truth=truth,
        delivery=delivery,
        outcome=outcome,
        plan=plan,
        catalog=load_catalog(out_dir / CATALOG_FILE),
        seed=seed,
    )
    (out_dir / MANIFEST_FILE).write_text(
        json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8"
    )
    return DemoSummary(
        out_dir=out_dir,
        catalog_path=out_dir / CATALOG_FILE,
        events_dir=events_dir,
        manifest_path=out_dir / MANIFEST_FILE,
        labels_path=out_dir / LABELS_FILE,
        expected_totals_path=out_dir / EXPECTED_TOTALS_FILE,
        seed=seed,
        customers=customers,
        days=days,
        start=truth.start,
        end=truth.end,
        files=len(files),
        rows=outcome.rows_read,
        accepted_events=outcome.accepted_records,
        corrections=outcome.accepted_corrections,
        duplicates=outcome.duplicates,
        conflicts=outcome.conflicts,
        quarantined=sum(outcome.quarantined_by_reason.values()),
        anomalies=len(truth.anomalies),
        seconds=round(time.perf_counter() - started, 3),
    )


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _decimal_text(value: int, scale: int) -> str:
    """An exact decimal from an integer count of 10^-scale units."""
    if scale == 0:
        return str(value)
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), 10**scale)
    return f"{sign}{whole}.{frac:0{scale}d}"


def _expected_meter_totals(truth: Truth, d: Delivery, outcome: Outcome) -> pd.DataFrame:
    """Per customer, meter, local calendar month (and group-by values): the exact quantity."""
    v = {k: col[outcome.effective] for k, col in d.versions.items()}
    frame = pd.DataFrame(v)
    frame["period_month"] = local_months(v["cust"], v["ts"], truth.customers)
    out = []
    keys = ["cust", "period_month"]
    for code, (etype, aggregation, _) in METERS.items():
        sub = frame[frame["etype"] == etype]
        if code == "premium_tokens":
            sub = sub[sub["a"] == PREMIUM_MODEL]
        group = keys + (["a"] if code == "tokens" else [])
        g = sub.groupby(group, sort=True)
        if aggregation == "count":
            q = g.size()
        elif aggregation == "sum":
            q = g["b"].sum()
        elif aggregation == "max":
            q = g["b"].max()
        elif aggregation == "unique_count":
            q = g["a"].nunique()
        else:  # latest: the value of the last event in the period
            q = sub.sort_values("ts", kind="stable").groupby(group, sort=True)["b"].last()
        part = pd.DataFrame({"quantity": q, "event_count": g.size()}).reset_index()
        part["meter_code"] = code
        if code == "tokens":
            part["dimensions"] = [
                json.dumps({"model": MODELS[m]}, separators=(",", ":")) for m in part["a"]
            ]
        else:
            part["dimensions"] = "{}"
        part["scale"] = 2 if code == "storage_gb" else 0
        out.append(part)
    totals = pd.concat(out, ignore_index=True)
    totals["customer_id"] = [truth.customers.ids[c] for c in totals["cust"]]
    totals["quantity_units"] = totals["quantity"].astype(np.int64)
    totals["quantity"] = [
        _decimal_text(int(q), int(s))
        for q, s in zip(totals["quantity_units"], totals["scale"], strict=True)
    ]
    totals = totals.sort_values(["customer_id", "meter_code", "period_month", "dimensions"])
    return totals[
        [
            "customer_id",
            "meter_code",
            "period_month",
            "dimensions",
            "quantity",
            "event_count",
            "quantity_units",
            "scale",
        ]
    ].reset_index(drop=True)


def _write_labels(path: Path, truth: Truth) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["customer_id", "meter_code", "kind", "start_utc", "end_utc", "factor"])
    for a in sorted(truth.anomalies, key=lambda a: (a.start_ts, a.cust, a.meter_code)):
        writer.writerow(
            [
                truth.customers.ids[a.cust],
                a.meter_code,
                a.kind,
                _iso(a.start_ts),
                _iso(a.end_ts),
                f"{a.factor:g}",
            ]
        )
    path.write_text(buffer.getvalue(), encoding="utf-8")


def _manifest(
    truth: Truth,
    d: Delivery,
    outcome: Outcome,
    totals: pd.DataFrame,
    files: list[dict[str, Any]],
    seed: int,
    days: int,
    backdating_days: int,
    plan: np.ndarray,
) -> dict[str, Any]:
    effective = {k: col[outcome.effective] for k, col in d.versions.items()}
    meters: dict[str, Any] = {}
    for code, (etype, aggregation, prop) in METERS.items():
        rows = totals[totals["meter_code"] == code]
        scale = 2 if code == "storage_gb" else 0
        meters[code] = {
            "event": EVENT_TYPES[etype],
            "aggregation": aggregation,
            "property": prop,
            "events": int(rows["event_count"].sum()),
            "quantity_total": _decimal_text(int(rows["quantity_units"].sum()), scale),
            "customer_periods": len(rows),
        }
    quarantined = sum(outcome.quarantined_by_reason.values())
    accepted_total = outcome.accepted_records + outcome.accepted_corrections
    assert outcome.rows_read == accepted_total + outcome.duplicates + quarantined
    not_after = truth.t0 + (backdating_days - 1) * DAY
    return {
        "generator": "meterworks.demo",
        "manifest_version": MANIFEST_VERSION,
        "seed": seed,
        "parameters": {
            "customers": truth.customers.n,
            "days": days,
            "start": truth.start.isoformat(),
            "end": truth.end.isoformat(),
            "usage_from_utc": _iso(truth.t0),
            "usage_until_utc": _iso(truth.t1),
            "backdating_days": backdating_days,
        },
        "catalog": CATALOG_FILE,
        "labels": LABELS_FILE,
        "expected_meter_totals": EXPECTED_TOTALS_FILE,
        "files": files,
        "expected": {
            "assumptions": (
                "All files under events/ ingested once, in sorted path order (rows in file "
                "order), with the demo catalog, at a wall-clock time between "
                "ingest_not_before_utc and ingest_not_after_utc. First transaction_id wins; "
                "corrections apply to targets accepted earlier; the latest correction wins."
            ),
            "ingest_not_before_utc": _iso(truth.t1),
            "ingest_not_after_utc": _iso(not_after),
            "rows_read": outcome.rows_read,
            "accepted": {
                "records": outcome.accepted_records,
                "corrections": outcome.accepted_corrections,
                "total": accepted_total,
            },
            "accepted_records_by_shape": outcome.accepted_by_shape,
            "duplicates": outcome.duplicates,
            "conflicts": outcome.conflicts,
            "quarantined": {"total": quarantined, "by_reason": outcome.quarantined_by_reason},
            "effective_events": len(outcome.effective),
            "meters": meters,
            "meter_totals_note": (
                "quantity_total = sum over customer x local calendar month (x group-by values) "
                "of the period quantity, i.e. the sum of fct_meter_totals.quantity for the "
                "meter; for count/sum meters it is also the plain total. Exact decimals."
            ),
        },
        "customers_by_plan": {
            name: int(count)
            for name, count in zip(
                ("free", "starter", "growth", "scale", "enterprise"),
                np.bincount(plan, minlength=5),
                strict=True,
            )
        },
        "customers_by_shape": {
            shape: int((truth.customers.shape == i).sum())
            for i, shape in enumerate(("canonical", "lago", "orb", "metronome", "cloudevents"))
        },
        "faults": {
            **d.notes,
            "true_events": len(truth.events["ts"]),
            "voided_events": int(len(truth.events["ts"]) - len(outcome.effective)),
        },
        "anomalies": len(truth.anomalies),
        "effective_event_types": {
            EVENT_TYPES[t]: int(c)
            for t, c in enumerate(np.bincount(effective["etype"], minlength=len(EVENT_TYPES)))
        },
    }
