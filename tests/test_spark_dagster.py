"""The Dagster build job and the CLI on ``METERWORKS_ENGINE=spark``: the same command builds
the dbt project on Spark, and DuckDB readers then see Spark's tables under the same names.

Marked ``spark`` (not in the default run): it needs the ``spark`` extra and Java 17, and a full
Spark build of the demo takes many minutes on two cores. ``.venv/bin/pytest -m spark``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from meterworks.config import DBT_EXECUTABLE, DBT_PROJECT_DIR
from meterworks.engine.compare import MARTS, compare_table
from meterworks.warehouse import connect

pytestmark = pytest.mark.spark

SMALL_DEMO = ["--customers", "30", "--days", "70", "--seed", "7"]
TOTALS = (
    "select customer_id, meter_code, dimensions, period_month, quantity, event_count "
    "from marts.fct_meter_totals order by all"
)
#: The models that read the build instant (``meterworks.as_of()``, the dbt invocation's start
#: when no ``as_of`` var is given): the DuckDB reference rebuilds them at the instant Spark used.
AS_OF_MODELS = ["fct_projected_invoice+", "int_mrr_subscription_months+", "fct_mrr+"]


def _meterworks(home: Path, *args: str, engine: str) -> None:
    env = {**os.environ, "METERWORKS_HOME": str(home), "METERWORKS_ENGINE": engine}
    env.pop("METERWORKS_CATALOG", None)
    env["DAGSTER_HOME"] = str(home / "dagster")
    subprocess.run([sys.executable, "-m", "meterworks.cli", *args], env=env, check=True)


def _rebuild_at(warehouse: Path, as_of: str, scratch: Path) -> None:
    """Rebuild the ``as_of``-dependent models of a DuckDB warehouse at a fixed instant."""
    env = {**os.environ, "METERWORKS_WAREHOUSE": str(warehouse)}
    subprocess.run(
        [DBT_EXECUTABLE, "run", "--select", *AS_OF_MODELS, "--vars", json.dumps({"as_of": as_of}),
         "--target", "duckdb", "--project-dir", str(DBT_PROJECT_DIR),
         "--profiles-dir", str(DBT_PROJECT_DIR), "--target-path", str(scratch / "target"),
         "--log-path", str(scratch / "logs"), "--quiet"],
        env=env, check=True, cwd=DBT_PROJECT_DIR,
    )  # fmt: skip


@pytest.mark.timeout(3900)  # the demo, then the whole build on Spark: 10-25 min on two busy cores
def test_cli_build_on_spark_serves_the_same_marts(tmp_path: Path) -> None:
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("no Java runtime (Spark needs Java 17)")
    home = tmp_path / "home"
    _meterworks(home, "demo", *SMALL_DEMO, engine="duckdb")
    # the DuckDB build, kept apart: the Spark build replaces the marts by views over its files
    reference = tmp_path / "reference.duckdb"
    shutil.copyfile(home / "warehouse.duckdb", reference)
    with connect(reference, read_only=True) as con:
        on_duckdb = con.execute(TOTALS).fetchall()
    assert on_duckdb

    _meterworks(home, "build", "--quiet", engine="spark")

    spark_warehouse = home / "spark" / "warehouse"
    assert (home / "lake" / "events").is_dir()
    for mart in MARTS:
        assert (spark_warehouse / "marts.db" / mart).is_dir(), mart
    with connect(home / "warehouse.duckdb", read_only=True) as con:
        kinds = dict(
            con.execute(
                "select table_name, table_type from information_schema.tables "
                "where table_schema = 'marts'"
            ).fetchall()
        )
        assert {mart: kinds.get(mart) for mart in MARTS} == dict.fromkeys(MARTS, "VIEW")
        assert con.execute(TOTALS).fetchall() == on_duckdb
        (as_of,) = con.execute("select max(as_of) from marts.fct_projected_invoice").fetchone()
    assert as_of is not None

    # every mart Spark built equals DuckDB's, row for row, at the instant Spark projected at;
    # the app's snapshot (published by the same job, from the served views) holds the same rows
    _rebuild_at(reference, as_of.strftime("%Y-%m-%d %H:%M:%S.%f"), tmp_path / "duckdb-dbt")
    snapshot = home / "snapshot.duckdb"
    for mart in MARTS:
        diff = compare_table(reference, spark_warehouse, mart)
        assert diff.equal and diff.duckdb_rows, diff.describe()
        served = compare_table(snapshot, spark_warehouse, mart)
        assert served.equal and served.duckdb_rows == diff.duckdb_rows, served.describe()
