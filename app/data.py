"""Data access for the app: read-only, cached queries over the warehouse *snapshot*
(``$METERWORKS_HOME/snapshot.duckdb``, see ``meterworks.snapshot``), never the warehouse
itself, so a running materialization neither blocks the app nor is blocked by it.

Queries run on cursors of one read-only connection per snapshot file version (opened on first
use, dropped when a newer file appears); results are cached for a short TTL and keyed by the
snapshot file's modification time, so a new snapshot shows at once.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import streamlit as st
from sqlalchemy.engine import Engine

from meterworks.config import settings
from meterworks.snapshot import snapshot_path

TTL_SECONDS = 60
EMPTY_STATE = (
    "No data yet — run `meterworks demo` for a demo, or `meterworks build` on your own data; "
    "this page fills in as soon as a build has published its snapshot."
)


class NoSnapshot(Exception):
    pass


def home() -> Path:
    return settings().home


def snapshot_file() -> Path:
    return snapshot_path(home())


def snapshot_version() -> int | None:
    try:
        return os.stat(snapshot_file()).st_mtime_ns
    except FileNotFoundError:
        return None


SNAPSHOT_ALIAS = "snapshot"
_CONNECTIONS: dict[str, tuple[int, duckdb.DuckDBPyConnection]] = {}
_CONNECTIONS_LOCK = threading.Lock()


def _open(path: str) -> tuple[int, duckdb.DuckDBPyConnection]:
    """A read-only connection to the snapshot file at ``path`` now, and that file's version.

    The file is ATTACHed to an in-memory database of its own rather than opened with
    ``duckdb.connect(path)``: DuckDB caches one database instance per path in a process, which
    would hand the previous file back while a session still reads it. On Linux the file is
    opened first and attached as ``/proc/self/fd/N``, so the connection reads exactly the file
    whose version was taken, even if a publish renames a new one over it meanwhile."""
    con = duckdb.connect(":memory:")
    if not Path("/proc/self/fd").is_dir():
        version = os.stat(path).st_mtime_ns
        quoted = path.replace("'", "''")
        con.execute(f"attach '{quoted}' as {SNAPSHOT_ALIAS} (read_only)")
        return version, con
    fd = os.open(path, os.O_RDONLY)
    try:
        version = os.fstat(fd).st_mtime_ns
        con.execute(f"attach '/proc/self/fd/{fd}' as {SNAPSHOT_ALIAS} (read_only)")
    finally:
        os.close(fd)  # DuckDB holds its own handle on the file
    return version, con


@contextlib.contextmanager
def _cursor(path: str, version: int) -> Iterator[duckdb.DuckDBPyConnection]:
    """A cursor on the process's connection to this version of the snapshot: the file is opened
    once per version (tens of ms on a large snapshot), not once per query. A session still
    reading an older version keeps that connection alive until its query ends."""
    with _CONNECTIONS_LOCK:
        held = _CONNECTIONS.get(path)
        if held is None or held[0] < version:
            _CONNECTIONS.pop(path, None)  # let the older file go once its last query ends
            held = _CONNECTIONS[path] = _open(path)
        con = held[1]
        cursor = con.cursor()  # (made under the lock: a connection is not thread-safe)
    try:
        cursor.execute(f"use {SNAPSHOT_ALIAS}")
        cursor.execute("set TimeZone = 'UTC'")
        yield cursor
    finally:
        cursor.close()


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False, max_entries=512)
def _frame(path: str, version: int, sql: str, params: tuple[Any, ...]) -> pd.DataFrame:
    with _cursor(path, version) as con:
        return con.execute(sql, list(params)).df()


def cursor() -> contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]:
    """A read-only cursor on the current snapshot (``NoSnapshot`` when there is none)."""
    version = snapshot_version()
    if version is None:
        raise NoSnapshot(str(snapshot_file()))
    return _cursor(str(snapshot_file()), version)


def frame(sql: str, params: tuple[Any, ...] | list[Any] = ()) -> pd.DataFrame:
    """The query's result over the current snapshot (``NoSnapshot`` when there is none)."""
    version = snapshot_version()
    if version is None:
        raise NoSnapshot(str(snapshot_file()))
    return _frame(str(snapshot_file()), version, sql, tuple(params))


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False, max_entries=16)
def _csv(path: str, version: int, sql: str, params: tuple[Any, ...]) -> bytes:
    with tempfile.TemporaryDirectory(prefix="meterworks-csv-") as tmp:
        out = Path(tmp) / "export.csv"
        with _cursor(path, version) as con:
            con.execute(f"copy ({sql}) to '{out}' (format csv, header)", list(params))
        return out.read_bytes()


def csv(sql: str, params: tuple[Any, ...] | list[Any] = ()) -> bytes:
    """The query's result as CSV with a header, written by DuckDB: decimals exact, timestamps
    as ``YYYY-MM-DD HH:MM:SS`` (UTC), NULL as an empty field; no pandas on the way, so a large
    export stays cheap."""
    version = snapshot_version()
    if version is None:
        raise NoSnapshot(str(snapshot_file()))
    return _csv(str(snapshot_file()), version, sql, tuple(params))


