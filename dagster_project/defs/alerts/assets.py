"""Quota-threshold alerts, evaluated after the billing marts (logic in ``alerts.thresholds``)."""

from datetime import UTC, datetime

import dagster as dg

from alerts.thresholds import evaluate_thresholds, thresholds_from_catalog
from dagster_project.defs.resources import MeterworksResource
from meterworks.warehouse import open_warehouse


@dg.asset(
    key="threshold_crossings",
    group_name="alerts",
    kinds={"duckdb"},
    deps=[dg.AssetKey("fct_projected_invoice"), dg.AssetKey("fct_meter_totals")],
    description=(
        "Quota-threshold state per customer, meter, period and threshold (alerts.threshold_state)"
        " and one usage.threshold_crossed message per crossing in the alert outbox "
        "(alerts.outbox): each crossing fires exactly once."
    ),
)
def threshold_crossings(
    context: dg.AssetExecutionContext, meterworks: MeterworksResource
) -> dg.MaterializeResult:
    catalog = meterworks.load_catalog()
    with open_warehouse(meterworks.settings().warehouse) as con:
        run = evaluate_thresholds(
            con,
            now=datetime.now(UTC),
            customer_thresholds=thresholds_from_catalog(catalog),
            backdating_days=catalog.backdating_days,
        )
    context.log.info(f"threshold evaluation: {len(run.fired)} fired, {len(run.passed)} passed")
    return dg.MaterializeResult(
        metadata={
            "periods_open": run.periods_open,
            "periods_closed": run.periods_closed,
            "fired": len(run.fired),
            "already_passed": len(run.passed),
            "unresolved_closed_periods": len(run.unresolved),
            "fired_alert_ids": dg.MetadataValue.json([c.alert_id for c in run.fired[:50]]),
        }
    )
