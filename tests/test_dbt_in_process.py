"""dbt in the step's process (``dagster_project/defs/transform/dbt_in_process.py``): the same
assets, checks, totals and failures as the ``dbt`` subprocess, and the warehouse is free
for other processes as soon as the build is done."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster_dbt.errors import DagsterDbtCliRuntimeError

from meterworks.catalog import load_catalog
from meterworks.config import DBT_EXECUTABLE, settings
from meterworks.ingest import ingest_files
from meterworks.jobs import run_job
from meterworks.warehouse import open_warehouse

CATALOG = {
    "meters": [
        {"code": "api_calls", "event": "api_request", "aggregation": "count"},
        {
            "code": "tokens",
            "event": "completion",
            "aggregation": "sum",
            "property": "tokens",
            "group_by": ["model"],
        },
    ],
    "customers": [{"id": "acme", "timezone": "Europe/Berlin"}, {"id": "globex"}],
}


def _events(now: datetime) -> list[dict]:
    events = []
    for i in range(40):
        customer = "acme" if i % 3 else "globex"
        ts = (now - timedelta(hours=i)).isoformat()
        events.append(
            {"transaction_id": f"a{i}", "customer_id": customer, "event": "api_request",
             "timestamp": ts}
        )  # fmt: skip
        events.append(
            {"transaction_id": f"c{i}", "customer_id": customer, "event": "completion",
             "timestamp": ts, "properties": {"tokens": 10 * i + 1, "model": f"m{i % 2}"}}
        )  # fmt: skip
    return events


def _ingested_home(home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    (home / "catalog.yml").write_text(yaml.safe_dump(CATALOG))
    batch = home / "events.jsonl"
    batch.write_text("\n".join(json.dumps(e) for e in _events(datetime.now(UTC))) + "\n")
    ingest_files(settings(home).warehouse, [batch], load_catalog(home / "catalog.yml"))
    return home


def _outcome(result) -> tuple[set[str], dict[str, bool]]:
    """Assets materialized and check results of a finished run."""
    materialized = {event.asset_key.path[-1] for event in result.get_asset_materialization_events()}
    checks = {
        event.event_specific_data.asset_check_key.name: event.event_specific_data.passed
        for event in result.all_events
        if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    }
    return materialized, checks


def _totals(home: Path) -> list[tuple]:
    with open_warehouse(settings(home).warehouse, read_only=True) as con:
        return con.execute(
            "select customer_id, meter_code, dimensions, period_month, quantity, event_count "
            "from marts.fct_meter_totals order by all"
        ).fetchall()


def test_in_process_build_equals_the_subprocess_build(home, dbt_manifest, monkeypatch) -> None:
    _ingested_home(home)
    monkeypatch.setenv("METERWORKS_DBT_IN_PROCESS", "1")
    in_process = run_job(settings(home), "meterworks_usage_build")
    assert in_process.success
    with dg.DagsterInstance.get() as instance:
        logs = [
            entry.user_message
            for entry in instance.all_logs(in_process.run_id)
            if "Running dbt" in entry.user_message
        ]
    assert len(logs) == 2 and all("in-process" in message for message in logs)
    in_process_totals = _totals(home)

    monkeypatch.setenv("METERWORKS_DBT_IN_PROCESS", "0")
    subprocess_run = run_job(settings(home), "meterworks_usage_build", {})
    assert subprocess_run.success

    materialized, checks = _outcome(in_process)
    assert {"stg_meterworks__events", "fct_usage_daily", "fct_meter_totals",
            "fct_usage_hourly"} <= materialized  # fmt: skip
    assert checks and all(checks.values())
    assert (materialized, checks) == _outcome(subprocess_run)
    assert _totals(home) == in_process_totals
    # 40 api calls and 40 completions over ~2 days: both customers have usage
    assert sum(row[5] for row in in_process_totals) == 80
    assert {(row[0], row[1]) for row in in_process_totals} == {
        ("acme", "api_calls"), ("acme", "tokens"), ("globex", "api_calls"), ("globex", "tokens"),
    }  # fmt: skip


def test_the_warehouse_is_free_for_other_processes_after_an_in_process_build(
    home, dbt_manifest, monkeypatch
) -> None:
    """dbt-duckdb keeps its DuckDB database open between invocations; a long-lived process
    (a run worker, the benchmark, ``meterworks dev``) must not hold the file afterwards."""
    _ingested_home(home)
    monkeypatch.setenv("METERWORKS_DBT_IN_PROCESS", "1")
    assert run_job(settings(home), "meterworks_usage_build").success
    writer = (
        "import duckdb, sys; con = duckdb.connect(sys.argv[1]); "
        "con.execute('create table raw.written_elsewhere as select 1 as x'); con.close()"
    )
    done = subprocess.run(
        [sys.executable, "-c", writer, str(settings(home).warehouse)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture
def dbt_resource(dbt_manifest, home, monkeypatch):
    from dagster_project.defs.transform.dbt_resource import MeterworksDbtCliResource
    from dagster_project.defs.transform.project import meterworks_dbt_project

    monkeypatch.setenv("METERWORKS_DBT_IN_PROCESS", "1")
    monkeypatch.setenv("METERWORKS_WAREHOUSE", str(settings(home).warehouse))
    return MeterworksDbtCliResource(
        project_dir=meterworks_dbt_project, dbt_executable=DBT_EXECUTABLE
    )


def test_a_dbt_error_fails_with_dbt_s_message_and_no_secret(
    dbt_resource, tmp_path, monkeypatch, capsys
) -> None:
    """dbt's error reaches the step failure as the CLI's would, scrubbed of secrets as dbt's
    own JSON log is (``DBT_ENV_SECRET_*`` values)."""
    secret = "s3cr3t-value-42"
    monkeypatch.setenv("DBT_ENV_SECRET_TOKEN", secret)
    # the profile reads the warehouse path from the environment: a folder that does not exist
    monkeypatch.setenv("METERWORKS_WAREHOUSE", str(tmp_path / secret / "warehouse.duckdb"))
    invocation = dbt_resource.cli(
        ["run", "--select", "stg_meterworks__customers"], target_path=tmp_path / "t"
    )
    with pytest.raises(DagsterDbtCliRuntimeError) as failed:
        invocation.wait()
    assert invocation.process.returncode == 2
    message = str(failed.value)
    assert "Cannot open file" in message and "*****" in message
    # dbt logged the error itself: the runner does not report it a second time
    assert invocation._error_messages[0].startswith("Encountered an error")
    assert all(
        error.startswith(("Encountered an error", "Traceback"))
        for error in invocation._error_messages
    )
    assert secret not in message
    assert secret not in capsys.readouterr().out
    # dbt's debug log is written beside the invocation's artifacts, as by the CLI
    debug_log = (tmp_path / "t" / "dbt.log").read_text()
    assert '"level": "debug"' in debug_log and "Cannot open file" in debug_log
    assert secret not in debug_log


def test_a_usage_error_is_reported_not_raised_from_the_thread(dbt_resource, tmp_path) -> None:
    invocation = dbt_resource.cli(["build", "--no-such-flag"], target_path=tmp_path / "t")
    assert not invocation.is_successful()
    assert invocation.process.returncode == 2
    assert "no-such-flag" in str(invocation.get_error())


def test_spark_and_the_switch_use_the_subprocess(monkeypatch) -> None:
    from dagster_project.defs.transform.dbt_resource import dbt_in_process

    monkeypatch.delenv("METERWORKS_DBT_IN_PROCESS", raising=False)
    monkeypatch.delenv("METERWORKS_ENGINE", raising=False)
    assert dbt_in_process()
    for off in ("0", "false", "NO"):
        monkeypatch.setenv("METERWORKS_DBT_IN_PROCESS", off)
        assert not dbt_in_process()
    monkeypatch.setenv("METERWORKS_DBT_IN_PROCESS", "1")
    monkeypatch.setenv("METERWORKS_ENGINE", "spark")
    assert not dbt_in_process()
