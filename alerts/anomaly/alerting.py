"""Score the warehouse's usage for anomalies; record them and queue their alerts.

``detect_anomalies(con, now=..., policies=...)`` reads ``marts.fct_usage_daily`` and
``marts.fct_usage_hourly``, scores every customer-meter series with ``score_series`` and, in ONE
transaction, writes:

* ``marts.fct_usage_anomalies`` -- every scored bucket of the recent window (observed, expected,
  range, score, flags, severity, explanation); older rows are kept as they were scored;
* ``alerts.outbox`` -- one ``usage.anomaly_detected`` message per new incident (stable id);
* ``alerts.anomaly_runs`` -- one row per granularity and run.

Which buckets
-------------
Only *complete* buckets are scored: a local day or hour counts once it has ended, in the
customer's time zone, before the *watermark* -- the latest event time in the warehouse (capped at
``now``), so a pipeline that lags behind the clock does not turn the hours it has not seen yet
into drops. Each run reads a trailing history (``history_days``: enough for the weekday baseline
and its cold start) and rewrites only the last ``rewrite_days`` of the mart (late events can
change them), so its cost is bounded by the window, not by the warehouse's age.

Series: per customer and meter, summed over dimensions (count, sum, unique_count) or maxed (max,
latest). Hourly scoring is for additive meters by default: a gauge sampled once a day would look
like 23 drops a day.

Alerts
------
A bucket's ``is_alert`` is the first anomaly of an incident (after the cooldown). It is queued
when the bucket ended after the previous run's watermark minus ``alert_lookback`` (the first run:
after this run's watermark minus the lookback), so history found at install time fills the mart
but does not page anyone, and a paused pipeline catches up. A daily alert is not queued when an
hourly alert was already raised for the same customer, meter and local day: one incident, one
message. Alert ids are ``ano_`` + sha256(customer|meter|granularity|window start), so a re-run
queues nothing twice.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from alerts.anomaly.model import score_series
from alerts.anomaly.params import AnomalyParams, Granularity
from alerts.outbox import ensure_outbox, write_outbox

EVENT_TYPE = "usage.anomaly_detected"
SCHEMA_VERSION = 1
MART = "marts.fct_usage_anomalies"
ADDITIVE = {"count", "sum"}

DDL = f"""
create schema if not exists marts;
create schema if not exists alerts;

create table if not exists {MART} (
    customer_id varchar not null,
    meter_code varchar not null,
    granularity varchar not null,
    window_start timestamp not null,
    window_start_utc timestamp not null,
    timezone varchar not null,
    observed double not null,
    expected double,
    lower_bound double,
    upper_bound double,
    score double,
    is_anomaly boolean not null,
    is_alert boolean not null,
    severity varchar,
    anomaly_kind varchar,
    explanation varchar,
    cold_start boolean not null,
    alert_id varchar,
    scored_at timestamp not null,
    primary key (customer_id, meter_code, granularity, window_start)
);

