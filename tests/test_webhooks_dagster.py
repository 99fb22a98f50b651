"""The Dagster shell: the outbox asset, the delivery asset and the delivery sensor."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import dagster as dg
import yaml

from dagster_project.defs.resources import MeterworksResource
from dagster_project.defs.webhooks.assets import (
    webhook_deliveries,
    webhook_delivery_job,
    webhook_messages,
)
from dagster_project.defs.webhooks.sensors import webhook_delivery_sensor
from meterworks.webhooks import DeliveryStore, state_url
from tests.webhook_fixtures import build_alert_warehouse
from tests.webhook_receiver import WebhookReceiver

CUSTOMERS = ["acme", "globex"]


def write_catalog(path: Path, rx: WebhookReceiver) -> Path:
    catalog = {
        "meters": [{"code": "api_calls", "event": "api_request", "aggregation": "count"}],
        "customers": [{"id": c, "webhook_url": f"{rx.base_url}/{c}"} for c in CUSTOMERS],
    }
    path.write_text(yaml.safe_dump(catalog))
    return path


def test_assets_queue_and_deliver_and_the_sensor_drains(home: Path, monkeypatch):
    monkeypatch.delenv("SVIX_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("METERWORKS_STATE_URL", raising=False)
    home.mkdir(parents=True)
    build_alert_warehouse(home / "warehouse.duckdb", CUSTOMERS)
    with WebhookReceiver() as rx:
        resource = MeterworksResource(
            home=str(home), catalog_path=str(write_catalog(home / "catalog.yml", rx))
        )
        instance = dg.DagsterInstance.ephemeral()
        # the sensor skips while nothing is queued
        context = dg.build_sensor_context(instance=instance)
        assert webhook_delivery_sensor(context).skip_reason is not None

        result = dg.materialize(
            [webhook_messages], resources={"meterworks": resource}, instance=instance
        )
        meta = result.asset_materializations_for_node("webhook_messages")[0].metadata
        queued = meta["messages_added"].value
        assert queued >= 8 and meta["endpoints_created"].value == 2
        assert meta["mode"].value == "embedded"

        store = DeliveryStore.open(state_url(home))
        for endpoint in store.list_endpoints():  # the customers' receivers know their secrets
            rx.add_endpoint(f"/{endpoint.customer_id}", store.endpoint_secret(endpoint.endpoint_id))
        context = dg.build_sensor_context(instance=instance)
        [request] = webhook_delivery_sensor(context).run_requests
        assert request.tags["meterworks/webhooks_due"] == str(queued)

        result = dg.materialize(
            [webhook_deliveries], resources={"meterworks": resource}, instance=instance
        )
        meta = result.asset_materializations_for_node("webhook_deliveries")[0].metadata
        assert meta["succeeded"].value == queued
        assert rx.total() == queued and not any(rx.rejected.values())
        assert store.due_count(datetime(2100, 1, 1)) == 0
        store.close()

        # re-running the outbox asset queues nothing twice
        result = dg.materialize(
            [webhook_messages], resources={"meterworks": resource}, instance=instance
        )
        meta = result.asset_materializations_for_node("webhook_messages")[0].metadata
        assert meta["messages_added"].value == 0
        assert webhook_delivery_sensor(dg.build_sensor_context(instance=instance)).skip_reason


def test_delivery_job_and_sensor_are_wired():
    assert webhook_delivery_sensor.job_name == webhook_delivery_job.name
    defs = dg.Definitions(
        assets=[webhook_messages, webhook_deliveries],
        jobs=[webhook_delivery_job],
        sensors=[webhook_delivery_sensor],
        resources={"meterworks": MeterworksResource()},
    )
    job = defs.resolve_job_def("meterworks_webhook_delivery")
    keys = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    assert keys == {"webhook_deliveries"}
    graph = defs.resolve_asset_graph()
    parents = {k.to_user_string() for k in graph.get(dg.AssetKey("webhook_messages")).parent_keys}
    assert parents == {"fct_threshold_crossings", "fct_usage_anomalies"}
