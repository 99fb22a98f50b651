"""The delivery sensor: when messages are due, run a delivery pass (one at a time)."""

from __future__ import annotations

import dagster as dg

from dagster_project.defs.webhooks.assets import webhook_delivery_job
from meterworks.webhooks import DeliveryStore, webhook_settings
from meterworks.webhooks.store import utcnow

ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


@dg.sensor(
    job=webhook_delivery_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Drains the webhook outbox: a delivery run whenever messages are due.",
)
def webhook_delivery_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    store = DeliveryStore.open(webhook_settings().state_url)
    try:
        due = store.due_count(utcnow())
    finally:
        store.close()
    if not due:
        return dg.SensorResult(skip_reason="no webhook message is due")
    active = context.instance.get_runs(
        filters=dg.RunsFilter(job_name=webhook_delivery_job.name, statuses=ACTIVE), limit=1
    )
    if active:
        return dg.SensorResult(skip_reason=f"{due} due; a delivery run is already going")
    return dg.SensorResult(run_requests=[dg.RunRequest(tags={"meterworks/webhooks_due": str(due)})])
