"""Staging of fetched Stripe objects and the one-transaction write into ``raw.stripe_objects``.

Every version read during a sync is staged in bulk (Arrow batches written to temporary Parquet
files), with:

* ``as_of`` -- how recent the version is: ``event.created`` for an event's snapshot,
  :data:`CURRENT` for anything read from a list or retrieve during this sync (the sync reads
  events before lists, so a listed version is never older than an applied event);
* ``parent_seq`` -- for a child (invoice line, credit note line, subscription item), the staged
  row of the parent version it came with. Only children of the parent version that wins are
  kept, so a later version's line set replaces an earlier one's;
* ``complete`` -- on a parent, whether its full child set was read. Children stored earlier that
  the winning version no longer has (a line removed from a draft, an item removed from a
  subscription) are kept with ``"deleted": true``;
* ``merge`` -- a ``{"id", "object", "deleted": true}`` stub: the stored data is kept and only
  ``deleted`` is set.

:func:`commit` picks the latest version per ``(object_type, id)`` and upserts it, the sync
state and the run record in one DuckDB transaction.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

try:  # about 5x faster than json.dumps on Stripe objects
    import orjson
except ImportError:  # pragma: no cover
    orjson = None  # type: ignore[assignment]

from meterworks.stripe_sync.errors import StripeSyncError
from meterworks.stripe_sync.schema import CHILD_TYPE

#: ``as_of`` of versions read from the API during the sync (newer than any event snapshot).
CURRENT = 2**62

_COLUMNS = (
    ("seq", pa.int64()),
    ("object_type", pa.string()),
    ("id", pa.string()),
    ("parent_id", pa.string()),
    ("parent_seq", pa.int64()),
    ("created", pa.int64()),
    ("livemode", pa.bool_()),
    ("version_seen", pa.string()),
    ("api_version", pa.string()),
    ("as_of", pa.int64()),
    ("merge", pa.bool_()),
    ("complete", pa.bool_()),
    ("data", pa.string()),
)
_SCHEMA = pa.schema(list(_COLUMNS))
_DDL_TYPES = {pa.int64(): "bigint", pa.string(): "varchar", pa.bool_(): "boolean"}
_STUB_KEYS = frozenset({"id", "object", "deleted"})


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)  # Stripe sends *_decimal fields as strings
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):  # a StripeObject (SDK 15+ objects are not dicts)
        return to_dict(recursive=True, for_json=True)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dump_json(obj: Any) -> str:
    """Compact JSON (``orjson`` when installed -- dagster-dbt brings it -- else ``json``)."""
    if orjson is not None:
        return orjson.dumps(obj, default=_json_default).decode()
    return json.dumps(obj, separators=(",", ":"), default=_json_default, allow_nan=False)


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class Stager:
    """Rows of one sync, written in batches to zstd Parquet files in a temporary directory and
    read back through the temporary view ``self.table`` (what is staged stays on disk, not in
    DuckDB's memory, until the final upsert streams it)."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        batch_rows: int = 20_000,
        directory: str | Path | None = None,
    ) -> None:
        self.con = con
        self.table = f"stripe_stage_{uuid.uuid4().hex[:12]}"
        self.batch_rows = batch_rows
        self.rows = 0
        self._seq = 0
        self._buf: dict[str, list[Any]] = {name: [] for name, _ in _COLUMNS}
        self._dir = Path(tempfile.mkdtemp(prefix="meterworks-stripe-", dir=directory))
        self._files: list[Path] = []
        self._refresh_view()

    def add(
        self,
        obj: dict[str, Any],
        *,
        version_seen: str,
        as_of: int = CURRENT,
        api_version: str | None = None,
        parent_id: str | None = None,
        parent_seq: int | None = None,
        complete: bool = False,
        object_type: str | None = None,
    ) -> int:
        """Stage one object version; returns its ``seq`` (for its children's ``parent_seq``)."""
        oid = obj.get("id")
        object_type = object_type or obj.get("object")
        if not isinstance(oid, str) or not oid or not isinstance(object_type, str):
            raise StripeSyncError(
                f"object without id/object from {version_seen}: {dump_json(obj)[:120]}"
            )
        try:
            data = dump_json(obj)
        except (TypeError, ValueError) as e:
            raise StripeSyncError(f"{object_type} {oid} is not JSON-serialisable: {e}") from None
        deleted = obj.get("deleted") is True
        livemode = obj.get("livemode")
        self._seq += 1
        buf = self._buf
        buf["seq"].append(self._seq)
        buf["object_type"].append(object_type)
        buf["id"].append(oid)
        buf["parent_id"].append(parent_id)
        buf["parent_seq"].append(parent_seq)
        buf["created"].append(_int_or_none(obj.get("created")))
        buf["livemode"].append(livemode if isinstance(livemode, bool) else None)
        buf["version_seen"].append(version_seen)
        buf["api_version"].append(api_version)
        buf["as_of"].append(as_of)
        buf["merge"].append(deleted and _STUB_KEYS.issuperset(obj))
        buf["complete"].append(complete)
        buf["data"].append(data)
        self.rows += 1
        if len(buf["seq"]) >= self.batch_rows:
            self.flush()
        return self._seq

    def flush(self) -> None:
        if not self._buf["seq"]:
            return
        path = self._dir / f"stage-{len(self._files):06d}.parquet"
        pq.write_table(pa.table(self._buf, schema=_SCHEMA), path, compression="zstd")
        self._files.append(path)
        self._buf = {name: [] for name, _ in _COLUMNS}
        self._refresh_view()

    def _refresh_view(self) -> None:
        if self._files:
            paths = ", ".join("'" + str(p).replace("'", "''") + "'" for p in self._files)
            source = f"read_parquet([{paths}])"
        else:
            cols = ", ".join(f"null::{_DDL_TYPES[t]} as {name}" for name, t in _COLUMNS)
            source = f"(select {cols} where false)"
        self.con.execute(f"create or replace temp view {self.table} as select * from {source}")

    def reset(self) -> None:
        """Forget everything staged (a fallback from incremental to full)."""
        self._buf = {name: [] for name, _ in _COLUMNS}
        for path in self._files:
            path.unlink(missing_ok=True)
        self._files.clear()
        self.rows = 0
        self._refresh_view()

    def close(self) -> None:
        try:
            self.con.execute(f"drop view if exists {self.table}")
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)


