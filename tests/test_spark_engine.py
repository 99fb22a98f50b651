"""dbt on Apache Spark: the lake export, and the demo built on Spark equal to DuckDB row for row.

The fast tests (lake export, comparison helper) need only DuckDB. The end-to-end test is marked
``spark`` (not in the default run): it needs the ``spark`` extra (dbt-spark, pyspark) and Java 17,
and takes several minutes on two cores. CI: ``.venv/bin/pytest -m spark``.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from meterworks.engine import dbt_target, engine
from meterworks.engine.compare import compare_table
from meterworks.engine.lake import LAKE_TABLES, export_lake
from meterworks.warehouse import connect, ensure_raw_schema

REPO = Path(__file__).resolve().parent.parent
SMALL_DEMO = ["--customers", "30", "--days", "70", "--seed", "7"]
#: Every model runs on Spark, the metering models included. True would stand the DuckDB
#: metering tables in (scripts/spark/compare_engines.py --metering-from-duckdb), to tell a
#: metering difference from one downstream.
METERING_FROM_DUCKDB = False


def _insert_events(con: duckdb.DuckDBPyConnection, batch_id: int, seqs: range, day: str) -> None:
    con.execute(
        "insert into raw.ingest_batches values (?, now(), now(), '[]', ?, ?, 0, 0, 0, 0, ?, ?)",
        [batch_id, len(seqs), len(seqs), seqs.start, seqs.stop - 1],
    )
    for seq in seqs:
        con.execute(
            "insert into raw.events values (?, ?, ?, 'record', null, 'acme', 'api_request', "
            "cast(? as timestamp) + to_seconds(?), '{}', 'canonical', 'f.jsonl', ?, now())",
            [seq, batch_id, f"t{seq}", day, seq, seq],
        )


def _lake_events(lake: Path) -> list[tuple]:
    return duckdb.sql(
        f"select event_seq, batch_id, event_ts, event_date from read_parquet('{lake}/events/**/*.parquet', "
        "hive_partitioning = true) order by event_seq"
    ).fetchall()


def test_engine_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("METERWORKS_ENGINE", raising=False)
    monkeypatch.delenv("METERWORKS_DBT_TARGET", raising=False)
    assert engine() == "duckdb" and dbt_target() == "duckdb"
    monkeypatch.setenv("METERWORKS_ENGINE", "Spark")
    assert engine() == "spark" and dbt_target() == "spark"
    monkeypatch.setenv("METERWORKS_DBT_TARGET", "spark_thrift")
    assert dbt_target() == "spark_thrift"
    monkeypatch.setenv("METERWORKS_ENGINE", "clickhouse")
    with pytest.raises(ValueError, match="METERWORKS_ENGINE"):
        engine()


def test_lake_export_is_incremental_and_survives_a_crashed_export(tmp_path: Path) -> None:
    warehouse, lake = tmp_path / "w.duckdb", tmp_path / "lake"
    with connect(warehouse) as con:
        ensure_raw_schema(con)
    first = export_lake(warehouse, lake)  # empty store: every table readable, no events
    assert set(first.tables) == set(LAKE_TABLES) and first.tables["events"] == 0
    assert _lake_events(lake) == []

    with connect(warehouse) as con:
        _insert_events(con, 1, range(1, 4), "2026-03-01 23:59:58")  # spans two UTC dates
    assert export_lake(warehouse, lake).tables["events"] == 3
    rows = _lake_events(lake)
    assert [r[0] for r in rows] == [1, 2, 3]
    assert {str(r[3]) for r in rows} == {"2026-03-01", "2026-03-02"}
    assert rows[0][2].isoformat() == "2026-03-01T23:59:59+00:00"  # naive UTC in, same instant out

    # an export that crashed after writing batch 2's files but before recording it
    with connect(warehouse) as con:
        _insert_events(con, 2, range(4, 6), "2026-03-05 10:00:00")
    stray = lake / "events" / "event_date=2026-03-05"
    stray.mkdir()
    shutil.copy(
        next((lake / "events").rglob("events-b*.parquet")),
        stray / "events-b000000000002-000000000002_0.parquet",
    )
    again = export_lake(warehouse, lake)
    assert again.tables["events"] == 2 and again.batches == (2, 2)
    assert [r[0] for r in _lake_events(lake)] == [1, 2, 3, 4, 5]
    assert export_lake(warehouse, lake).tables["events"] == 0  # nothing new: nothing written

    full = export_lake(warehouse, lake, full=True)
    assert full.tables["events"] == 5 and [r[0] for r in _lake_events(lake)] == [1, 2, 3, 4, 5]


def test_compare_table_is_exact_and_order_free(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    spark_wh = tmp_path / "spark"
    folder = spark_wh / "marts.db" / "t"
    folder.mkdir(parents=True)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema marts")
        con.execute(
            "create table marts.t as select * from (values (1, 1.50::decimal(38, 9), 'a'), "
            "(2, 2.000000001::decimal(38, 9), 'b')) v(id, q, s)"
        )
        con.execute(
            "copy (select * from (values (2, 2.000000001::decimal(20, 9), 'b'), "
            f"(1, 1.5::decimal(18, 2), 'a')) v(id, q, s)) to '{folder}/p.parquet'"
        )
    assert compare_table(warehouse, spark_wh, "t").equal
    with duckdb.connect(str(warehouse)) as con:
        con.execute("update marts.t set q = 2.000000002 where id = 2")
    diff = compare_table(warehouse, spark_wh, "t")
    assert not diff.equal and diff.only_duckdb == 1 and diff.only_spark == 1


@pytest.mark.spark
@pytest.mark.timeout(3900)  # the whole demo on both engines: 10-25 min on two busy cores
def test_spark_build_of_the_demo_equals_duckdb(tmp_path: Path) -> None:
    if (
        importlib.util.find_spec("pyspark") is None
        or importlib.util.find_spec("dbt.adapters.spark") is None
    ):
        pytest.skip("the spark extra is not installed (pip install -e .[spark])")
    if shutil.which("java") is None:
        pytest.skip("no Java runtime (Spark needs Java 17)")
    cmd = [
        sys.executable,
        str(REPO / "scripts" / "spark" / "compare_engines.py"),
        "--home",
        str(tmp_path / "home"),
        *SMALL_DEMO,
    ]
    if METERING_FROM_DUCKDB:
        cmd.append("--metering-from-duckdb")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-6000:] + proc.stdout[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["ok"] and not result["missing"]
    metering = (
        () if METERING_FROM_DUCKDB else ("fct_usage_hourly", "fct_usage_daily", "fct_meter_totals")
    )
    for mart in (
        *metering,
        "dim_customers",
        "fct_projected_invoice",
        "fct_invoice_reconciliation",
        "fct_mrr",
        "fct_mrr_movements",
    ):
        assert result["tables"][f"marts.{mart}"]["equal"]
