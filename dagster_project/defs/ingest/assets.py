"""Ingestion assets: the catalog tables and the append-only raw event store."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from meterworks.ingest import ingest_files
from pydantic import Field

from dagster_project.defs.resources import MeterworksResource
from meterworks import inbox
from meterworks.warehouse import open_warehouse, sync_catalog


class IngestConfig(dg.Config):
    """Files or folders to ingest; empty means "whatever has settled in the inbox".

    Files taken from the inbox are moved to ``inbox/processed/`` once their batch committed.
    """

    paths: list[str] = Field(default_factory=list)
    archive_inbox_files: bool = True


@dg.asset(
    group_name="ingest",
    kinds={"duckdb", "yaml"},
    description="The catalog's meters and customers, written to raw.catalog_* for dbt.",
)
def catalog(meterworks: MeterworksResource) -> dg.MaterializeResult:
    cfg = meterworks.settings()
    catalog_ = meterworks.load_catalog()
    with open_warehouse(cfg.warehouse) as con:
        sync_catalog(con, catalog_)
    return dg.MaterializeResult(
        metadata={
            "catalog_path": str(meterworks.catalog_path or cfg.catalog),
            "meters": len(catalog_.meters),
            "customers": len(catalog_.customers),
            "backdating_days": catalog_.backdating_days,
        }
    )


@dg.asset(
    group_name="ingest",
    kinds={"duckdb"},
    deps=[catalog],
    description=(
        "Append-only raw usage event store (raw.events, raw.quarantine, raw.ingest_batches). "
        "Exactly-once: a retried event is never counted twice."
    ),
)
def raw_events(
    context: dg.AssetExecutionContext, config: IngestConfig, meterworks: MeterworksResource
) -> dg.MaterializeResult:
    cfg = meterworks.settings()
    cfg.ensure_dirs()
    paths = [Path(p) for p in config.paths] if config.paths else inbox.pending_files(cfg.inbox)
    if not paths:
        context.log.info("nothing to ingest")
        return dg.MaterializeResult(metadata={"files": 0, "accepted": 0})
    catalog_ = meterworks.load_catalog()
    with open_warehouse(cfg.warehouse) as con:
        result = ingest_files(con, paths, catalog_)
    counts = result.counts()
    context.log.info(f"batch {result.batch_id}: {counts}")
    dropped = [p for p in paths if p.resolve().parent == cfg.inbox]
    if dropped and config.archive_inbox_files:
        inbox.archive(dropped, cfg.processed, result.batch_id)
    return dg.MaterializeResult(
        metadata={
            "batch_id": result.batch_id,
            "files": len(paths),
            "rows_read": counts["rows_read"],
            "accepted": counts["accepted"],
            "duplicates": counts["duplicates"],
            "conflicts": counts["conflicts"],
            "quarantined": counts["quarantined"],
            "counts": dg.MetadataValue.json(counts),
        }
    )
