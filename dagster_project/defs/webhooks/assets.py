"""Webhook assets: the outbox copied into the delivery store, and one delivery pass.

``webhook_messages`` runs after the alert assets, while the pipeline holds the warehouse; it
only reads the warehouse. ``webhook_deliveries`` needs no warehouse (the delivery store is
separate), so the delivery sensor can run it while a build holds the warehouse.
"""

import dagster as dg

from dagster_project.defs.concurrency import DUCKDB_POOL
from dagster_project.defs.resources import MeterworksResource
from meterworks.warehouse import open_warehouse
from meterworks.webhooks import (
    DeliveryStore,
    drain,
    enqueue_from_outbox,
    sync_endpoints,
    webhook_settings,
)

#: the assets that write alerts.outbox
ALERT_ASSETS = [dg.AssetKey("fct_threshold_crossings"), dg.AssetKey("fct_usage_anomalies")]


@dg.asset(
    pool=DUCKDB_POOL,
    key="webhook_messages",
    group_name="webhooks",
    kinds={"duckdb", "sqlite"},
    deps=ALERT_ASSETS,
    description=(
        "Every alert of alerts.outbox queued once for delivery (delivery store, "
        "$METERWORKS_STATE_URL), and the customers' webhook endpoints synced from the catalog."
    ),
)
def webhook_messages(
    context: dg.AssetExecutionContext, meterworks: MeterworksResource
) -> dg.MaterializeResult:
    cfg = meterworks.settings()
    settings = webhook_settings(cfg.home)
    store = DeliveryStore.open(settings.state_url)
    try:
        endpoints = sync_endpoints(store, meterworks.load_catalog().customers)
        if cfg.warehouse.exists():
            with open_warehouse(cfg.warehouse, read_only=True) as con:
                result = enqueue_from_outbox(con, store, mode=settings.mode)
        else:
            result = None
    finally:
        store.close()
    added = result.messages_added if result else 0
    context.log.info(f"webhooks: {added} new messages ({settings.mode} mode)")
    return dg.MaterializeResult(
        metadata={
            "mode": settings.mode,
            "outbox_rows": result.outbox_rows if result else 0,
            "messages_added": added,
            "deliveries_created": result.deliveries_created if result else 0,
            "endpoints_created": len(endpoints["created"]),
            "endpoints_removed": len(endpoints["removed"]),
        }
    )


class DeliveryConfig(dg.Config):
    max_seconds: float = 120.0
    """Stop claiming new batches after this long (the rest waits for the next pass)."""


@dg.asset(
    key="webhook_deliveries",
    group_name="webhooks",
    kinds={"sqlite"},
    deps=[dg.AssetKey("webhook_messages")],
    description=(
        "One delivery pass: every due message sent once (Svix, or signed POSTs to the "
        "customers' endpoints), attempts recorded, retries scheduled on Svix's schedule."
    ),
)
def webhook_deliveries(
    context: dg.AssetExecutionContext, meterworks: MeterworksResource, config: DeliveryConfig
) -> dg.MaterializeResult:
    settings = webhook_settings(meterworks.settings().home)
    store = DeliveryStore.open(settings.state_url)
    try:
        report = drain(store, settings=settings, max_seconds=config.max_seconds)
        counts = store.counts()
    finally:
        store.close()
    context.log.info(
        f"webhooks: {report.succeeded} delivered, {report.failed} failed attempts "
        f"({settings.mode} mode)"
    )
    return dg.MaterializeResult(
        metadata={"mode": settings.mode, **report.as_metadata(), "deliveries_by_status": counts}
    )


#: a delivery pass alone (the sensor's job): no warehouse needed
webhook_delivery_job = dg.define_asset_job(
    "meterworks_webhook_delivery",
    selection=dg.AssetSelection.assets("webhook_deliveries"),
    description="Deliver the webhook messages that are due (no warehouse needed).",
)
