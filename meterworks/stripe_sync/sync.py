"""``sync_stripe``: one sync of a source (API or export) into ``raw.stripe_objects``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import duckdb

from meterworks.stripe_sync.schema import OBJECT_TYPES, ensure_stripe_schema
from meterworks.stripe_sync.store import Stager, commit

_STATE_FIELDS = (
    "created_cursor",
    "last_event_id",
    "last_event_created",
    "last_full_sync_at",
    "updated_at",
)


@dataclass
class SyncResult:
    """What one sync did. ``objects``: rows upserted per Stripe object type."""

    mode: str  # 'full' | 'incremental' | 'export'
    source: str
    objects: dict[str, int]
    requests: int
    retries: int
    seconds: float
    run_id: int
    removed_children: int = 0
    fallback_reason: str | None = None
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, Any]:
        """Objects upserted per object type, then ``requests``, ``retries``, ``seconds``."""
        return {
            **self.objects,
            "requests": self.requests,
            "retries": self.retries,
            "seconds": round(self.seconds, 3),
        }

    @property
    def total_objects(self) -> int:
        return sum(self.objects.values())

    @property
    def objects_per_second(self) -> float:
        return self.total_objects / self.seconds if self.seconds > 0 else 0.0

    @property
    def fell_back(self) -> bool:
        """An incremental sync that had to become a full one (see ``fallback_reason``)."""
        return self.fallback_reason is not None


class SyncContext:
    """What a source's ``collect`` works with: the stager, the clock, the stored cursors."""

    def __init__(
        self,
        stager: Stager,
        now: datetime,
        source: str,
        state: dict[str, dict[str, Any]],
    ) -> None:
        self.stager = stager
        self.con = stager.con
        self.now = now
        self.now_ts = int(now.timestamp())
        self.source = source
        self.state = state
        self.mode: str | None = None
        self.fallback_reason: str | None = None
        self.notes: list[str] = []
        self.new_state: dict[str, dict[str, Any]] = {}
        self.requests = 0
        self.retries = 0

    @property
    def now_naive(self) -> datetime:
        return self.now.astimezone(UTC).replace(tzinfo=None)

    def note(self, message: str) -> None:
        self.notes.append(message)

    def fall_back(self, reason: str) -> None:
        """Discard what an incremental sync staged; the source then runs a full one."""
        self.fallback_reason = reason
        self.note(f"full sync instead of incremental: {reason}")
        self.stager.reset()
        self.new_state.clear()

    def set_state(self, resource: str, **fields: Any) -> None:
        self.new_state.setdefault(resource, {}).update(fields)

    def state_rows(self) -> list[tuple]:
        rows = []
        for resource, fields in sorted(self.new_state.items()):
            old = self.state.get(resource, {})
            merged = {name: fields.get(name, old.get(name)) for name in _STATE_FIELDS}
            merged["updated_at"] = self.now_naive
            rows.append((self.source, resource, *(merged[name] for name in _STATE_FIELDS)))
        return rows


class Source(Protocol):
    name: str

    def collect(self, ctx: SyncContext, *, full: bool) -> None: ...


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        return now.replace(tzinfo=UTC)
    return now.astimezone(UTC)


def load_state(con: duckdb.DuckDBPyConnection, source: str) -> dict[str, dict[str, Any]]:
    rows = con.execute(
        f"select resource, {', '.join(_STATE_FIELDS)} from raw.stripe_sync_state where source = ?",
        [source],
    ).fetchall()
    return {row[0]: dict(zip(_STATE_FIELDS, row[1:], strict=True)) for row in rows}


def sync_stripe(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    *,
    full: bool = False,
    now: datetime | None = None,
) -> SyncResult:
    """Sync ``source`` into ``raw.stripe_objects`` and record the run.

    API sources run incrementally when a cursor exists (``full=True`` forces a full listing);
    export sources always upsert everything they hold. Everything is written in one DuckDB
    transaction: on :class:`StripeSyncError` (or any error) the previous state is intact.
    ``now`` (UTC) is the sync's clock: ``synced_at``, cursor ages, the meter summary window.
    """
    started = time.perf_counter()
    now = _utc(now)
    ensure_stripe_schema(con)
    stager = Stager(con)
    try:
        ctx = SyncContext(stager, now, source.name, load_state(con, source.name))
        source.collect(ctx, full=full)
        assert ctx.mode is not None, "a source must set ctx.mode"
        extra: dict[str, Any] = {"requests": ctx.requests, "retries": ctx.retries}
        if ctx.fallback_reason:
            extra["fallback_reason"] = ctx.fallback_reason
        if ctx.notes:
            extra["notes"] = ctx.notes
        counts, removed, run_id, seconds = commit(
            con,
            stager,
            synced_at=ctx.now_naive,
            state_rows=ctx.state_rows(),
            source=source.name,
            mode=ctx.mode,
            started=started,
            extra=extra,
        )
    finally:
        stager.close()
    objects = {t: 0 for t in OBJECT_TYPES}
    objects.update(counts)
    return SyncResult(
        mode=ctx.mode,
        source=source.name,
        objects=objects,
        requests=ctx.requests,
        retries=ctx.retries,
        seconds=seconds,
        run_id=run_id,
        removed_children=removed,
        fallback_reason=ctx.fallback_reason,
        notes=list(ctx.notes),
    )