create table if not exists alerts.anomaly_runs (
    evaluated_at timestamp not null,
    granularity varchar not null,
    watermark timestamp,
    series integer not null,
    buckets_written integer not null,
    anomalies integer not null,
    alerts_queued integer not null,
    seconds double not null
);
"""

_NUMBER = {"type": "number"}
_NUMBER_OR_NULL = {"type": ["number", "null"]}
_INSTANT = {"type": "string", "format": "date-time"}

#: JSON schema of a ``usage.anomaly_detected`` payload (``schema_version`` 1).
ANOMALY_PAYLOAD_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": f"https://meterworks.dev/schemas/{EVENT_TYPE}/v1.json",
    "title": EVENT_TYPE,
    "type": "object",
    "additionalProperties": False,
    "required": [
        "schema_version",
        "event_type",
        "alert_id",
        "customer_id",
        "meter_code",
        "granularity",
        "window_start",
        "window_start_utc",
        "window_end_utc",
        "timezone",
        "kind",
        "severity",
        "observed",
        "expected",
        "lower_bound",
        "upper_bound",
        "score",
        "explanation",
        "cold_start",
        "detected_at",
    ],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "event_type": {"const": EVENT_TYPE},
        "alert_id": {"type": "string", "pattern": "^ano_[0-9a-f]{32}$"},
        "customer_id": {"type": "string", "minLength": 1},
        "meter_code": {"type": "string", "minLength": 1},
        "granularity": {"enum": ["day", "hour"]},
        "window_start": {
            "description": "Local wall-clock start of the bucket (the customer's time zone).",
            "type": "string",
            "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$",
        },
        "window_start_utc": _INSTANT,
        "window_end_utc": _INSTANT,
        "timezone": {"type": "string", "minLength": 1},
        "kind": {"enum": ["spike", "drop", "level_shift"]},
        "severity": {"enum": ["info", "warning", "critical"]},
        "observed": _NUMBER,
        "expected": _NUMBER,
        "lower_bound": _NUMBER_OR_NULL,
        "upper_bound": _NUMBER_OR_NULL,
        "score": _NUMBER,
        "explanation": {"type": "string", "minLength": 1},
        "cold_start": {"type": "boolean"},
        "detected_at": _INSTANT,
    },
}


@dataclass(frozen=True)
class MeterPolicy:
    """How one meter is scored: whether at all, whether hourly, and with which parameters."""

    meter_code: str
    aggregation: str
    enabled: bool = True
    hourly: bool = True
    params: AnomalyParams = field(default_factory=AnomalyParams)


@dataclass
class GranularityRun:
    granularity: Granularity
    watermark: datetime | None = None
    series: int = 0
    buckets_written: int = 0
    anomalies: int = 0
    alerts: list[dict[str, Any]] = field(default_factory=list)  # due now (new or not)
    queued: int = 0  # of which new in the outbox
    seconds: float = 0.0


@dataclass
class AnomalyRun:
    evaluated_at: datetime
    runs: dict[str, GranularityRun] = field(default_factory=dict)

    @property
    def alerts(self) -> list[dict[str, Any]]:
        return [a for r in self.runs.values() for a in r.alerts]


def policies_from_catalog(catalog: Any) -> dict[str, MeterPolicy]:
    """One policy per catalog meter: catalog-wide ``anomaly`` settings, then the meter's own."""
    config = catalog.anomaly
    policies = {}
    for meter in catalog.meters:
        own = config.meters.get(meter.code)
        params = AnomalyParams(**{**config.overrides(), **(own.overrides() if own else {})})
        enabled = next((v for v in (own and own.enabled, config.enabled) if v is not None), True)
        hourly_default = meter.aggregation in ADDITIVE
        hourly = next((v for v in (own and own.hourly, config.hourly) if v is not None), None)
        policies[meter.code] = MeterPolicy(
            meter_code=meter.code,
            aggregation=meter.aggregation,
            enabled=bool(enabled),
            hourly=hourly_default if hourly is None else bool(hourly),
            params=params,
        )
    return policies


def alert_id_for(customer_id: str, meter_code: str, granularity: str, window_start: Any) -> str:
    when = pd.Timestamp(window_start).isoformat()
    key = "|".join([customer_id, meter_code, granularity, when])
    return "ano_" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


# -- reading the usage ---------------------------------------------------------------------
_SOURCES = {
    "day": (
        "marts.fct_usage_daily",
        "cast(usage_date as timestamp)",
        "interval 1 day",
    ),
    "hour": ("marts.fct_usage_hourly", "usage_hour", "interval 1 hour"),
}


def _relation_exists(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = ? and table_name = ?",
            [schema, name],
        ).fetchone()[0]
    )


def _watermark(con: duckdb.DuckDBPyConnection, now: datetime) -> datetime | None:
    if not _relation_exists(con, "marts", "fct_usage_hourly"):
        return None
    latest = con.execute("select max(last_event_at) from marts.fct_usage_hourly").fetchone()[0]
    return None if latest is None else min(latest, now)


def _usage(
    con: duckdb.DuckDBPyConnection,
    granularity: Granularity,
    meters: list[str],
    watermark: datetime,
    history_days: int,
) -> pd.DataFrame:
    """Complete buckets of the trailing history: customer, meter, local start, tz, quantity."""
    table, start, step = _SOURCES[granularity]
    if not meters or not _relation_exists(con, *table.split(".")):
        return pd.DataFrame(
            columns=["customer_id", "meter_code", "window_start", "timezone", "quantity"]
        )
    return con.execute(
        f"""
        select
            customer_id,
            meter_code,
            {start} as window_start,
            any_value(timezone) as timezone,
            case
                when any_value(aggregation) in ('max', 'latest') then max(quantity)
                else sum(quantity)
            end::double as quantity
        from {table}
        where
            meter_code in (select unnest(?::varchar[]))
            and {start} >= ?::timestamp - interval {int(history_days)} day
            -- complete: the local bucket has ended, in the customer's zone, by the watermark
            and timezone(coalesce(timezone, 'UTC'), {start} + {step}) <= timezone('UTC', ?)
        group by customer_id, meter_code, {start}
        """,
        [meters, watermark, watermark],
    ).df()


def _last_complete(timezones: pd.Series, watermark: datetime, granularity: Granularity):
    """Per row: the start of the last complete local bucket for its time zone."""
    unit = "D" if granularity == "day" else "h"
    step = pd.Timedelta(days=1) if granularity == "day" else pd.Timedelta(hours=1)
    wm = pd.Timestamp(watermark, tz="UTC")
    by_zone = {
        tz: wm.tz_convert(tz).tz_localize(None).floor(unit) - step for tz in timezones.unique()
    }
    return timezones.map(by_zone)


