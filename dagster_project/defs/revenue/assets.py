"""The finance MRR report: one CSV and one Excel workbook per closed month, written from the
MRR marts into ``$METERWORKS_HOME/reports/`` (logic in ``meterworks.reports.mrr``)."""

from collections.abc import Iterator

import dagster as dg

from dagster_project.defs.concurrency import DUCKDB_POOL
from dagster_project.defs.resources import MeterworksResource
from dagster_project.defs.revenue.partitions import monthly_report_partitions
from meterworks.pricing import minor_unit_exponent
from meterworks.reports import ReportError, mrr_policies, parse_month, write_mrr_report
from meterworks.summary import money
from meterworks.warehouse import open_warehouse


@dg.asset(
    pool=DUCKDB_POOL,
    key="mrr_report",
    group_name="revenue",
    partitions_def=monthly_report_partitions,
    deps=[dg.AssetKey("fct_mrr_movements"), dg.AssetKey("fct_mrr")],
    kinds={"duckdb", "excel", "csv"},
    description=(
        "Finance MRR report for a closed month: $METERWORKS_HOME/reports/mrr-YYYY-MM.csv (bridge, "
        "metrics, customer movements, exact) and mrr-YYYY-MM.xlsx (Summary, Customer movements, "
        "Trend, Notes). Re-running a closed month on the same data gives byte-identical files."
    ),
)
def mrr_report(
    context: dg.AssetExecutionContext, meterworks: MeterworksResource
) -> Iterator[dg.MaterializeResult]:
    cfg = meterworks.settings()
    month = parse_month(context.partition_key)
    if not cfg.warehouse.exists():
        raise ReportError(f"no warehouse at {cfg.warehouse}: run `meterworks build` first")
    with open_warehouse(cfg.warehouse, read_only=True) as con:
        files = write_mrr_report(con, month, cfg.reports, policies=mrr_policies())
    ending = files.ending_mrr_minor
    exponent = minor_unit_exponent(files.reporting_currency)
    if not (files.bridge_holds and files.customers_reconcile):
        context.log.warning(
            f"MRR report {month:%Y-%m}: bridge holds={files.bridge_holds}, "
            f"customer movements reconcile={files.customers_reconcile}"
        )
    yield dg.MaterializeResult(
        metadata={
            "csv": dg.MetadataValue.path(str(files.csv)),
            "xlsx": dg.MetadataValue.path(str(files.xlsx)),
            "reporting_currency": files.reporting_currency.upper(),
            "ending_mrr": money(
                int(ending.to_integral_value(rounding="ROUND_HALF_UP")), files.reporting_currency
            ),
            "ending_mrr_minor": str(ending),
            "ending_mrr_major": float(ending.scaleb(-exponent)),
            "bridge_check": "ok" if files.bridge_holds else "does not add up",
            "customer_movements_check": "ok" if files.customers_reconcile else "differs",
            "customers_with_movement": files.movers,
            "data_fingerprint": files.fingerprint,
        }
    )
