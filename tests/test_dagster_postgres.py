"""Production Dagster (deploy/dagster.yaml) on a real PostgreSQL: the instance it configures, a
scheduled run and sensor ticks recorded in PostgreSQL, and ``dagster-daemon`` enforcing the
warehouse run limit.

Needs ``METERWORKS_TEST_POSTGRES_URL`` (``eval "$(scripts/ci/start-postgres.sh)"``; .ci/run
starts it). Each test module run gets a database of its own (or, without CREATEDB, a schema of
its own in the given database), dropped afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import psycopg
import pytest
import yaml
from sqlalchemy.engine import make_url

from dagster_project.defs.pipeline import (
    DBT_POOL,
    DUCKDB_POOL,
    SPARK_MAX_CONCURRENT,
    WAREHOUSE_TAG,
    warehouse_executor,
    warehouse_run_tags,
)
from meterworks.warehouse import open_warehouse

POSTGRES_URL = os.environ.get("METERWORKS_TEST_POSTGRES_URL")
needs_postgres = pytest.mark.skipif(
    not POSTGRES_URL,
    reason='METERWORKS_TEST_POSTGRES_URL unset: eval "$(scripts/ci/start-postgres.sh)" first',
)

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"

#: every job that opens the DuckDB warehouse (defs/pipeline.py tags them)
WAREHOUSE_JOBS = (
    "meterworks_pipeline",
    "meterworks_build",
    "meterworks_usage_pipeline",
    "meterworks_usage_build",
    "meterworks_ingest",
    "meterworks_stripe_sync",
    "meterworks_mrr_report",
)
CATALOG = {
    "meters": [{"code": "api_calls", "event": "api_request", "aggregation": "count"}],
    "customers": [{"id": "acme"}, {"id": "globex"}],
}


# --------------------------------------------------------------------------- fixtures


def _admin(url) -> psycopg.Connection:
    return psycopg.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        password=url.password or None,
        dbname=url.database,
        autocommit=True,
    )


@pytest.fixture(scope="module")
def pg_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A fresh database (or schema) and a DAGSTER_HOME holding deploy/dagster.yaml as it is,
    its DAGSTER_PG_* variables set from the test URL."""
    url = make_url(POSTGRES_URL)
    name = f"dagster_{uuid.uuid4().hex[:10]}"
    env = {
        "DAGSTER_PG_HOST": url.host or "127.0.0.1",
        "DAGSTER_PG_PORT": str(url.port or 5432),
        "DAGSTER_PG_USER": url.username or "",
        "DAGSTER_PG_PASSWORD": url.password or "",
        "DAGSTER_PG_DB": name,
    }
    home = tmp_path_factory.mktemp("dagster_home")
    config = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    with _admin(url) as admin:
        try:
            admin.execute(f'create database "{name}"')
            schema = None
        except psycopg.errors.InsufficientPrivilege:
            # no CREATEDB: a schema of our own in the given database, through search_path
            schema = name
            admin.execute(f'create schema "{schema}"')
            env["DAGSTER_PG_DB"] = url.database
            config["storage"]["postgres"]["postgres_db"]["params"] = {
                "options": f"-csearch_path={schema}"
            }
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    env["DAGSTER_HOME"] = str(home)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        yield {**env, "search_path": schema or ""}
    with _admin(url) as admin:
        if schema:
            admin.execute(f'drop schema "{schema}" cascade')
        else:
            admin.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="module")
def instance(pg_env: dict[str, str]) -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.from_config(pg_env["DAGSTER_HOME"]) as instance:
        yield instance


@pytest.fixture(scope="module")
def definitions(dbt_manifest: Path) -> dg.Definitions:
    from meterworks.jobs import load_definitions

    return load_definitions()


@pytest.fixture
def pg_sql(pg_env: dict[str, str]) -> Callable[..., list[tuple]]:
    """Run a query straight against Dagster's PostgreSQL tables."""

    def query(sql: str, *params: object) -> list[tuple]:
        search_path = pg_env["search_path"]
        with psycopg.connect(
            host=pg_env["DAGSTER_PG_HOST"],
            port=int(pg_env["DAGSTER_PG_PORT"]),
            user=pg_env["DAGSTER_PG_USER"],
            password=pg_env["DAGSTER_PG_PASSWORD"] or None,
            dbname=pg_env["DAGSTER_PG_DB"],
            options=f"-csearch_path={search_path}" if search_path else None,
        ) as con:
            return con.execute(sql, params).fetchall()

    return query


