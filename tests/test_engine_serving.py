"""Spark's tables served to DuckDB readers as views, and the bounded wait for the writer lock."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from meterworks.engine.serving import retry_on_lock, serve_spark_tables
from meterworks.warehouse import connect


def _spark_table(spark_warehouse: Path, schema: str, table: str, select: str) -> Path:
    """A table folder laid out like Spark's (``<schema>.db/<table>/part-*.parquet``)."""
    folder = spark_warehouse / f"{schema}.db" / table
    folder.mkdir(parents=True)
    if select:
        duckdb.sql(f"copy ({select}) to '{folder}/part-00000.parquet' (format parquet)")
    return folder


def test_spark_tables_replace_duckdb_tables_and_leave_the_rest(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    spark = tmp_path / "spark" / "warehouse"
    with connect(warehouse) as con:
        con.execute("create schema marts")
        # left by an earlier DuckDB build: replaced by Spark's table
        con.execute("create table marts.fct_meter_totals as select 'stale' as customer_id")
        # written by a Python asset, never by dbt: untouched
        con.execute("create table marts.fct_usage_anomalies as select 42 as anomaly")
    _spark_table(
        spark,
        "marts",
        "fct_meter_totals",
        "select * from (values ('acme', 3.5::decimal(38, 9)), ('globex', 1)) t(customer_id, quantity)",
    )
    _spark_table(spark, "staging", "stg_stripe__customers", "select 'cus_1' as stripe_customer_id")
    _spark_table(spark, "marts", "fct_mrr", "")  # created, nothing written yet

    served = serve_spark_tables(warehouse, spark)

    assert sorted(served.views) == ["marts.fct_meter_totals", "staging.stg_stripe__customers"]
    assert served.skipped == ["marts.fct_mrr"]
    with connect(warehouse, read_only=True) as con:
        assert con.execute(
            "select customer_id, quantity from marts.fct_meter_totals order by 1"
        ).fetchall() == [("acme", 3.5), ("globex", 1)]
        kinds = dict(
            con.execute(
                "select table_schema || '.' || table_name, table_type "
                "from information_schema.tables where table_schema in ('marts', 'staging')"
            ).fetchall()
        )
        assert kinds == {
            "marts.fct_meter_totals": "VIEW",
            "marts.fct_usage_anomalies": "BASE TABLE",
            "staging.stg_stripe__customers": "VIEW",
        }
        assert con.execute("select anomaly from marts.fct_usage_anomalies").fetchall() == [(42,)]

    # a later Spark build rewrites its files: the view reads the new ones, no re-registration
    folder = spark / "marts.db" / "fct_meter_totals"
    for old in folder.glob("*.parquet"):
        old.unlink()
    duckdb.sql(
        f"copy (select 'initech' as customer_id, 7::decimal(38, 9) as quantity) "
        f"to '{folder}/part-00001.parquet' (format parquet)"
    )
    with connect(warehouse, read_only=True) as con:
        assert con.execute("select * from marts.fct_meter_totals").fetchall() == [("initech", 7)]


def test_no_spark_tables_leaves_the_warehouse_alone(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    served = serve_spark_tables(warehouse, tmp_path / "nothing")
    assert served.views == [] and served.skipped == []
    assert not warehouse.exists()


_HOLD_LOCK = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def _hold_lock(warehouse: Path, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(warehouse), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_retry_on_lock_waits_for_the_writer_and_gives_up_after_the_timeout(
    tmp_path: Path,
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    connect(warehouse).close()

    holder = _hold_lock(warehouse, 1.5)
    try:
        began = time.monotonic()
        con = retry_on_lock(lambda: connect(warehouse), timeout_s=30)
        waited = time.monotonic() - began
        con.close()
        assert 0.5 < waited < 30
    finally:
        holder.wait(timeout=30)

    holder = _hold_lock(warehouse, 10)
    try:
        with pytest.raises(duckdb.IOException, match=r"(?i)lock"):
            retry_on_lock(lambda: connect(warehouse), timeout_s=0.5)
    finally:
        holder.kill()
        holder.wait(timeout=30)
