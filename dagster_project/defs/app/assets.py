"""App assets: the adjustments copied into the warehouse before dbt, and the read-only snapshot
the Streamlit app reads after every build.

The logic lives in ``meterworks.state`` (adjustments, SQLAlchemy) and ``meterworks.snapshot``.
"""

import dagster as dg

from dagster_project.defs.concurrency import DUCKDB_POOL
from dagster_project.defs.resources import MeterworksResource
from meterworks.snapshot import publish_snapshot, snapshot_path
from meterworks.state import export_adjustments, make_engine, state_url, upgrade
from meterworks.warehouse import open_warehouse

#: what the app shows; the snapshot is published once they are all built
APP_SOURCES = [
    dg.AssetKey(name)
    for name in (
        "fct_usage_hourly",
        "fct_usage_daily",
        "fct_meter_totals",
        "dim_customers",
        "dim_meters",
        "fct_projected_invoice",
        "fct_invoice_reconciliation",
        "fct_mrr",
        "fct_mrr_movements",
        "fct_usage_anomalies",
        "fct_threshold_crossings",
    )
]


@dg.asset(
    pool=DUCKDB_POOL,
    key="adjustments",
    group_name="app",
    kinds={"duckdb", "sqlalchemy"},
    description=(
        "raw.adjustments: the ops adjustments (credits, usage corrections) made in the app, "
        "copied from the app-state database ($METERWORKS_STATE_URL) before the billing models "
        "apply them; voided ones keep their row with voided_at."
    ),
)
def adjustments(
    context: dg.AssetExecutionContext, meterworks: MeterworksResource
) -> dg.MaterializeResult:
    cfg = meterworks.settings()
    engine = make_engine(state_url(cfg.home))
    try:
        upgrade(engine)
        with open_warehouse(cfg.warehouse) as con:
            rows = export_adjustments(engine, con)
    finally:
        engine.dispose()
    context.log.info(f"raw.adjustments: {rows} adjustments")
    return dg.MaterializeResult(metadata={"dagster/row_count": rows})


@dg.asset(
    pool=DUCKDB_POOL,
    key="app_snapshot",
    group_name="app",
    kinds={"duckdb", "streamlit"},
    deps=APP_SOURCES,
    description=(
        "$METERWORKS_HOME/snapshot.duckdb: the marts (and the raw/alerts tables the app shows) "
        "copied after each build and swapped in atomically, so the Streamlit app never opens "
        "the warehouse while a run writes it."
    ),
)
def app_snapshot(
    context: dg.AssetExecutionContext, meterworks: MeterworksResource
) -> dg.MaterializeResult:
    cfg = meterworks.settings()
    with open_warehouse(cfg.warehouse, read_only=True) as con:
        result = publish_snapshot(con, snapshot_path(cfg.home))
    context.log.info(
        f"snapshot {result['path']}: {len(result['tables'])} tables in {result['seconds']} s"
    )
    return dg.MaterializeResult(
        metadata={
            "path": result["path"],
            "seconds": result["seconds"],
            "tables": dg.MetadataValue.json(result["tables"]),
        }
    )