def make_home(root: Path, monkeypatch: pytest.MonkeyPatch, catalog: dict | None = None) -> Path:
    home = root / "home"
    (home / "inbox").mkdir(parents=True)
    (home / "catalog.yml").write_text(yaml.safe_dump(catalog or CATALOG))
    monkeypatch.setenv("METERWORKS_HOME", str(home))
    monkeypatch.setenv("METERWORKS_WAREHOUSE", str(home / "warehouse.duckdb"))
    monkeypatch.delenv("METERWORKS_CATALOG", raising=False)
    monkeypatch.delenv("METERWORKS_STATE_URL", raising=False)
    monkeypatch.delenv("SVIX_AUTH_TOKEN", raising=False)
    return home


def drop_events(home: Path, per_customer: dict[str, int]) -> Path:
    """A settled JSONL file of recent api_request events in the inbox."""
    now = datetime.now(UTC)
    lines = [
        json.dumps(
            {
                "transaction_id": f"{customer}-{i}",
                "customer_id": customer,
                "event": "api_request",
                "timestamp": (now - timedelta(minutes=10 + i)).isoformat(),
            }
        )
        for customer, n in per_customer.items()
        for i in range(n)
    ]
    path = home / "inbox" / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    settled = time.time() - 60
    os.utime(path, (settled, settled))
    return path


# --------------------------------------------------------------------------- the instance


@needs_postgres
def test_instance_is_postgres_with_the_warehouse_limits(instance, definitions) -> None:
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_postgres import (
        PostgresEventLogStorage,
        PostgresRunStorage,
        PostgresScheduleStorage,
    )

    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
    assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
    assert not instance.telemetry_enabled

    concurrency = instance.get_concurrency_config()
    limits = concurrency.run_queue_config.tag_concurrency_limits
    assert {"key": WAREHOUSE_TAG, "value": "write", "limit": 1} in limits
    assert concurrency.pool_config.default_pool_limit == 1

    # on DuckDB (the default) every warehouse job is a "write" run, one step at a time
    for name in WAREHOUSE_JOBS:
        job = definitions.resolve_job_def(name)
        assert job.tags[WAREHOUSE_TAG] == "write", name
        config = job.executor_def.config_schema.resolve_config({}).value["config"]
        assert config["max_concurrent"] == 1, name
    # the delivery pass never opens the warehouse: it runs beside a build
    delivery = definitions.resolve_job_def("meterworks_webhook_delivery")
    assert WAREHOUSE_TAG not in delivery.tags

    # on Spark the run limit lifts (the tag no longer matches) and steps run side by side
    spark_tags = warehouse_run_tags("spark")
    assert not any(
        limit["key"] == WAREHOUSE_TAG and limit.get("value") == spark_tags[WAREHOUSE_TAG]
        for limit in limits
    )
    spark = warehouse_executor("spark").config_schema.resolve_config({}).value["config"]
    assert spark["max_concurrent"] == SPARK_MAX_CONCURRENT > 1
    assert DBT_POOL != DUCKDB_POOL


def test_the_sample_config_parses_and_the_workspace_names_the_code_location() -> None:
    config = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    assert set(config["storage"]["postgres"]["postgres_db"]) >= {
        "hostname",
        "port",
        "username",
        "password",
        "db_name",
    }
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    [entry] = workspace["load_from"]
    assert entry["python_module"]["module_name"] == "dagster_project.definitions"


# --------------------------------------------------------------------------- a scheduled run


