"""Real alerts for the webhook tests: a small warehouse whose ``alerts.outbox`` is filled by the
alert code itself (``evaluate_thresholds`` and ``detect_anomalies`` on hand-made marts), so
the payloads delivered and validated are the ones production sends."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from alerts.anomaly.alerting import MeterPolicy, detect_anomalies
from alerts.thresholds import evaluate_thresholds
from meterworks.warehouse import connect

JAN = (datetime(2026, 1, 1), datetime(2026, 2, 1))
ANOMALY_START = datetime(2026, 1, 5)  # a Monday
ANOMALY_DAYS = 42


def _projected_invoice(con: duckdb.DuckDBPyConnection, rows: list[dict]) -> None:
    con.execute("create schema if not exists marts")
    con.execute(
        """
        create or replace table marts.fct_projected_invoice (
            customer_id varchar, charge_source varchar, subscription_id varchar,
            subscription_item_id varchar, charge_type varchar, meter_code varchar,
            price_id varchar, price_source varchar, currency varchar,
            period_start timestamp, period_end timestamp, as_of timestamp,
            included decimal(38, 9), quantity_to_date decimal(38, 9), amount_to_date hugeint,
            projected_quantity decimal(38, 9), projected_amount hugeint
        )
        """
    )
    con.execute(
        """
        create table if not exists marts.fct_meter_totals (
            customer_id varchar, meter_code varchar, dimensions varchar, period_month date,
            period_start timestamp, period_end timestamp, timezone varchar, aggregation varchar,
            quantity decimal(38, 9), event_count bigint, last_event_at timestamp,
            last_event_seq bigint
        )
        """
    )
    for r in rows:
        con.execute(
            "insert into marts.fct_projected_invoice values "
            "(?, 'catalog', null, ?, 'metered', 'api_calls', 'catalog:pro:api_calls', 'catalog', "
            "'usd', ?, ?, null, 1000, ?, ?, ?, ?)",
            [
                r["customer_id"],
                f"catalog:{r['customer_id']}:api_calls",
                r.get("period_start", JAN[0]),
                r.get("period_end", JAN[1]),
                r["quantity"],
                r["amount"],
                r["quantity"],
                r["amount"],
            ],
        )


def threshold_alerts(con: duckdb.DuckDBPyConnection, customers: list[str]) -> None:
    """Every customer crosses 50/80/100 % of 1,000 api calls and a $100 projected invoice."""
    spend = {c: [100] for c in customers}
    _projected_invoice(
        con,
        [
            {
                "customer_id": c,
                "period_start": datetime(2025, 12, 1),
                "period_end": JAN[0],
                "quantity": 0,
                "amount": 0,
            }
            for c in customers
        ],
    )
    evaluate_thresholds(con, now=datetime(2025, 12, 31), spend_thresholds=spend)
    _projected_invoice(
        con,
        [
            {"customer_id": c, "quantity": 1_000 + 10 * i, "amount": 12_000 + i}
            for i, c in enumerate(customers)
        ],
    )
    evaluate_thresholds(con, now=datetime(2026, 1, 20), spend_thresholds=spend)


def anomaly_alerts(con: duckdb.DuckDBPyConnection, customers: list[str], spiky: str) -> None:
    """Steady hourly usage for every customer; ``spiky`` has a 40x retry storm at the end."""
    hours = pd.date_range(ANOMALY_START, periods=ANOMALY_DAYS * 24, freq="h")
    frames = []
    for i, customer in enumerate(customers):
        rng = np.random.default_rng(i)
        diurnal = 0.3 + np.exp(-0.5 * ((np.asarray(hours.hour) - 14) / 4.0) ** 2)
        q = rng.poisson(200 * diurnal / diurnal.mean()).astype(float)
        if customer == spiky:
            storm = (ANOMALY_DAYS - 1) * 24 + 20
            q[storm : storm + 3] *= 40
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": customer,
                    "meter_code": "api_calls",
                    "dimensions": "{}",
                    "usage_hour": hours,
                    "hour_start_utc": hours,
                    "timezone": "UTC",
                    "aggregation": "count",
                    "quantity": q,
                    "event_count": q.astype("int64"),
                    "last_event_at": hours + pd.Timedelta(minutes=59),
                    "last_event_seq": 1,
                }
            )
        )
    hourly = pd.concat(frames, ignore_index=True)
    con.register("hourly_frame", hourly)
    con.execute("create schema if not exists marts")
    con.execute("create or replace table marts.fct_usage_hourly as select * from hourly_frame")
    con.unregister("hourly_frame")
    con.execute(
        """
        create or replace table marts.fct_usage_daily as
        select customer_id, meter_code, dimensions, cast(usage_hour as date) as usage_date,
               timezone, aggregation, sum(quantity) as quantity,
               sum(event_count) as event_count, max(last_event_at) as last_event_at,
               max(last_event_seq) as last_event_seq
        from marts.fct_usage_hourly
        group by all
        """
    )
    end = ANOMALY_START + timedelta(days=ANOMALY_DAYS)
    detect_anomalies(
        con,
        now=end + timedelta(minutes=3),
        policies={"api_calls": MeterPolicy("api_calls", "count")},
    )


def build_alert_warehouse(path: Path, customers: list[str]) -> Path:
    """A warehouse whose outbox holds real alerts of every event type for ``customers``."""
    con = connect(path)
    try:
        threshold_alerts(con, customers)
        anomaly_alerts(con, customers, spiky=customers[0])
    finally:
        con.close()
    return path