def metered_customers(
    con: duckdb.DuckDBPyConnection, stager: Stager, meter_ids: list[str], window_start: int
) -> list[tuple[str, str]]:
    """(meter id, customer id) pairs with a subscription item on a price linked to the meter,
    whose subscription is live or ended after ``window_start`` (staged versions first)."""
    if not meter_ids:
        return []
    stager.flush()
    rows = con.execute(
        f"""
        with staged as (
            select object_type, id, data::json as data
            from {stager.table}
            where object_type in ('subscription', 'subscription_item')
            qualify row_number() over (
                partition by object_type, id order by as_of desc, seq desc) = 1
        ),
        objects as (
            select * from staged
            union all
            select r.object_type, r.id, r.data from raw.stripe_objects r
            where r.object_type in ('subscription', 'subscription_item')
              and not exists (
                select 1 from staged s where s.object_type = r.object_type and s.id = r.id)
        ),
        items as (
            select
                coalesce(
                    data->>'$.price.recurring.meter', data->>'$.plan.meter'
                ) as meter,
                coalesce(data->>'$.subscription.id', data->>'$.subscription') as subscription
            from objects
            where object_type = 'subscription_item'
              and coalesce(data->>'$.deleted', 'false') <> 'true'
        ),
        subs as (
            select
                id,
                coalesce(data->>'$.customer.id', data->>'$.customer') as customer,
                data->>'$.status' as status,
                try_cast(data->>'$.ended_at' as bigint) as ended_at
            from objects
            where object_type = 'subscription'
        )
        select distinct i.meter, s.customer
        from items i join subs s on s.id = i.subscription
        where i.meter in (select unnest($meters::varchar[]))
          and s.customer is not null
          and (s.status not in ('canceled', 'incomplete_expired')
               or coalesce(s.ended_at, 0) >= $window_start)
        order by 1, 2
        """,
        {"meters": meter_ids, "window_start": window_start},
    ).fetchall()
    return [(m, c) for m, c in rows]


