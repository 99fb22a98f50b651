"""Anomaly detection on the warehouse: complete buckets only, the mart, the outbox (no dbt)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import jsonschema
import numpy as np
import pandas as pd
import pytest

from alerts.anomaly.alerting import (
    ANOMALY_PAYLOAD_SCHEMA,
    MART,
    MeterPolicy,
    detect_anomalies,
    policies_from_catalog,
)
from meterworks.catalog import CatalogError, parse_catalog
from meterworks.warehouse import connect

DAYS = 63
START = datetime(2026, 1, 5)  # a Monday (local time)
POLICIES = {
    "api_calls": MeterPolicy("api_calls", "count"),
    "storage_gb": MeterPolicy("storage_gb", "max", hourly=False),
}
ZONES = {"c_la": "America/Los_Angeles", "c_utc": "UTC", "c_tokyo": "Asia/Tokyo"}


def _hourly_usage(seed: int, per_day: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hours = pd.date_range(START, periods=DAYS * 24, freq="h")
    diurnal = 0.3 + np.exp(-0.5 * ((np.asarray(hours.hour) - 14) / 4.0) ** 2)
    weekday = np.where(np.asarray(hours.weekday) >= 5, 0.4, 1.0)
    lam = per_day / 24 * diurnal / diurnal.mean() * weekday
    return rng.poisson(lam * np.exp(rng.normal(0, 0.08, len(hours)))).astype(float)


def _load(con, series: dict[str, np.ndarray]) -> None:
    """Write hand-made hourly and daily marts (local hours; LA/Tokyo/UTC customers)."""
    hours = pd.date_range(START, periods=DAYS * 24, freq="h")
    rows = []
    for customer, q in series.items():
        tz = ZONES.get(customer, "UTC")
        utc = hours.tz_localize(tz, ambiguous=True, nonexistent="shift_forward").tz_convert(None)
        frame = pd.DataFrame(
            {
                "customer_id": customer,
                "meter_code": "api_calls",
                "dimensions": "{}",
                "usage_hour": hours,
                "hour_start_utc": utc,
                "timezone": tz,
                "aggregation": "count",
                "quantity": q,
                "event_count": q.astype("int64"),
                "last_event_at": utc + pd.Timedelta(minutes=59),
                "last_event_seq": 1,
            }
        )
        rows.append(frame[frame["quantity"] > 0])
        gauge = frame.groupby(frame["usage_hour"].dt.floor("D")).agg(last=("last_event_at", "max"))
        rows.append(
            pd.DataFrame(
                {
                    "customer_id": customer,
                    "meter_code": "storage_gb",
                    "dimensions": "{}",
                    "usage_hour": gauge.index + pd.Timedelta(hours=3),
                    "hour_start_utc": gauge["last"].to_numpy(),
                    "timezone": tz,
                    "aggregation": "max",
                    "quantity": 50.0,
                    "event_count": 1,
                    "last_event_at": gauge["last"].to_numpy(),
                    "last_event_seq": 1,
                }
            )
        )
    hourly = pd.concat(rows, ignore_index=True)
    con.execute("create schema if not exists marts")
    con.register("hourly_rows", hourly)
    con.execute("create or replace table marts.fct_usage_hourly as select * from hourly_rows")
    con.unregister("hourly_rows")
    con.execute(
        """
        create or replace table marts.fct_usage_daily as
        select
            customer_id, meter_code, dimensions, cast(usage_hour as date) as usage_date,
            timezone, aggregation,
            case when aggregation = 'max' then max(quantity) else sum(quantity) end as quantity,
            sum(event_count) as event_count, max(last_event_at) as last_event_at,
            max(last_event_seq) as last_event_seq
        from marts.fct_usage_hourly
        group by customer_id, meter_code, dimensions, usage_date, timezone, aggregation
        """
    )


def _population(n: int = 24) -> dict[str, np.ndarray]:
    return {f"c{i:02d}": _hourly_usage(i, 2_000 * (1 + i % 6)) for i in range(n)}


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    con = connect(tmp_path / "w.duckdb")
    yield con
    con.close()


END_UTC = START + timedelta(days=DAYS)  # data runs to local midnight of day DAYS


def alerts_in_outbox(con) -> list[dict]:
    rows = con.execute("select event_type, payload from alerts.outbox order by alert_id").fetchall()
    assert {r[0] for r in rows} <= {"usage.anomaly_detected"}
    return [json.loads(r[1]) for r in rows]


def test_retry_storm_is_recorded_and_queued_once(con):
    series = _population()
    spiky = _hourly_usage(99, 8_000)
    storm = (DAYS - 2) * 24 + 18  # Saturday 7 March 2026, 18:00 UTC
    spiky[storm : storm + 3] *= 40  # a 3-hour retry storm
    series["c_utc"] = spiky
    _load(con, series)
    storm_utc = START + timedelta(hours=storm)
    con.execute("create table full_hourly as select * from marts.fct_usage_hourly")
    # first run: the events of the storm's first hour (and the next) have arrived
    con.execute("delete from marts.fct_usage_hourly where hour_start_utc >= ?",
                [storm_utc + timedelta(hours=2)])  # fmt: skip
    run = detect_anomalies(con, now=storm_utc + timedelta(hours=2, minutes=3), policies=POLICIES)
    assert run.runs["hour"].series == 25 and run.runs["day"].series == 50
    assert run.runs["hour"].watermark == storm_utc + timedelta(hours=1, minutes=59)
    payloads = alerts_in_outbox(con)
    assert [
        (p["customer_id"], p["granularity"], p["window_start"], p["kind"]) for p in payloads
    ] == [("c_utc", "hour", "2026-03-07T18:00:00", "spike")]
    alert = payloads[0]
    assert alert["observed"] > 20 * alert["expected"] and alert["severity"] == "critical"
    assert alert["window_start_utc"] == "2026-03-07T18:00:00Z" and alert["timezone"] == "UTC"
    assert alert["explanation"].startswith("Saturday 18:00's ")
    jsonschema.validate(alert, ANOMALY_PAYLOAD_SCHEMA)

    # later: the rest of the data; the storm's day is complete and anomalous, but its alert
    # defers to the hourly one already sent
    con.execute("create or replace table marts.fct_usage_hourly as select * from full_hourly")
    now = END_UTC + timedelta(hours=1)
    detect_anomalies(con, now=now, policies=POLICIES)
    day = con.execute(
        f"select is_anomaly, is_alert, alert_id, anomaly_kind from {MART} "
        "where customer_id = 'c_utc' and granularity = 'day' and window_start = '2026-03-07'"
    ).fetchone()
    assert day[0] and day[1] and day[2].startswith("ano_") and day[3] == "spike"
    again = alerts_in_outbox(con)
    assert [p for p in again if p["customer_id"] == "c_utc"] == payloads
    for p in again:
        jsonschema.validate(p, ANOMALY_PAYLOAD_SCHEMA)
    # the gauge is scored by day only
    assert con.execute(
        f"select count(*) from {MART} where meter_code = 'storage_gb' and granularity = 'hour'"
    ).fetchone() == (0,)

    before = con.execute(f"select count(*), sum(observed) from {MART}").fetchone()
    rerun = detect_anomalies(con, now=now + timedelta(minutes=5), policies=POLICIES)
    assert sum(r.queued for r in rerun.runs.values()) == 0
    assert alerts_in_outbox(con) == again
    assert con.execute(f"select count(*), sum(observed) from {MART}").fetchone() == before


def test_only_complete_local_buckets_are_scored(con):
    _load(con, {**_population(12), "c_la": _hourly_usage(5, 3_000)})
    # events up to 20:00 UTC of the last local day: 12:00 in Los Angeles, its day is not over
    con.execute(
        "delete from marts.fct_usage_hourly where hour_start_utc >= ?",
        [END_UTC - timedelta(hours=4 + 0)],
    )
    con.execute("delete from marts.fct_usage_daily where last_event_at >= ? ", [END_UTC])
    watermark = con.execute("select max(last_event_at) from marts.fct_usage_hourly").fetchone()[0]
    detect_anomalies(con, now=END_UTC + timedelta(days=2), policies=POLICIES)
    last = dict(
        con.execute(
            f"select customer_id, max(window_start) from {MART} "
            "where granularity = 'day' and meter_code = 'api_calls' group by 1"
        ).fetchall()
    )
    wm_la = pd.Timestamp(watermark, tz="UTC").tz_convert(ZONES["c_la"])
    assert last["c_la"] == wm_la.tz_localize(None).floor("D") - pd.Timedelta(days=1)
    assert last["c00"] == pd.Timestamp(watermark).floor("D") - pd.Timedelta(days=1)
    last_hour = con.execute(
        f"select max(window_start_utc) from {MART} where granularity = 'hour'"
    ).fetchone()[0]
    assert last_hour + timedelta(hours=1) <= watermark
    # nothing the watermark has not reached was called a drop
    assert alerts_in_outbox(con) == []


def test_history_fills_the_mart_without_paging(con):
    series = _population()
    old = _hourly_usage(77, 8_000)
    old[(DAYS - 10) * 24 : (DAYS - 9) * 24] = 0.0  # an outage ten days ago
    series["c_utc"] = old
    _load(con, series)
    detect_anomalies(con, now=END_UTC + timedelta(hours=1), policies=POLICIES)
    row = con.execute(
        f"select is_alert, anomaly_kind, explanation from {MART} where customer_id = 'c_utc'"
        " and granularity = 'day' and window_start = ?",
        [START + timedelta(days=DAYS - 10)],
    ).fetchone()
    assert (
        row[0]
        and row[1] == "drop"
        and row[2].startswith("Friday had no api_calls, against the usual Friday of ~")
    )
    assert alerts_in_outbox(con) == []  # ten days old at install time: recorded, not sent


def test_disabled_meter_and_no_usage(con):
    detect_anomalies(con, now=END_UTC, policies=POLICIES)  # no marts at all: nothing to do
    _load(con, _population(6))
    off = {
        "api_calls": MeterPolicy("api_calls", "count", enabled=False),
        "storage_gb": POLICIES["storage_gb"],
    }
    run = detect_anomalies(con, now=END_UTC, policies=off)
    assert run.runs["hour"].series == 0
    assert con.execute(f"select distinct meter_code from {MART}").fetchall() == [("storage_gb",)]


CATALOG = {
    "meters": [
        {"code": "api_calls", "event": "api_request", "aggregation": "count"},
        {"code": "storage_gb", "event": "snap", "aggregation": "max", "property": "gb"},
        {"code": "seats", "event": "login", "aggregation": "unique_count", "property": "user"},
    ],
}


def test_policies_from_catalog():
    catalog = parse_catalog(
        {
            **CATALOG,
            "anomaly": {
                "min_volume": 500,
                "meters": {
                    "storage_gb": {"hourly": True, "min_ratio": 4},
                    "seats": {"enabled": False},
                },
            },
        }
    )
    policies = policies_from_catalog(catalog)
    assert policies["api_calls"].hourly and policies["api_calls"].params.min_volume == 500
    assert policies["storage_gb"].hourly and policies["storage_gb"].params.min_ratio == 4
    assert policies["storage_gb"].params.min_volume == 500
    assert not policies["seats"].enabled and not policies["seats"].hourly
    defaults = policies_from_catalog(parse_catalog(CATALOG))
    assert not defaults["storage_gb"].hourly and defaults["api_calls"].params.min_volume == 100


def test_catalog_rejects_bad_anomaly_settings():
    with pytest.raises(CatalogError, match=r"anomaly\.meters: unknown meter 'tokens'"):
        parse_catalog({**CATALOG, "anomaly": {"meters": {"tokens": {"enabled": False}}}})
    with pytest.raises(CatalogError, match=r"anomaly.*min_ratio"):
        parse_catalog({**CATALOG, "anomaly": {"min_ratio": 0.5}})
    with pytest.raises(CatalogError, match=r"anomaly.*sensitivity"):
        parse_catalog({**CATALOG, "anomaly": {"sensitivity": 3}})


def test_scoring_in_chunks_covers_every_series(con, monkeypatch):
    """Big warehouses are scored a few thousand series at a time (bounded memory)."""
    import alerts.anomaly.alerting as alerting

    monkeypatch.setattr(alerting, "SERIES_PER_CHUNK", 7)
    series = _population()
    spiky = _hourly_usage(99, 8_000)
    storm = (DAYS - 1) * 24 + 19  # within the 6-hour look-back of the first run
    spiky[storm : storm + 3] *= 40
    series["c_utc"] = spiky
    _load(con, series)
    run = detect_anomalies(con, now=END_UTC + timedelta(hours=1), policies=POLICIES)
    assert run.runs["hour"].series == 25 and run.runs["day"].series == 50
    rows = con.execute(
        f"select granularity, count(distinct (customer_id, meter_code)) from {MART} group by 1"
    ).fetchall()
    assert sorted(rows) == [("day", 50), ("hour", 25)]
    assert [(p["customer_id"], p["window_start"]) for p in alerts_in_outbox(con)] == [
        ("c_utc", "2026-03-08T19:00:00")
    ]
