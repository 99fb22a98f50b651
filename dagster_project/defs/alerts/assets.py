"""Alert assets: quota thresholds after the billing marts, usage anomalies after the usage marts.

The logic lives in ``alerts.thresholds`` and ``alerts.anomaly``; both write their mart and queue
their alerts in ``alerts.outbox`` in one transaction, so a failed run leaves nothing half-done.
"""

from datetime import UTC, datetime

import dagster as dg

from alerts.anomaly.alerting import MART as ANOMALY_MART
from alerts.anomaly.alerting import detect_anomalies, policies_from_catalog
from alerts.thresholds import (
    CROSSINGS_MART,
    evaluate_thresholds,
    spend_thresholds_from_catalog,
    thresholds_from_catalog,
)
from dagster_project.defs.concurrency import DUCKDB_POOL
from dagster_project.defs.resources import MeterworksResource
from meterworks.warehouse import open_warehouse


@dg.asset(
    pool=DUCKDB_POOL,
    key="fct_threshold_crossings",
    group_name="alerts",
    kinds={"duckdb"},
    deps=[dg.AssetKey("fct_projected_invoice"), dg.AssetKey("fct_meter_totals")],
    description=(
        f"{CROSSINGS_MART}: every quota or spend threshold fired (or already passed when its "
        "rule arrived) per customer, meter, period and threshold; each crossing fires exactly "
        "once, as one usage.threshold_crossed / invoice.projection_exceeded message in "
        "alerts.outbox."
    ),
)
def fct_threshold_crossings(
    context: dg.AssetExecutionContext, meterworks: MeterworksResource
) -> dg.MaterializeResult:
    catalog = meterworks.load_catalog()
    with open_warehouse(meterworks.settings().warehouse) as con:
        run = evaluate_thresholds(
            con,
            now=datetime.now(UTC),
            customer_thresholds=thresholds_from_catalog(catalog),
            spend_thresholds=spend_thresholds_from_catalog(catalog),
            backdating_days=catalog.backdating_days,
        )
        rows = con.execute(f"select count(*) from {CROSSINGS_MART}").fetchone()[0]
    context.log.info(f"threshold evaluation: {len(run.fired)} fired, {len(run.passed)} passed")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "periods_open": run.periods_open,
            "periods_closed": run.periods_closed,
            "fired": len(run.fired),
            "already_passed": len(run.passed),
            "unresolved_closed_periods": len(run.unresolved),
            "fired_alert_ids": dg.MetadataValue.json([c.alert_id for c in run.fired[:50]]),
        }
    )


@dg.asset(
    pool=DUCKDB_POOL,
    key="fct_usage_anomalies",
    group_name="alerts",
    kinds={"duckdb", "scikitlearn"},
    deps=[dg.AssetKey("fct_usage_hourly"), dg.AssetKey("fct_usage_daily")],
    description=(
        f"{ANOMALY_MART}: every complete hourly and daily bucket of the recent window scored "
        "against the customer-meter's own weekday-aware history (expected value, range, score, "
        "severity, explanation); each new incident is one usage.anomaly_detected message in "
        "alerts.outbox."
    ),
)
def fct_usage_anomalies(
    context: dg.AssetExecutionContext, meterworks: MeterworksResource
) -> dg.MaterializeResult:
    policies = policies_from_catalog(meterworks.load_catalog())
    with open_warehouse(meterworks.settings().warehouse) as con:
        run = detect_anomalies(con, now=datetime.now(UTC), policies=policies)
    metadata: dict[str, object] = {}
    for granularity, r in run.runs.items():
        metadata[f"{granularity}_series"] = r.series
        metadata[f"{granularity}_buckets_written"] = r.buckets_written
        metadata[f"{granularity}_anomalies"] = r.anomalies
        metadata[f"{granularity}_alerts_queued"] = r.queued
        metadata[f"{granularity}_seconds"] = round(r.seconds, 2)
        context.log.info(
            f"{granularity}: {r.series} series, {r.anomalies} anomalous buckets, "
            f"{r.queued} new alerts (watermark {r.watermark})"
        )
    if not run.runs:
        context.log.info("no usage yet: nothing to score")
    return dg.MaterializeResult(metadata=metadata)


@dg.asset_check(asset="fct_usage_anomalies", blocking=False)
def anomalies_are_explained(meterworks: MeterworksResource) -> dg.AssetCheckResult:
    """Every anomaly carries what support reads to the customer: explanation, range, severity."""
    with open_warehouse(meterworks.settings().warehouse, read_only=True) as con:
        bad = con.execute(
            f"""
            select count(*) from {ANOMALY_MART}
            where is_anomaly and (explanation is null or severity is null or expected is null
                                  or anomaly_kind is null)
            """
        ).fetchone()[0]
    return dg.AssetCheckResult(passed=bad == 0, metadata={"unexplained_anomalies": bad})


@dg.asset_check(asset="fct_threshold_crossings", blocking=False)
def fired_crossings_are_queued(meterworks: MeterworksResource) -> dg.AssetCheckResult:
    """Every fired threshold has its message in the outbox (none lost between the two)."""
    with open_warehouse(meterworks.settings().warehouse, read_only=True) as con:
        missing = con.execute(
            f"""
            select count(*) from {CROSSINGS_MART} as c
            left join alerts.outbox as o on c.alert_id = o.alert_id
            where c.status = 'fired' and o.alert_id is null
            """
        ).fetchone()[0]
    return dg.AssetCheckResult(passed=missing == 0, metadata={"fired_without_message": missing})
