"""Jobs and the schedule that tie ingestion and transformation together."""

from __future__ import annotations

import dagster as dg

from dagster_project.defs.ingest.assets import CATALOG_ASSETS, RAW_ASSETS

INGEST_ASSETS = dg.AssetSelection.assets(*CATALOG_ASSETS, *RAW_ASSETS)

#: Monthly-partitioned reports run on their own schedule (defs/revenue), never in a build.
REPORT_ASSETS = dg.AssetSelection.assets("mrr_report")

#: ingest the inbox, then rebuild everything downstream of the raw store
pipeline_job = dg.define_asset_job(
    "meterworks_pipeline",
    selection=dg.AssetSelection.all() - REPORT_ASSETS,
    description="Ingest whatever has settled in the inbox, then rebuild every model.",
)

#: everything downstream of ingestion (the catalog tables are refreshed first)
build_job = dg.define_asset_job(
    "meterworks_build",
    selection=dg.AssetSelection.all() - dg.AssetSelection.assets(*RAW_ASSETS) - REPORT_ASSETS,
    description="Refresh the catalog tables and rebuild every model from the raw store.",
)

#: The usage path: the meter totals, the dimensions their tests check against, and everything
#: they are built from. Stripe, billing and the rest wait for the hourly pipeline, so fresh usage
#: is not held up by them.
USAGE_ASSETS = (
    dg.AssetSelection.assets("fct_meter_totals", "dim_customers", "dim_meters")
    .upstream()
    .required_multi_asset_neighbors()
)

#: new files -> fresh meter totals, as fast as possible (the inbox sensor's job)
usage_pipeline_job = dg.define_asset_job(
    "meterworks_usage_pipeline",
    selection=USAGE_ASSETS,
    description="Ingest the inbox, then rebuild the usage marts (fct_usage_*, fct_meter_totals).",
)

#: the usage marts alone, from the raw store
usage_build_job = dg.define_asset_job(
    "meterworks_usage_build",
    selection=USAGE_ASSETS - dg.AssetSelection.assets(*RAW_ASSETS),
    description="Rebuild the usage marts (fct_usage_*, fct_meter_totals) from the raw store.",
)

#: just the raw store
ingest_job = dg.define_asset_job(
    "meterworks_ingest",
    selection=INGEST_ASSETS,
    description="Ingest files into the raw event store.",
)

#: just the Stripe objects (``meterworks sync-stripe``)
stripe_sync_job = dg.define_asset_job(
    "meterworks_stripe_sync",
    selection=dg.AssetSelection.assets("stripe_objects"),
    description="Sync Stripe (API, incremental through events; or the list exports).",
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
    run_config={"ops": {"meterworks_dbt_models": {"config": {"audit": True, "unit_tests": True}}}},
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
