"""Jobs and the schedule that tie ingestion and transformation together."""

from __future__ import annotations

import os

import dagster as dg

from dagster_project.defs.concurrency import DBT_POOL, DUCKDB_POOL  # noqa: F401 (re-export)
from dagster_project.defs.ingest.assets import CATALOG_ASSETS, RAW_ASSETS
from dagster_project.defs.transform.build_config import dbt_run_config

#: Run tag of every job that opens the DuckDB warehouse. ``deploy/dagster.yaml`` lets one run
#: tagged ``write`` be in progress at a time: DuckDB is one writer (or many readers) *across
#: processes*, so a second run would fail to open the file. Jobs that never open the warehouse
#: (``meterworks_webhook_delivery``) carry no tag and run beside a build.
WAREHOUSE_TAG = "meterworks/warehouse"

#: Concurrency pools (``deploy/dagster.yaml``: ``pools.default_limit: 1``) for steps that open the
#: DuckDB file, and for the dbt step: they bound steps across runs once the run-level limit is
#: lifted (on Spark). Defined in ``concurrency.py``, set on the assets.

#: steps of one run that may execute at once when the dbt project runs on Spark
SPARK_MAX_CONCURRENT = 2


def warehouse_engine() -> str:
    """``METERWORKS_ENGINE`` (``duckdb`` unless set to ``spark``), read when the code location
    loads: the webserver, the daemon and the run workers must share it (docs/production.md)."""
    value = os.environ.get("METERWORKS_ENGINE", "duckdb").strip().lower() or "duckdb"
    if value not in ("duckdb", "spark"):
        raise ValueError(f"METERWORKS_ENGINE must be duckdb or spark, not {value!r}")
    return value


def warehouse_run_tags(engine: str) -> dict[str, str]:
    """On DuckDB a warehouse job is a ``write`` run (one at a time); on Spark the models are
    built by Spark, so runs may overlap and only the steps that still open the DuckDB file (the
    raw schema) queue, through ``DUCKDB_POOL``."""
    return {WAREHOUSE_TAG: "write" if engine == "duckdb" else "shared"}


def warehouse_executor(engine: str) -> dg.ExecutorDefinition:
    """The multiprocess executor, one step at a time on DuckDB (two steps of one run, say the
    catalog sync and the Stripe sync, would both open the file read-write); lifted on Spark.
    ``meterworks`` CLI runs (``execute_in_process``) run in-process either way."""
    max_concurrent = 1 if engine == "duckdb" else SPARK_MAX_CONCURRENT
    return dg.multiprocess_executor.configured(
        {"max_concurrent": max_concurrent}, name=f"multiprocess_{engine}"
    )


ENGINE = warehouse_engine()
WAREHOUSE_RUN_TAGS = warehouse_run_tags(ENGINE)
WAREHOUSE_EXECUTOR = warehouse_executor(ENGINE)

INGEST_ASSETS = dg.AssetSelection.assets(*CATALOG_ASSETS, *RAW_ASSETS)

#: Monthly-partitioned reports run on their own schedule (defs/revenue), never in a build.
REPORT_ASSETS = dg.AssetSelection.assets("mrr_report")

#: ingest the inbox, then rebuild everything downstream of the raw store
pipeline_job = dg.define_asset_job(
    "meterworks_pipeline",
    selection=dg.AssetSelection.all() - REPORT_ASSETS,
    description="Ingest whatever has settled in the inbox, then rebuild every model.",
    tags=WAREHOUSE_RUN_TAGS,
    executor_def=WAREHOUSE_EXECUTOR,
)

#: everything downstream of ingestion (the catalog tables are refreshed first)
build_job = dg.define_asset_job(
    "meterworks_build",
    selection=dg.AssetSelection.all() - dg.AssetSelection.assets(*RAW_ASSETS) - REPORT_ASSETS,
    description="Refresh the catalog tables and rebuild every model from the raw store.",
    tags=WAREHOUSE_RUN_TAGS,
    executor_def=WAREHOUSE_EXECUTOR,
)

#: The usage path: the meter totals, the hourly mart (built after them, by its own dbt op), the
#: dimensions their tests check against, and everything they are built from. Stripe, billing and
#: the rest wait for the hourly pipeline, so fresh usage is not held up by them.
USAGE_ASSETS = (
    dg.AssetSelection.assets("fct_meter_totals", "fct_usage_hourly", "dim_customers", "dim_meters")
    .upstream()
    .required_multi_asset_neighbors()
)

#: new files -> fresh meter totals, as fast as possible (the inbox sensor's job)
usage_pipeline_job = dg.define_asset_job(
    "meterworks_usage_pipeline",
    selection=USAGE_ASSETS,
    description="Ingest the inbox, then rebuild the usage marts (fct_usage_*, fct_meter_totals).",
    tags=WAREHOUSE_RUN_TAGS,
    executor_def=WAREHOUSE_EXECUTOR,
)

#: the usage marts alone, from the raw store
usage_build_job = dg.define_asset_job(
    "meterworks_usage_build",
    selection=USAGE_ASSETS - dg.AssetSelection.assets(*RAW_ASSETS),
    description="Rebuild the usage marts (fct_usage_*, fct_meter_totals) from the raw store.",
    tags=WAREHOUSE_RUN_TAGS,
    executor_def=WAREHOUSE_EXECUTOR,
)

#: just the raw store
ingest_job = dg.define_asset_job(
    "meterworks_ingest",
    selection=INGEST_ASSETS,
    description="Ingest files into the raw event store.",
    tags=WAREHOUSE_RUN_TAGS,
    executor_def=WAREHOUSE_EXECUTOR,
)

#: just the Stripe objects (``meterworks sync-stripe``)
stripe_sync_job = dg.define_asset_job(
    "meterworks_stripe_sync",
    selection=dg.AssetSelection.assets("stripe_objects"),
    description="Sync Stripe (API, incremental through events; or the list exports).",
    tags=WAREHOUSE_RUN_TAGS,
    executor_def=WAREHOUSE_EXECUTOR,
)

hourly_pipeline = dg.ScheduleDefinition(
    name="hourly_pipeline",
    job=pipeline_job,
    cron_schedule="7 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every hour: ingest the inbox and rebuild the marts.",
)

nightly_audit = dg.ScheduleDefinition(
    name="nightly_audit",
    job=build_job,
    cron_schedule="23 3 * * *",
    execution_timezone="UTC",
    run_config=dbt_run_config(audit=True, unit_tests=True),
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Nightly: rebuild with every dbt test, including the history-wide audit tests.",
)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        jobs=[
            pipeline_job,
            build_job,
            ingest_job,
            stripe_sync_job,
            usage_pipeline_job,
            usage_build_job,
        ],
        schedules=[hourly_pipeline, nightly_audit],
    )