def _utc(local: pd.Series, timezones: pd.Series) -> pd.Series:
    out = pd.Series(pd.NaT, index=local.index, dtype="datetime64[ns]")
    for tz, idx in local.groupby(timezones).groups.items():
        stamps = local.loc[idx].dt.tz_localize(tz, ambiguous=True, nonexistent="shift_forward")
        out.loc[idx] = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return out


#: series scored per call: bounds memory (the model works on series x buckets matrices) at
#: 10,000 customers x several meters x 49 days of hours; each chunk fits its own scorer
SERIES_PER_CHUNK = 2_000


def _score(
    usage: pd.DataFrame,
    granularity: Granularity,
    policies: Mapping[str, MeterPolicy],
    keep_from: pd.Timestamp,
) -> pd.DataFrame:
    """Score the meters in groups of equal parameters (usually one group), at most
    ``SERIES_PER_CHUNK`` series at a time, keeping the buckets from ``keep_from`` on."""
    frames = []
    groups: dict[AnomalyParams, list[str]] = {}
    for code in usage["meter_code"].unique():
        groups.setdefault(policies[code].params, []).append(code)
    for params, codes in groups.items():
        part = usage[usage["meter_code"].isin(codes)]
        series, _ = pd.factorize(
            pd.MultiIndex.from_arrays([part["customer_id"], part["meter_code"]])
        )
        for chunk in range(int(series.max()) // SERIES_PER_CHUNK + 1 if len(series) else 0):
            rows = part[series // SERIES_PER_CHUNK == chunk]
            scored = score_series(
                rows[["customer_id", "meter_code", "window_start", "quantity"]], granularity, params
            )
            frames.append(scored[scored["window_start"] >= keep_from])
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _hourly_alert_days(con: duckdb.DuckDBPyConnection) -> set[tuple[str, str, pd.Timestamp]]:
    rows = con.execute(
        f"""
        select distinct customer_id, meter_code, date_trunc('day', window_start)
        from {MART}
        where granularity = 'hour' and is_alert
        """
    ).fetchall()
    return {(c, m, pd.Timestamp(d)) for c, m, d in rows}


def _payload(row: Any, granularity: str, now: datetime) -> dict[str, Any]:
    step = timedelta(days=1) if granularity == "day" else timedelta(hours=1)
    start_utc = pd.Timestamp(row.window_start_utc).to_pydatetime()

    def num(x: Any) -> float | None:
        return None if x is None or not np.isfinite(x) else round(float(x), 6)

    return {
        "schema_version": SCHEMA_VERSION,
        "event_type": EVENT_TYPE,
        "alert_id": row.alert_id,
        "customer_id": row.customer_id,
        "meter_code": row.meter_code,
        "granularity": granularity,
        "window_start": pd.Timestamp(row.window_start).isoformat(timespec="seconds"),
        "window_start_utc": start_utc.isoformat(timespec="seconds") + "Z",
        "window_end_utc": (start_utc + step).isoformat(timespec="seconds") + "Z",
        "timezone": row.timezone,
        "kind": row.anomaly_kind,
        "severity": row.severity,
        "observed": num(row.observed) or 0.0,
        "expected": num(row.expected) or 0.0,
        "lower_bound": num(row.lower_bound),
        "upper_bound": num(row.upper_bound),
        "score": num(row.score) or 0.0,
        "explanation": row.explanation,
        "cold_start": bool(row.cold_start),
        "detected_at": now.isoformat(timespec="seconds") + "Z",
    }


def _previous_watermark(con: duckdb.DuckDBPyConnection, granularity: str) -> datetime | None:
    return con.execute(
        "select max(watermark) from alerts.anomaly_runs where granularity = ?", [granularity]
    ).fetchone()[0]


def _run_granularity(
    con: duckdb.DuckDBPyConnection,
    granularity: Granularity,
    policies: Mapping[str, MeterPolicy],
    watermark: datetime,
    now: datetime,
    history_days: int,
    rewrite_days: int,
    alert_lookback: timedelta,
) -> GranularityRun:
    started = time.perf_counter()
    run = GranularityRun(granularity, watermark)
    meters = sorted(
        code for code, p in policies.items() if p.enabled and (granularity == "day" or p.hourly)
    )
    usage = _usage(con, granularity, meters, watermark, history_days)
    if usage.empty:
        run.seconds = time.perf_counter() - started
        return run
    usage["window_start"] = pd.to_datetime(usage["window_start"])
    zones = usage.groupby(["customer_id", "meter_code"])["timezone"].first()
    cutoff = pd.Timestamp(watermark).floor("D") - pd.Timedelta(days=rewrite_days)
    scored = _score(usage, granularity, policies, keep_from=cutoff)
    scored = scored.join(zones, on=["customer_id", "meter_code"])
    scored["timezone"] = scored["timezone"].fillna("UTC")
    # the grid zero-fills every series to the latest bucket of any zone: keep each series'
    # own complete buckets only
    scored = scored[
        scored["window_start"] <= _last_complete(scored["timezone"], watermark, granularity)
    ]
    out = scored.copy()
    out["window_start_utc"] = _utc(out["window_start"], out["timezone"])
    out["alert_id"] = [
        alert_id_for(c, m, granularity, w) if a else None
        for c, m, w, a in zip(
            out["customer_id"], out["meter_code"], out["window_start"], out["alert"], strict=True
        )
    ]
    out = out.rename(
        columns={
            "lower": "lower_bound",
            "upper": "upper_bound",
            "alert": "is_alert",
            "kind": "anomaly_kind",
        }
    )
    out["granularity"] = granularity
    out["scored_at"] = now
    columns = [
        "customer_id", "meter_code", "granularity", "window_start", "window_start_utc",
        "timezone", "observed", "expected", "lower_bound", "upper_bound", "score",
        "is_anomaly", "is_alert", "severity", "anomaly_kind", "explanation", "cold_start",
        "alert_id", "scored_at",
    ]  # fmt: skip
    out = out[columns]
    con.execute(
        f"delete from {MART} where granularity = ? and window_start >= ?",
        [granularity, cutoff.to_pydatetime()],
    )
    con.register("anomaly_rows", out)
    try:
        con.execute(f"insert into {MART} select * from anomaly_rows")
    finally:
        con.unregister("anomaly_rows")
    run.series = int(scored.groupby(["customer_id", "meter_code"]).ngroups)
    run.buckets_written = len(out)
    run.anomalies = int(out["is_anomaly"].sum())

    previous = _previous_watermark(con, granularity)
    since = watermark - alert_lookback
    if previous is not None:
        since = min(since, previous - alert_lookback)
    step = pd.Timedelta(days=1) if granularity == "day" else pd.Timedelta(hours=1)
    fresh = out[out["is_alert"] & (out["window_start_utc"] + step > pd.Timestamp(since))]
    if granularity == "day" and len(fresh):
        hourly = _hourly_alert_days(con)
        keep = [
            (c, m, pd.Timestamp(w).floor("D")) not in hourly
            for c, m, w in zip(
                fresh["customer_id"], fresh["meter_code"], fresh["window_start"], strict=True
            )
        ]
        fresh = fresh[keep]
    run.alerts = [_payload(r, granularity, now) for r in fresh.itertuples(index=False)]
    run.seconds = time.perf_counter() - started
    return run


def detect_anomalies(
    con: duckdb.DuckDBPyConnection,
    *,
    now: datetime,
    policies: Mapping[str, MeterPolicy],
    daily_history_days: int = 182,
    hourly_history_days: int = 49,
    daily_rewrite_days: int = 35,
    hourly_rewrite_days: int = 7,
    daily_alert_lookback: timedelta = timedelta(days=2),
    hourly_alert_lookback: timedelta = timedelta(hours=6),
) -> AnomalyRun:
    """Score daily then hourly usage and record the results (see the module docstring).

    ``now`` is the evaluation instant (naive = UTC); ``policies`` maps each meter code to its
    ``MeterPolicy`` (``policies_from_catalog``); meters without a policy are not scored.
    """
    if now.tzinfo is not None:
        now = now.astimezone(UTC).replace(tzinfo=None)
    result = AnomalyRun(evaluated_at=now)
    ensure_outbox(con)
    con.execute(DDL)
    watermark = _watermark(con, now)
    if watermark is None:
        return result
    con.execute("begin transaction")
    try:
        # hourly first: a daily alert defers to an hourly alert of the same day
        for granularity, history, rewrite, lookback in (
            ("hour", hourly_history_days, hourly_rewrite_days, hourly_alert_lookback),
            ("day", daily_history_days, daily_rewrite_days, daily_alert_lookback),
        ):
            run = _run_granularity(
                con, granularity, policies, watermark, now, history, rewrite, lookback
            )
            queued = write_outbox(con, run.alerts, now)
            con.execute(
                "insert into alerts.anomaly_runs values (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    now,
                    granularity,
                    watermark,
                    run.series,
                    run.buckets_written,
                    run.anomalies,
                    queued,
                    run.seconds,
                ],
            )
            run.queued = queued
            result.runs[granularity] = run
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return result
