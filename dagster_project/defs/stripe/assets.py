"""The raw Stripe objects: customers, prices, subscriptions, invoices with all their lines,
credit notes and billing meters (latest version per id)."""

import dagster as dg
from pydantic import Field

from dagster_project.defs.concurrency import DUCKDB_POOL
from dagster_project.defs.resources import MeterworksResource
from dagster_project.defs.stripe.resources import StripeResource
from meterworks.stripe_sync import StripeExportSource, ensure_stripe_schema, sync_stripe
from meterworks.warehouse import open_warehouse


class StripeSyncConfig(dg.Config):
    """``full`` re-lists everything instead of following the created cursor and the events."""

    full: bool = Field(default=False)


@dg.asset(
    pool=DUCKDB_POOL,
    key="stripe_objects",
    group_name="stripe",
    kinds={"stripe", "duckdb"},
    description=(
        "Raw Stripe objects (raw.stripe_objects), synced from the API (incremental through "
        "/v1/events) or, without STRIPE_API_KEY, from the list exports in $METERWORKS_HOME/stripe."
    ),
)
def stripe_objects(
    context: dg.AssetExecutionContext,
    config: StripeSyncConfig,
    meterworks: MeterworksResource,
    stripe: StripeResource,
) -> dg.MaterializeResult:
    cfg = meterworks.settings()
    source = stripe.source(cfg.stripe_exports)
    with open_warehouse(cfg.warehouse) as con:
        ensure_stripe_schema(con)
        if isinstance(source, StripeExportSource) and not cfg.stripe_exports.is_dir():
            context.log.info(f"no STRIPE_API_KEY and no exports in {cfg.stripe_exports}")
            return dg.MaterializeResult(metadata={"mode": "none", "objects": 0})
        result = sync_stripe(con, source, full=config.full)
    counts = result.counts()
    context.log.info(f"stripe sync ({result.mode}): {counts}")
    return dg.MaterializeResult(
        metadata={
            "mode": result.mode,
            "counts": dg.MetadataValue.json(counts),
            "objects_per_second": round(result.objects_per_second, 1),
        }
    )
