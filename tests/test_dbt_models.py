"""The dbt project end to end on a small, hand-checked warehouse.

A session fixture builds a temp warehouse with ``meterworks.warehouse``, inserts raw events
directly (so the test controls event_seq and batches), runs ``dbt build`` and checks exact
totals; then a second batch (a late event, voids, amends, new usage) is built incrementally
and must equal a ``--full-refresh`` build, and an unchanged rerun must change nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from meterworks.catalog import parse_catalog
from meterworks.warehouse import connect, ensure_raw_schema, sync_catalog

REPO = Path(__file__).resolve().parent.parent
DBT_DIR = REPO / "dbt"
DBT = Path(sys.executable).with_name("dbt")

MARTS = ["fct_usage_hourly", "fct_usage_daily", "fct_meter_totals", "dim_meters", "dim_customers"]

CATALOG = parse_catalog(
    {
        "meters": [
            {"code": "api_calls", "event": "api_request", "aggregation": "count"},
            {
                "code": "eu_calls",
                "event": "api_request",
                "aggregation": "count",
                "filters": {"region": ["eu-west", "eu-central"]},
            },
            {
                "code": "active_users",
                "event": "api_request",
                "aggregation": "unique_count",
                "property": "user",
            },
            {
                "code": "tokens",
                "event": "completion",
                "aggregation": "sum",
                "property": "tokens",
                "group_by": ["model"],
            },
            {
                "code": "storage_gb",
                "event": "storage_snapshot",
                "aggregation": "max",
                "property": "gb",
            },
            {
                "code": "seats",
                "event": "seat_snapshot",
                "aggregation": "latest",
                "property": "seats",
            },
        ],
        "customers": [
            {"id": "acme", "timezone": "America/Los_Angeles"},
            {"id": "globex", "timezone": "Asia/Kolkata"},
            {"id": "initech", "timezone": "UTC"},
        ],
    }
)

# (transaction_id, action, corrects, customer, event, UTC timestamp, properties)
BATCH_1 = [
    (
        "t1",
        "record",
        None,
        "acme",
        "api_request",
        "2026-02-10 10:00:00",
        {"region": "eu-west", "user": "u1"},
    ),
    (
        "t2",
        "record",
        None,
        "acme",
        "api_request",
        "2026-02-10 10:30:00",
        {"region": "us-east", "user": "u2"},
    ),
    # 07:30 UTC on 1 March is 23:30 on 28 February in Los Angeles: February's period
    (
        "t3",
        "record",
        None,
        "acme",
        "api_request",
        "2026-03-01 07:30:00",
        {"region": "eu-central", "user": "u1"},
    ),
    (
        "t4",
        "record",
        None,
        "acme",
        "api_request",
        "2026-03-01 08:00:00",
        {"region": "eu-west", "user": "u3"},
    ),
    (
        "t5",
        "record",
        None,
        "acme",
        "completion",
        "2026-02-11 12:00:00",
        {"tokens": 100, "model": "gpt-4o"},
    ),
    (
        "t6",
        "record",
        None,
        "acme",
        "completion",
        "2026-02-11 12:05:00",
        {"tokens": 50.5, "model": "gpt-4o"},
    ),
    (
        "t7",
        "record",
        None,
        "acme",
        "completion",
        "2026-02-12 09:00:00",
        {"tokens": 30, "model": "claude"},
    ),
    # Kolkata is UTC+5:30: 18:29 UTC is 23:59 on 28 Feb, 18:30 UTC is midnight on 1 March
    ("t8", "record", None, "globex", "storage_snapshot", "2026-02-28 18:29:00", {"gb": 10}),
    ("t9", "record", None, "globex", "storage_snapshot", "2026-02-28 18:30:00", {"gb": 4}),
    ("t10", "record", None, "globex", "storage_snapshot", "2026-03-05 00:00:00", {"gb": 7}),
    ("t11", "record", None, "globex", "seat_snapshot", "2026-03-02 10:00:00", {"seats": 5}),
    ("t12", "record", None, "globex", "seat_snapshot", "2026-03-03 10:00:00", {"seats": 3}),
    ("t13", "record", None, "walkin", "api_request", "2026-02-15 00:00:00", {"user": "w1"}),
    ("t14", "record", None, "initech", "completion", "2026-02-20 00:00:00", {"tokens": 10}),
]

BATCH_2 = [
    # late event in an hour that was already aggregated
    (
        "t15",
        "record",
        None,
        "acme",
        "api_request",
        "2026-02-10 10:45:00",
        {"region": "eu-west", "user": "u9"},
    ),
    ("v1", "void", "t2", "acme", "api_request", "2026-02-10 10:30:00", {}),
    # the amend moves t5 from model gpt-4o to claude and changes its value
    (
        "a1",
        "amend",
        "t5",
        "acme",
        "completion",
        "2026-02-11 12:00:00",
        {"tokens": 200, "model": "claude"},
    ),
    # same timestamp as t12, later event_seq: it wins the `latest`
    ("t16", "record", None, "globex", "seat_snapshot", "2026-03-03 10:00:00", {"seats": 9}),
    # walk-in's only event is voided: its rows must disappear
    ("v2", "void", "t13", "walkin", "api_request", "2026-02-15 00:00:00", {}),
    (
        "t17",
        "record",
        None,
        "acme",
        "completion",
        "2026-03-10 00:00:00",
        {"tokens": 1, "model": "gpt-4o"},
    ),
    ("v3", "void", "t9", "globex", "storage_snapshot", "2026-02-28 18:30:00", {}),
    ("a2", "amend", "t10", "globex", "storage_snapshot", "2026-03-05 00:00:00", {"gb": 2}),
]


@dataclass
class Warehouse:
    path: Path
    target_path: Path
    log_path: Path
    next_seq: int = 1
    next_batch: int = 1

    def dbt(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "METERWORKS_WAREHOUSE": str(self.path)}
        result = subprocess.run(
            [
                str(DBT),
                *args,
                "--project-dir",
                str(DBT_DIR),
                "--profiles-dir",
                str(DBT_DIR),
                "--target-path",
                str(self.target_path),
                "--log-path",
                str(self.log_path),
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
        return result

    def insert_batch(self, rows: list[tuple]) -> None:
        con = connect(self.path)
        try:
            batch_id, first = self.next_batch, self.next_seq
            for tx, action, corrects, customer, event, ts, props in rows:
                con.execute(
                    """insert into raw.events values (?, ?, ?, ?, ?, ?, ?, cast(? as timestamp), ?,
                       'canonical', 'test.jsonl', ?, now()::timestamp)""",
                    [
                        self.next_seq,
                        batch_id,
                        tx,
                        action,
                        corrects,
                        customer,
                        event,
                        ts,
                        json.dumps(props),
                        self.next_seq,
                    ],
                )
                self.next_seq += 1
            con.execute(
                """insert into raw.ingest_batches values (?, now()::timestamp, now()::timestamp,
                   '[]', ?, ?, 0, 0, 0, ?, ?, ?)""",
                [
                    batch_id,
                    len(rows),
                    len(rows),
                    sum(r[1] != "record" for r in rows),
                    first,
                    self.next_seq - 1,
                ],
            )
            self.next_batch += 1
        finally:
            con.close()

    def query(self, sql: str) -> list[tuple]:
        con = connect(self.path, read_only=True)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    def snapshot(self) -> dict[str, list[tuple]]:
        return {name: sorted(self.query(f"select * from marts.{name}"), key=repr) for name in MARTS}


def totals(wh: Warehouse) -> dict[tuple, tuple]:
    rows = wh.query(
        "select customer_id, meter_code, dimensions, period_month::varchar, quantity, event_count "
        "from marts.fct_meter_totals"
    )
    return {(c, m, d, p): (q, n) for c, m, d, p, q, n in rows}


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    root = tmp_path_factory.mktemp("dbt_models")
    wh = Warehouse(
        path=root / "warehouse.duckdb", target_path=root / "target", log_path=root / "logs"
    )
    con = connect(wh.path)
    ensure_raw_schema(con)
    sync_catalog(con, CATALOG)
    con.close()
    wh.insert_batch(BATCH_1)
    wh.dbt("build")
    return wh


D = Decimal


def test_first_build_totals(warehouse: Warehouse) -> None:
    assert totals(warehouse) == {
        ("acme", "api_calls", "{}", "2026-02-01"): (D(3), 3),
        ("acme", "api_calls", "{}", "2026-03-01"): (D(1), 1),
        ("acme", "eu_calls", "{}", "2026-02-01"): (D(2), 2),
        ("acme", "eu_calls", "{}", "2026-03-01"): (D(1), 1),
        ("acme", "active_users", "{}", "2026-02-01"): (D(2), 3),
        ("acme", "active_users", "{}", "2026-03-01"): (D(1), 1),
        ("acme", "tokens", '{"model":"gpt-4o"}', "2026-02-01"): (D("150.5"), 2),
        ("acme", "tokens", '{"model":"claude"}', "2026-02-01"): (D(30), 1),
        ("globex", "storage_gb", "{}", "2026-02-01"): (D(10), 1),
        ("globex", "storage_gb", "{}", "2026-03-01"): (D(7), 2),
        ("globex", "seats", "{}", "2026-03-01"): (D(3), 2),
        ("walkin", "api_calls", "{}", "2026-02-01"): (D(1), 1),
        ("walkin", "active_users", "{}", "2026-02-01"): (D(1), 1),
        ("initech", "tokens", '{"model":null}', "2026-02-01"): (D(10), 1),
    }


def test_period_bounds_and_types(warehouse: Warehouse) -> None:
    rows = warehouse.query(
        "select customer_id, period_month::varchar, period_start::varchar, period_end::varchar, "
        "timezone from marts.fct_meter_totals where meter_code in ('api_calls', 'storage_gb') "
        "order by 1, 2"
    )
    assert (
        "acme",
        "2026-02-01",
        "2026-02-01 08:00:00",
        "2026-03-01 08:00:00",
        "America/Los_Angeles",
    ) in rows
    assert (
        "globex",
        "2026-03-01",
        "2026-02-28 18:30:00",
        "2026-03-31 18:30:00",
        "Asia/Kolkata",
    ) in rows
    assert ("walkin", "2026-02-01", "2026-02-01 00:00:00", "2026-03-01 00:00:00", "UTC") in rows
    types = dict(
        warehouse.query(
            "select table_name || '.' || column_name, data_type from information_schema.columns "
            "where table_schema = 'marts' and column_name in ('quantity', 'event_count')"
        )
    )
    for table in ("fct_usage_hourly", "fct_usage_daily", "fct_meter_totals"):
        assert types[f"{table}.quantity"] == "DECIMAL(38,9)"
        assert types[f"{table}.event_count"] == "BIGINT"


def test_local_hours_and_days(warehouse: Warehouse) -> None:
    hours = warehouse.query(
        "select usage_hour::varchar, hour_start_utc::varchar, quantity, event_count "
        "from marts.fct_usage_hourly where customer_id = 'acme' and meter_code = 'api_calls' "
        "order by 1"
    )
    assert hours == [
        ("2026-02-10 02:00:00", "2026-02-10 10:00:00", D(2), 2),
        ("2026-02-28 23:00:00", "2026-03-01 07:00:00", D(1), 1),
        ("2026-03-01 00:00:00", "2026-03-01 08:00:00", D(1), 1),
    ]
    days = warehouse.query(
        "select usage_date::varchar, quantity from marts.fct_usage_daily "
        "where customer_id = 'globex' and meter_code = 'storage_gb' order by 1"
    )
    assert days == [("2026-02-28", D(10)), ("2026-03-01", D(4)), ("2026-03-05", D(7))]
    customers = dict(warehouse.query("select customer_id, timezone from marts.dim_customers"))
    assert customers == {
        "acme": "America/Los_Angeles",
        "globex": "Asia/Kolkata",
        "initech": "UTC",
        "walkin": "UTC",
    }


def test_incremental_build_applies_corrections_and_equals_full_refresh(
    warehouse: Warehouse,
) -> None:
    warehouse.insert_batch(BATCH_2)
    warehouse.dbt("build")
    expected = {
        ("acme", "api_calls", "{}", "2026-02-01"): (D(3), 3),
        ("acme", "api_calls", "{}", "2026-03-01"): (D(1), 1),
        ("acme", "eu_calls", "{}", "2026-02-01"): (D(3), 3),
        ("acme", "eu_calls", "{}", "2026-03-01"): (D(1), 1),
        ("acme", "active_users", "{}", "2026-02-01"): (D(2), 3),
        ("acme", "active_users", "{}", "2026-03-01"): (D(1), 1),
        ("acme", "tokens", '{"model":"gpt-4o"}', "2026-02-01"): (D("50.5"), 1),
        ("acme", "tokens", '{"model":"claude"}', "2026-02-01"): (D(230), 2),
        ("acme", "tokens", '{"model":"gpt-4o"}', "2026-03-01"): (D(1), 1),
        ("globex", "storage_gb", "{}", "2026-02-01"): (D(10), 1),
        ("globex", "storage_gb", "{}", "2026-03-01"): (D(2), 1),
        ("globex", "seats", "{}", "2026-03-01"): (D(9), 3),
        ("initech", "tokens", '{"model":null}', "2026-02-01"): (D(10), 1),
    }
    assert totals(warehouse) == expected
    late_hour = warehouse.query(
        "select quantity, event_count from marts.fct_usage_hourly where customer_id = 'acme' "
        "and meter_code = 'api_calls' and usage_hour = timestamp '2026-02-10 02:00:00'"
    )
    assert late_hour == [(D(2), 2)]
    assert warehouse.query(
        "select count(*) from marts.fct_usage_daily where customer_id = 'walkin'"
    ) == [(0,)]

    incremental = warehouse.snapshot()

    # an unchanged rerun is a no-op
    warehouse.dbt("run", "--select", "marts")
    assert warehouse.snapshot() == incremental

    # `run`, not `build`: the data tests already passed on this very content
    warehouse.dbt("run", "--full-refresh")
    assert warehouse.snapshot() == incremental
    assert totals(warehouse) == expected


def test_unit_tests_pass(warehouse: Warehouse) -> None:
    result = warehouse.dbt("test", "--select", "test_type:unit")
    assert "PASS=" in result.stdout
