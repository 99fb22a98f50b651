"""The inbox sensor: a file dropped into ``$METERWORKS_HOME/inbox/`` triggers the usage
pipeline (ingest, then the usage marts); Stripe and billing follow on the hourly schedule."""

from __future__ import annotations

import dagster as dg

from dagster_project.defs.pipeline import usage_pipeline_job
from meterworks import inbox
from meterworks.config import settings


@dg.sensor(
    job=usage_pipeline_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Ingests settled inbox files and refreshes the meter totals.",
)
def inbox_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    files = inbox.pending_files(settings().inbox)
    if not files:
        return dg.SensorResult(skip_reason="inbox is empty")
    key = inbox.fingerprint(files)
    if key == context.cursor:
        return dg.SensorResult(skip_reason="these files already triggered a run")
    request = dg.RunRequest(
        run_key=key,
        run_config={"ops": {"raw_event_store": {"config": {"paths": [str(p) for p in files]}}}},
        tags={"meterworks/trigger": "inbox", "meterworks/files": str(len(files))},
    )
    return dg.SensorResult(run_requests=[request], cursor=key)
