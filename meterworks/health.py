"""Ingestion health figures (quarantine, duplicates, freshness), shared by the Dagster asset
checks, the CLI summary and, later, the app's pipeline-health page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb


@dataclass(frozen=True)
class BatchHealth:
    batch_id: int | None
    rows_read: int
    accepted: int
    duplicates: int
    conflicts: int
    quarantined: int
    committed_at: datetime | None
    latest_event_ts: datetime | None

    @property
    def quarantine_rate(self) -> float:
        return self.quarantined / self.rows_read if self.rows_read else 0.0

    @property
    def duplicate_rate(self) -> float:
        return self.duplicates / self.rows_read if self.rows_read else 0.0


def latest_batch(con: duckdb.DuckDBPyConnection) -> BatchHealth:
    """Figures of the most recent committed batch (zeros when nothing was ingested yet)."""
    row = con.execute(
        """
        select batch_id, rows_read, accepted, duplicates, conflicts, quarantined, committed_at
        from raw.ingest_batches
        order by batch_id desc
        limit 1
        """
    ).fetchone()
    latest_event = con.execute(
        "select max(event_ts) from raw.events where event_seq > "
        "coalesce((select max(first_event_seq) - 1 from raw.ingest_batches), 0)"
    ).fetchone()[0]
    if row is None:
        return BatchHealth(None, 0, 0, 0, 0, 0, None, None)
    return BatchHealth(*row, latest_event_ts=latest_event)


def quarantine_by_reason(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    rows = con.execute(
        "select reason, count(*)::bigint from raw.quarantine group by reason order by 2 desc"
    ).fetchall()
    return dict(rows)


def totals(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Lifetime ingestion counts over every committed batch."""
    row = con.execute(
        """
        select count(*)::bigint, coalesce(sum(rows_read), 0)::bigint,
               coalesce(sum(accepted), 0)::bigint, coalesce(sum(duplicates), 0)::bigint,
               coalesce(sum(conflicts), 0)::bigint, coalesce(sum(quarantined), 0)::bigint,
               coalesce(sum(corrections), 0)::bigint
        from raw.ingest_batches
        """
    ).fetchone()
    keys = ("batches", "rows_read", "accepted", "duplicates", "conflicts", "quarantined",
            "corrections")  # fmt: skip
    return dict(zip(keys, row, strict=True))
