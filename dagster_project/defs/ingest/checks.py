"""Asset checks on the raw event store: quarantine rate, duplicate rate, freshness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg

from dagster_project.defs.resources import MeterworksResource
from meterworks import health
from meterworks.warehouse import ensure_raw_schema, open_warehouse

MAX_QUARANTINE_RATE = 0.02
MAX_DUPLICATE_RATE = 0.20
MAX_STALENESS = timedelta(hours=26)


def _latest(meterworks: MeterworksResource) -> health.BatchHealth:
    with open_warehouse(meterworks.settings().warehouse) as con:
        ensure_raw_schema(con)
        return health.latest_batch(con)


@dg.asset_check(asset="raw_events", description="Share of the latest batch sent to quarantine.")
def quarantine_rate(meterworks: MeterworksResource) -> dg.AssetCheckResult:
    batch = _latest(meterworks)
    return dg.AssetCheckResult(
        passed=batch.quarantine_rate <= MAX_QUARANTINE_RATE,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "batch_id": batch.batch_id or 0,
            "quarantined": batch.quarantined,
            "rows_read": batch.rows_read,
            "quarantine_rate": round(batch.quarantine_rate, 6),
            "threshold": MAX_QUARANTINE_RATE,
        },
    )


@dg.asset_check(asset="raw_events", description="Share of the latest batch that were redeliveries.")
def duplicate_rate(meterworks: MeterworksResource) -> dg.AssetCheckResult:
    batch = _latest(meterworks)
    return dg.AssetCheckResult(
        passed=batch.duplicate_rate <= MAX_DUPLICATE_RATE,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "batch_id": batch.batch_id or 0,
            "duplicates": batch.duplicates,
            "conflicts": batch.conflicts,
            "duplicate_rate": round(batch.duplicate_rate, 6),
            "threshold": MAX_DUPLICATE_RATE,
        },
    )


@dg.asset_check(asset="raw_events", description="A batch was committed within the last 26 hours.")
def ingest_freshness(meterworks: MeterworksResource) -> dg.AssetCheckResult:
    batch = _latest(meterworks)
    now = datetime.now(UTC).replace(tzinfo=None)
    age = (now - batch.committed_at) if batch.committed_at else None
    return dg.AssetCheckResult(
        passed=age is not None and age <= MAX_STALENESS,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "last_commit_utc": str(batch.committed_at),
            "age_hours": round(age.total_seconds() / 3600, 2) if age else -1.0,
            "latest_event_utc": str(batch.latest_event_ts),
        },
    )