def commit(
    con: duckdb.DuckDBPyConnection,
    stager: Stager,
    *,
    synced_at: datetime,
    state_rows: list[tuple],
    source: str,
    mode: str,
    started: float,
    extra: dict[str, Any],
) -> tuple[dict[str, int], int, int, float]:
    """Upsert the latest staged version of every object, mark children gone from complete
    parents as deleted, write the sync state and the run record -- one transaction.

    ``state_rows``: ``(source, resource, created_cursor, last_event_id, last_event_created,
    last_full_sync_at, updated_at)``; ``started``: ``time.perf_counter()`` at the start of the
    sync; ``extra``: more figures for the run record. Returns (upserted per object type,
    children marked deleted, run id, seconds)."""
    stager.flush()
    stage = stager.table
    win = f"{stage}_win"
    child_case = " ".join(f"when '{p}' then '{c}'" for p, c in CHILD_TYPE.items())
    con.execute("begin transaction")
    try:
        con.execute(
            f"""
            create temp table {win} as
            with parents as (
                select seq from {stage}
                where parent_seq is null
                qualify row_number() over (
                    partition by object_type, id order by as_of desc, seq desc) = 1
            ),
            eligible as (
                select seq, object_type, id, as_of from {stage}
                where parent_seq is null or parent_seq in (select seq from parents)
            )
            select seq, object_type, id from eligible
            qualify row_number() over (
                partition by object_type, id order by as_of desc, seq desc) = 1
            """
        )
        con.execute(
            f"""
            insert or replace into raw.stripe_objects
            select
                w.object_type,
                w.id,
                coalesce(w.parent_id, t.parent_id),
                coalesce(make_timestamp(w.created * 1000000), t.created),
                coalesce(w.livemode, t.livemode),
                w.version_seen,
                coalesce(w.api_version, t.api_version),
                $synced_at,
                case
                    when w.merge and t.data is not null then json_merge_patch(t.data, w.data::json)
                    else w.data::json
                end
            from {stage} w
            semi join {win} using (seq)
            left join raw.stripe_objects t on t.object_type = w.object_type and t.id = w.id
            """,
            {"synced_at": synced_at},
        )
        removed = con.execute(
            f"""
            update raw.stripe_objects as t
            set data = json_merge_patch(t.data, '{{"deleted":true}}'),
                version_seen = p.version_seen,
                synced_at = $synced_at
            from (
                select s.id as parent_id, s.version_seen,
                       case s.object_type {child_case} end as child_type
                from {stage} s
                semi join {win} using (seq)
                where s.complete
            ) p
            where t.object_type = p.child_type
              and t.parent_id = p.parent_id
              and coalesce(t.data->>'$.deleted', 'false') <> 'true'
              and not exists (
                select 1 from {win} c where c.object_type = t.object_type and c.id = t.id)
            """,
            {"synced_at": synced_at},
        ).fetchone()[0]
        counts = dict(
            con.execute(f"select object_type, count(*) from {win} group by 1 order by 1").fetchall()
        )
        if state_rows:
            con.executemany(
                "insert or replace into raw.stripe_sync_state values (?, ?, ?, ?, ?, ?, ?)",
                state_rows,
            )
        run_id = con.execute(
            "select coalesce(max(run_id), 0) + 1 from raw.stripe_sync_runs"
        ).fetchone()[0]
        seconds = time.perf_counter() - started
        record = {**counts, **extra, "removed_children": removed, "seconds": round(seconds, 3)}
        con.execute(
            "insert into raw.stripe_sync_runs values (?, ?, ?, ?, ?, ?)",
            [
                run_id,
                source,
                mode,
                synced_at,
                synced_at + timedelta(seconds=seconds),
                dump_json(record),
            ],
        )
        con.execute(f"drop table {win}")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return counts, int(removed), int(run_id), time.perf_counter() - started