@needs_postgres
def test_hourly_schedule_tick_runs_the_pipeline_into_postgres(
    instance, definitions, pg_sql, tmp_path, monkeypatch
) -> None:
    home = make_home(tmp_path, monkeypatch)
    drop_events(home, {"acme": 3, "globex": 2})

    schedule = definitions.get_schedule_def("hourly_pipeline")
    context = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=datetime(2026, 12, 1, 10, 7, tzinfo=UTC)
    )
    [request] = schedule.evaluate_tick(context).run_requests
    assert request.tags["dagster/schedule_name"] == "hourly_pipeline"

    job = definitions.resolve_job_def(schedule.job_name)
    result = job.execute_in_process(
        instance=instance, run_config=request.run_config, tags=request.tags
    )
    assert result.success

    # the run, its tags and its materializations, read back from PostgreSQL's own tables
    [(status, job_name)] = pg_sql(
        "select status, pipeline_name from runs where run_id = %s", result.run_id
    )
    assert (status, job_name) == ("SUCCESS", "meterworks_pipeline")
    tags = dict(pg_sql("select key, value from run_tags where run_id = %s", result.run_id))
    assert tags[WAREHOUSE_TAG] == "write"
    assert tags["dagster/schedule_name"] == "hourly_pipeline"
    materialized = {
        json.loads(key)[-1]
        for (key,) in pg_sql(
            "select asset_key from event_logs where run_id = %s "
            "and dagster_event_type = 'ASSET_MATERIALIZATION'",
            result.run_id,
        )
    }
    assert {"raw_events", "fct_meter_totals", "fct_mrr", "app_snapshot"} <= materialized

    event = instance.get_latest_materialization_event(dg.AssetKey("raw_events"))
    assert event.run_id == result.run_id
    assert event.asset_materialization.metadata["accepted"].value == 5
    with open_warehouse(home / "warehouse.duckdb", read_only=True) as con:
        totals = dict(
            con.execute(
                "select customer_id, sum(event_count)::bigint from marts.fct_meter_totals "
                "group by all"
            ).fetchall()
        )
    assert totals == {"acme": 3, "globex": 2}


# --------------------------------------------------------------------------- sensor ticks


@needs_postgres
def test_sensor_ticks_against_the_postgres_instance(
    instance, definitions, tmp_path, monkeypatch
) -> None:
    from dagster_project.defs.webhooks.sensors import webhook_delivery_sensor

    home = make_home(tmp_path, monkeypatch)
    drop_events(home, {"acme": 2})

    inbox = definitions.get_sensor_def("inbox_sensor")
    tick = inbox.evaluate_tick(dg.build_sensor_context(instance=instance))
    [request] = tick.run_requests
    assert tick.cursor == request.run_key
    assert request.tags["meterworks/trigger"] == "inbox"
    paths = request.run_config["ops"]["raw_event_store"]["config"]["paths"]
    assert paths == [str(home / "inbox" / "events.jsonl")]
    # the same files never trigger twice
    again = inbox.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=tick.cursor))
    assert not again.run_requests and "already triggered" in again.skip_message

    # the delivery sensor asks PostgreSQL's run storage whether a pass is already going
    from meterworks.webhooks import DeliveryStore

    delivery = definitions.resolve_job_def("meterworks_webhook_delivery")
    going = instance.create_run_for_job(delivery, status=dg.DagsterRunStatus.STARTED)
    try:
        monkeypatch.setattr(DeliveryStore, "due_count", lambda self, now: 3)
        result = webhook_delivery_sensor(dg.build_sensor_context(instance=instance))
        assert result.skip_reason.skip_message == "3 due; a delivery run is already going"
    finally:
        instance.report_run_canceled(going)
    [request] = webhook_delivery_sensor(dg.build_sensor_context(instance=instance)).run_requests
    assert request.tags["meterworks/webhooks_due"] == "3"


# --------------------------------------------------------------------------- the daemon


def _runs(instance: dg.DagsterInstance, sensor: str) -> list[dg.DagsterRun]:
    return list(instance.get_runs(filters=dg.RunsFilter(tags={"dagster/sensor_name": sensor})))


def _tick_name(body: dict) -> str:
    """The sensor or schedule name in a stored tick (serialized as ``job_name``)."""
    return body.get("instigator_name") or body.get("job_name") or ""