def scalar(sql: str, params: tuple[Any, ...] | list[Any] = ()) -> Any:
    df = frame(sql, params)
    return None if df.empty else df.iat[0, 0]


def tables() -> set[str]:
    """``schema.table`` names present in the snapshot."""
    if snapshot_version() is None:
        return set()
    df = frame(
        "select table_schema || '.' || table_name as name from information_schema.tables "
        "where table_catalog = current_database()"
    )
    return set(df["name"])


def has(*names: str) -> bool:
    present = tables()
    return all(n in present for n in names)


def snapshot_info() -> dict[str, Any] | None:
    if not has("app.snapshot_info"):
        return None
    df = frame("select published_at, warehouse from app.snapshot_info")
    return None if df.empty else df.iloc[0].to_dict()


def require_snapshot(*needed: str) -> None:
    """Draw the empty state and stop the page when there is no snapshot (or it lacks a table
    the page needs)."""
    if snapshot_version() is None:
        st.info(EMPTY_STATE, icon=":material/hourglass_empty:")
        st.stop()
    missing = [n for n in needed if not has(n)]
    if missing:
        st.info(
            f"No data for this page yet ({', '.join(missing)} not built). " + EMPTY_STATE,
            icon=":material/hourglass_empty:",
        )
        st.stop()


@st.cache_resource(show_spinner=False)
def _engine(url: str) -> Engine:
    from meterworks.state import make_engine, upgrade

    engine = make_engine(url)
    upgrade(engine)
    return engine


def state_engine() -> Engine:
    """The app-state database (adjustments, audit log, users), migrated on first use."""
    from meterworks.state import state_url

    return _engine(state_url(home()))


def customer_periods(customer_id: str) -> pd.DataFrame:
    """The customer's billing periods (period_start, period_end, currency, state), newest
    first: the open period of the projected invoice and the closed ones of reconciliation, else
    the calendar periods of its meter totals (customers billed from the catalog)."""
    parts = []
    if has("marts.fct_projected_invoice"):
        parts.append(
            "select period_start, period_end, any_value(currency) as currency, 'open' as state "
            "from marts.fct_projected_invoice where customer_id = $1 group by 1, 2"
        )
    if has("marts.fct_invoice_reconciliation"):
        parts.append(
            "select period_start, period_end, any_value(currency) as currency, 'closed' as state "
            "from marts.fct_invoice_reconciliation where customer_id = $1 group by 1, 2"
        )
    if not parts:
        return pd.DataFrame(columns=["period_start", "period_end", "currency", "state"])
    sql = " union all ".join(parts)
    df = frame(
        f"select period_start, period_end, any_value(currency) as currency, min(state) as state "
        f"from ({sql}) group by 1, 2 order by period_start desc",
        (customer_id,),
    )
    if df.empty and has("marts.fct_meter_totals"):
        df = frame(
            "select distinct period_start, period_end, null::varchar as currency, "
            "case when period_end > now()::timestamp then 'open' else 'closed' end as state "
            "from marts.fct_meter_totals where customer_id = $1 order by period_start desc",
            (customer_id,),
        )
    return df


def customers() -> pd.DataFrame:
    if not has("marts.dim_customers"):
        return pd.DataFrame(columns=["customer_id", "customer_name"])
    return frame(
        "select customer_id, coalesce(customer_name, customer_id) as customer_name, timezone, "
        "plan_code from marts.dim_customers order by customer_id"
    )


def stripe_customer_id(customer_id: str) -> str | None:
    if not has("app.stripe_customers"):
        return None
    return scalar(
        "select stripe_customer_id from app.stripe_customers where customer_id = $1 limit 1",
        (customer_id,),
    )


def deliveries(customer_id: str | None = None, limit: int = 200) -> pd.DataFrame:
    """Webhook deliveries from the delivery store (``meterworks.webhooks``): read through its
    public ``DeliveryStore.deliveries`` over our engine (no tables created; an empty frame when
    the store does not exist yet)."""
    columns = ["message_id", "event_type", "customer_id", "created_at", "target", "status",
               "attempts", "last_status_code", "last_error", "next_attempt_at", "delivered_at"]  # fmt: skip
    try:
        from meterworks.webhooks.store import DeliveryStore

        rows = DeliveryStore(state_engine()).deliveries(limit=limit, customer_id=customer_id)
    except Exception:  # no delivery store yet (no table), or it is unreachable
        return pd.DataFrame(columns=columns)
    df = pd.DataFrame(rows)
    return (
        df[[c for c in columns if c in df.columns]]
        if not df.empty
        else pd.DataFrame(columns=columns)
    )


def delivery_status_by_message() -> dict[str, str]:
    df = deliveries(limit=100_000)
    if df.empty:
        return {}
    order = {"succeeded": 0, "pending": 1, "failed": 2}
    df = df.assign(rank=df["status"].map(order).fillna(3)).sort_values("rank")
    return dict(df.groupby("message_id")["status"].first())
