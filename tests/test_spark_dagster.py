"""The Dagster build job and the CLI on ``METERWORKS_ENGINE=spark``: the same command builds
the dbt project on Spark, and DuckDB readers then see Spark's tables under the same names.

Marked ``spark`` (not in the default run): it needs the ``spark`` extra and Java 17, and a full
Spark build of the demo takes many minutes on two cores. ``.venv/bin/pytest -m spark``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from meterworks.warehouse import connect

pytestmark = pytest.mark.spark

SMALL_DEMO = ["--customers", "30", "--days", "70", "--seed", "7"]
TOTALS = (
    "select customer_id, meter_code, dimensions, period_month, quantity, event_count "
    "from marts.fct_meter_totals order by all"
)


def _meterworks(home: Path, *args: str, engine: str) -> None:
    env = {**os.environ, "METERWORKS_HOME": str(home), "METERWORKS_ENGINE": engine}
    env.pop("METERWORKS_CATALOG", None)
    env["DAGSTER_HOME"] = str(home / "dagster")
    subprocess.run([sys.executable, "-m", "meterworks.cli", *args], env=env, check=True)


def test_cli_build_on_spark_serves_the_same_marts(tmp_path: Path) -> None:
    pytest.importorskip("pyspark")
    home = tmp_path / "home"
    _meterworks(home, "demo", *SMALL_DEMO, engine="duckdb")
    with connect(home / "warehouse.duckdb", read_only=True) as con:
        on_duckdb = con.execute(TOTALS).fetchall()
    assert on_duckdb

    _meterworks(home, "build", "--quiet", engine="spark")

    assert (home / "lake" / "events").is_dir()
    assert (home / "spark" / "warehouse" / "marts.db" / "fct_meter_totals").is_dir()
    with connect(home / "warehouse.duckdb", read_only=True) as con:
        kind = con.execute(
            "select table_type from information_schema.tables "
            "where table_schema = 'marts' and table_name = 'fct_meter_totals'"
        ).fetchone()
        assert kind == ("VIEW",)
        assert con.execute(TOTALS).fetchall() == on_duckdb
