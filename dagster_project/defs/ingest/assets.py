"""Ingestion assets: the catalog tables and the append-only raw event store."""

from pathlib import Path

import dagster as dg
from pydantic import Field

from dagster_project.defs.concurrency import DUCKDB_POOL
from dagster_project.defs.resources import MeterworksResource
from meterworks import inbox
from meterworks.ingest import ingest_files
from meterworks.warehouse import open_warehouse, sync_catalog


class IngestConfig(dg.Config):
    """Files or folders to ingest; empty means "whatever has settled in the inbox".

    Files taken from the inbox are moved to ``inbox/processed/`` once their batch committed.
    """

    paths: list[str] = Field(default_factory=list)
    archive_inbox_files: bool = True


#: One Dagster asset per raw table, so each dbt source maps to its own upstream asset.
CATALOG_ASSETS = (
    "catalog_meters",
    "catalog_customers",
    "catalog_plan_charges",
    "catalog_price_tiers",
)
RAW_ASSETS = ("raw_events", "raw_quarantine", "raw_ingest_batches")


@dg.multi_asset(
    pool=DUCKDB_POOL,
    group_name="ingest",
    specs=[
        dg.AssetSpec(
            "catalog_meters",
            kinds={"duckdb", "yaml"},
            description="Meters of the catalog file (raw.catalog_meters), rewritten each sync.",
        ),
        dg.AssetSpec(
            "catalog_customers",
            kinds={"duckdb", "yaml"},
            description="Customers of the catalog file (raw.catalog_customers).",
        ),
        dg.AssetSpec(
            "catalog_plan_charges",
            kinds={"duckdb", "yaml"},
            description="Plan charges with their prices flattened (raw.catalog_plan_charges).",
        ),
        dg.AssetSpec(
            "catalog_price_tiers",
            kinds={"duckdb", "yaml"},
            description="Tiers of the catalog's tiered prices (raw.catalog_price_tiers).",
        ),
    ],
)
def catalog(meterworks: MeterworksResource):
    """Validate the catalog file and write it to the warehouse in one transaction."""
    cfg = meterworks.settings()
    catalog_ = meterworks.load_catalog()
    with open_warehouse(cfg.warehouse) as con:
        sync_catalog(con, catalog_)
    source = str(meterworks.catalog_path or cfg.catalog)
    yield dg.MaterializeResult(
        asset_key="catalog_meters",
        metadata={
            "catalog_path": source,
            "meters": len(catalog_.meters),
            "backdating_days": catalog_.backdating_days,
        },
    )
    yield dg.MaterializeResult(
        asset_key="catalog_customers",
        metadata={"catalog_path": source, "customers": len(catalog_.customers)},
    )
    charges = catalog_.plan_charge_rows()
    yield dg.MaterializeResult(
        asset_key="catalog_plan_charges",
        metadata={"catalog_path": source, "plans": len(catalog_.plans), "charges": len(charges)},
    )
    yield dg.MaterializeResult(
        asset_key="catalog_price_tiers",
        metadata={"catalog_path": source, "tiers": len(catalog_.price_tier_rows())},
    )


@dg.multi_asset(
    pool=DUCKDB_POOL,
    group_name="ingest",
    specs=[
        dg.AssetSpec(
            "raw_events",
            kinds={"duckdb"},
            deps=["catalog_meters", "catalog_customers"],
            description=(
                "Append-only raw usage event store (raw.events). Exactly-once: a retried "
                "event is never counted twice."
            ),
        ),
        dg.AssetSpec(
            "raw_quarantine",
            kinds={"duckdb"},
            deps=["catalog_meters", "catalog_customers"],
            description="Rejected rows with their raw text and a reason (raw.quarantine).",
        ),
        dg.AssetSpec(
            "raw_ingest_batches",
            kinds={"duckdb"},
            deps=["catalog_meters", "catalog_customers"],
            description="One row per committed ingest batch with its counts.",
        ),
    ],
)
def raw_event_store(
    context: dg.AssetExecutionContext, config: IngestConfig, meterworks: MeterworksResource
):
    """One atomic ingest batch; the three raw tables commit together."""
    yield from _ingest(context, config, meterworks)


def _ingest(
    context: dg.AssetExecutionContext, config: IngestConfig, meterworks: MeterworksResource
) -> list[dg.MaterializeResult]:
    cfg = meterworks.settings()
    cfg.ensure_dirs()
    paths = [Path(p) for p in config.paths] if config.paths else inbox.pending_files(cfg.inbox)
    if not paths:
        context.log.info("nothing to ingest")
        return [
            dg.MaterializeResult(asset_key=key, metadata={"files": 0, "accepted": 0})
            for key in RAW_ASSETS
        ]
    catalog_ = meterworks.load_catalog()
    with open_warehouse(cfg.warehouse) as con:
        result = ingest_files(con, paths, catalog_)
    counts = result.counts()
    context.log.info(f"batch {result.batch_id}: {counts}")
    dropped = [p for p in paths if p.resolve().parent == cfg.inbox]
    if dropped and config.archive_inbox_files:
        inbox.archive(dropped, cfg.processed, result.batch_id)
    return [
        dg.MaterializeResult(
            asset_key="raw_events",
            metadata={
                "batch_id": result.batch_id,
                "files": len(paths),
                "rows_read": counts["rows_read"],
                "accepted": counts["accepted"],
                "duplicates": counts["duplicates"],
                "conflicts": counts["conflicts"],
                "corrections": counts["corrections"],
                "counts": dg.MetadataValue.json(counts),
            },
        ),
        dg.MaterializeResult(
            asset_key="raw_quarantine",
            metadata={
                "batch_id": result.batch_id,
                "quarantined": counts["quarantined"],
                "by_reason": dg.MetadataValue.json(counts["quarantined_by_reason"]),
            },
        ),
        dg.MaterializeResult(
            asset_key="raw_ingest_batches",
            metadata={"batch_id": result.batch_id, "seconds": counts["seconds"]},
        ),
    ]