def _wait(predicate: Callable[[], bool], seconds: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(1)
    tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
    pytest.fail(f"dagster-daemon: {what} within {seconds:.0f} s\n{tail}")


@needs_postgres
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_daemon_ticks_sensors_and_holds_the_warehouse_queue(
    instance, definitions, pg_sql, tmp_path, monkeypatch
) -> None:
    """``dagster-daemon run -w deploy/workspace.yaml`` on the PostgreSQL instance: both sensors
    tick; the webhook delivery run is launched and delivers while a warehouse run is in
    progress; the inbox sensor's warehouse run waits in the queue until that run ends.
    (~90 s on a busy 2-core machine: the daemon, the code server, a run worker and its step
    process each load the code location; hence ``slow``.)"""
    from dagster_project.defs.resources import MeterworksResource
    from dagster_project.defs.webhooks.assets import webhook_messages
    from meterworks.webhooks import DeliveryStore, state_url
    from tests.webhook_fixtures import build_alert_warehouse
    from tests.webhook_receiver import WebhookReceiver

    customers = ["acme", "globex"]
    with WebhookReceiver() as rx:
        catalog = {
            **CATALOG,
            "customers": [{"id": c, "webhook_url": f"{rx.base_url}/{c}"} for c in customers],
        }
        home = make_home(tmp_path, monkeypatch, catalog)
        build_alert_warehouse(home / "warehouse.duckdb", customers)
        resource = MeterworksResource(home=str(home), catalog_path=str(home / "catalog.yml"))
        result = dg.materialize(
            [webhook_messages], resources={"meterworks": resource}, instance=instance
        )
        queued = result.asset_materializations_for_node("webhook_messages")[0].metadata
        messages = queued["messages_added"].value
        assert messages > 0
        store = DeliveryStore.open(state_url(home))
        for endpoint in store.list_endpoints():
            rx.add_endpoint(f"/{endpoint.customer_id}", store.endpoint_secret(endpoint.endpoint_id))
        store.close()
        drop_events(home, {"acme": 2})

        # a warehouse run in progress (as if a build had started): the queue must hold others
        holder = instance.create_run_for_job(
            definitions.resolve_job_def("meterworks_ingest"),
            status=dg.DagsterRunStatus.STARTED,
            tags={WAREHOUSE_TAG: "write"},
        )
        log = tmp_path / "daemon.log"
        daemon_bin = Path(sys.executable).with_name("dagster-daemon")
        with log.open("wb") as out:
            daemon = subprocess.Popen(
                [str(daemon_bin), "run", "-w", str(DEPLOY / "workspace.yaml")],
                cwd=REPO,
                env=os.environ.copy(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:

            def delivered() -> bool:
                runs = _runs(instance, "webhook_delivery_sensor")
                if runs and runs[0].status == dg.DagsterRunStatus.FAILURE:
                    pytest.fail(f"delivery run failed\n{log.read_text(errors='replace')[-4000:]}")
                return bool(runs) and runs[0].status == dg.DagsterRunStatus.SUCCESS

            _wait(delivered, 200, "the delivery run did not succeed", log)
            assert rx.total() == messages and not any(rx.rejected.values())

            # the inbox sensor asked for a warehouse run; the queue holds it behind `holder`
            _wait(lambda: bool(_runs(instance, "inbox_sensor")), 60, "no inbox run", log)
            [waiting] = _runs(instance, "inbox_sensor")
            assert waiting.tags[WAREHOUSE_TAG] == "write"
            assert instance.get_run_by_id(waiting.run_id).status == dg.DagsterRunStatus.QUEUED
            ticks = {
                (_tick_name(json.loads(body)), status)
                for status, body in pg_sql("select status, tick_body from job_ticks")
            }
            assert {("inbox_sensor", "SUCCESS"), ("webhook_delivery_sensor", "SUCCESS")} <= ticks

            # once the warehouse is free, the daemon launches it
            instance.report_run_canceled(holder)
            _wait(
                lambda: instance.get_run_by_id(waiting.run_id).status != dg.DagsterRunStatus.QUEUED,
                60,
                "the queued warehouse run was not launched",
                log,
            )
        finally:
            os.killpg(daemon.pid, signal.SIGTERM)
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(daemon.pid, signal.SIGKILL)
                daemon.wait(timeout=10)
