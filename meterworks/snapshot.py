"""The app's read-only copy of the warehouse.

DuckDB is one writer or many readers *across processes*: while a materialization writes the
warehouse, another process cannot even open it read-only. So the app never opens the
warehouse; it reads ``$METERWORKS_HOME/snapshot.duckdb``, which ``publish_snapshot`` writes after
each build from the build's own connection: the marts, the few raw/alerts tables the app shows,
a compact count of raw events per customer, event and day, and ``app.snapshot_info``. Tables
with a ``customer_id`` are stored ordered by customer (and meter), so the app's per-customer
queries read a few row groups instead of the whole table. The new
file is written under a temporary name in the same directory and renamed over the old one, so a
reader sees the old snapshot or the new one, never half of one (a reader that has the old file
open keeps reading it).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb

SNAPSHOT_NAME = "snapshot.duckdb"

#: copied as they are when present (``marts`` is copied whole)
EXTRA_TABLES: tuple[tuple[str, str], ...] = (
    ("raw", "ingest_batches"),
    ("raw", "adjustments"),
    ("alerts", "outbox"),
    ("alerts", "threshold_state"),
)

#: derived tables, each (schema, table, query over the warehouse, tables the query needs)
DERIVED: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    (
        "raw",
        "quarantine",
        # the raw text is kept short: the app shows reasons and samples, not whole files
        "select batch_id, source_file, source_line, left(raw_text, 2000) as raw_text, reason, "
        "detail, transaction_id, customer_id, event_name, quarantined_at from raw.quarantine",
        ("raw.quarantine",),
    ),
    (
        "app",
        "raw_event_counts",
        # accepted raw events behind the marts, per customer, event name, action and UTC day
        "select customer_id, event_name, action, cast(event_ts as date) as event_date, "
        "count(*)::bigint as events, max(ingested_at) as last_ingested_at "
        "from raw.events group by all order by customer_id, event_name, event_date",
        ("raw.events",),
    ),
    (
        "app",
        "stripe_customers",
        "select customer_id, stripe_customer_id from staging.stg_stripe__customers",
        ("staging.stg_stripe__customers",),
    ),
)


def snapshot_path(home: str | os.PathLike[str]) -> Path:
    return Path(home) / SNAPSHOT_NAME


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "select table_schema || '.' || table_name from information_schema.tables "
        "where table_catalog = current_database()"
    ).fetchall()
    return {r[0] for r in rows}


def _columns(con: duckdb.DuckDBPyConnection, qualified: str) -> set[str]:
    schema, table = qualified.split(".")
    rows = con.execute(
        "select column_name from information_schema.columns "
        "where table_catalog = current_database() and table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchall()
    return {r[0] for r in rows}


#: the app reads most tables one customer (and meter) at a time: stored in that order, DuckDB's
#: per-row-group min/max statistics skip all but the customer's few row groups
CLUSTER_BY = ("customer_id", "meter_code")
#: ... except where it reads a small flagged part first: the app only ever shows anomalous
#: buckets (~1 % of the mart), kept together at the end, by customer
CLUSTER_BY_TABLE = {
    "marts.fct_usage_anomalies": ("is_anomaly", "customer_id", "meter_code", "window_start_utc"),
}


def _clustering(qualified: str, columns: set[str]) -> str:
    keys = [c for c in CLUSTER_BY_TABLE.get(qualified, CLUSTER_BY) if c in columns]
    if "customer_id" not in keys:
        return ""
    return " order by " + ", ".join(keys)


def publish_snapshot(con: duckdb.DuckDBPyConnection, path: str | os.PathLike[str]) -> dict:
    """Copy what the app reads from the open warehouse connection ``con`` (read-only is
    enough) into a new DuckDB file, then atomically rename it to ``path``. Returns
    ``{"tables": {name: rows}, "seconds": s, "path": str}``."""
    started = time.monotonic()
    target = Path(path).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{time.time_ns()}.tmp")
    alias = f"mw_snapshot_{os.getpid()}_{time.time_ns() % 1_000_000}"
    present = _tables(con)
    marts = sorted(t for t in present if t.startswith("marts."))
    copied: dict[str, int] = {}
    con.execute(f"attach '{tmp}' as {alias} (read_only false)")
    try:
        for schema in ("marts", "raw", "alerts", "app"):
            con.execute(f"create schema if not exists {alias}.{schema}")
        for qualified in [*marts, *(f"{s}.{t}" for s, t in EXTRA_TABLES)]:
            if qualified not in present:
                continue
            con.execute(
                f"create table {alias}.{qualified} as select * from {qualified}"
                + _clustering(qualified, _columns(con, qualified))
            )
            copied[qualified] = con.execute(f"select count(*) from {alias}.{qualified}").fetchone()[
                0
            ]
        for schema, table, query, needs in DERIVED:
            if not all(n in present for n in needs):
                continue
            if table == "stripe_customers" and not {"customer_id", "stripe_customer_id"} <= (
                _columns(con, needs[0])
            ):
                continue
            con.execute(f"create table {alias}.{schema}.{table} as {query}")
            copied[f"{schema}.{table}"] = con.execute(
                f"select count(*) from {alias}.{schema}.{table}"
            ).fetchone()[0]
        published_at = datetime.now(UTC).replace(tzinfo=None)
        con.execute(
            f"create table {alias}.app.snapshot_info as select ?::timestamp as published_at, "
            "?::varchar as warehouse",
            [published_at, str(con.execute("select current_database()").fetchone()[0])],
        )
        con.execute(
            f"create table {alias}.app.snapshot_tables (table_name varchar, row_count bigint)"
        )
        if copied:
            con.executemany(
                f"insert into {alias}.app.snapshot_tables values (?, ?)", list(copied.items())
            )
        con.execute(f"checkpoint {alias}")
    except BaseException:
        with contextlib.suppress(Exception):
            con.execute(f"detach {alias}")
        tmp.unlink(missing_ok=True)
        Path(f"{tmp}.wal").unlink(missing_ok=True)
        raise
    con.execute(f"detach {alias}")
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, target)
    with contextlib.suppress(OSError):  # make the rename durable
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return {
        "path": str(target),
        "tables": copied,
        "seconds": round(time.monotonic() - started, 3),
        "published_at": published_at,
    }


@contextlib.contextmanager
def open_snapshot(path: str | os.PathLike[str]) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the snapshot (FileNotFoundError when there is none yet)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(path)
    con = duckdb.connect(str(path), read_only=True)
    try:
        con.execute("set TimeZone = 'UTC'")
        yield con
    finally:
        con.close()


def publish_from_warehouse(warehouse: str | os.PathLike[str], path: str | os.PathLike[str]) -> dict:
    """Open the warehouse read-only and publish; raises ``duckdb.IOException`` while another
    process holds it for writing (the caller decides whether to wait)."""
    from meterworks.warehouse import connect

    con = connect(warehouse, read_only=True)
    try:
        return publish_snapshot(con, path)
    finally:
        con.close()
