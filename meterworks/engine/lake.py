"""The raw tables on shared storage: DuckDB ``raw.*`` exported as Parquet for Spark.

Layout under the lake directory (``$METERWORKS_HOME/lake`` or ``METERWORKS_LAKE``), one folder
per table, readable by any Parquet engine (Spark, DuckDB, Trino...) and movable as is to an
object-store prefix:

    events/event_date=YYYY-MM-DD/events-b<first>-<last>_<i>.parquet   hive-partitioned by the
                                                                       UTC date of event_ts
    quarantine/quarantine-b<first>-<last>.parquet                      one file per export
    <table>/part-0.parquet                                             small tables, rewritten

``raw.events`` and ``raw.quarantine`` are append-only and every row carries its ingest batch,
so an export only writes the batches committed since the last one (``_lake_state.json`` keeps
the high-water mark). Files are named by their batch range: a crashed export leaves files
whose range starts after the recorded mark, and the next export deletes them before writing,
so the lake never counts a batch twice. The other tables are small and rewritten whole (into a
fresh folder swapped in place). Timestamps are written as UTC instants (Parquet
``isAdjustedToUTC``), so every engine reads them as the same instants; JSON as text.

Spark reads each folder through a view ``raw.<table>`` (macro ``register_lake_sources``, run at
the start of every dbt invocation on Spark), so the dbt sources are the same on both engines.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

#: Raw tables dbt reads (the dbt sources), with how each is exported.
APPEND_ONLY = {"events": "event_date", "quarantine": None}
FULL_TABLES = (
    "ingest_batches",
    "catalog_meters",
    "catalog_customers",
    "catalog_plan_charges",
    "catalog_price_tiers",
    "adjustments",
    "stripe_objects",
)
#: Not in the DuckDB warehouse: the FX table CSV, exported so Spark reads only the lake.
FX_TABLE = "fx_rates"
LAKE_TABLES = (*APPEND_ONLY, *FULL_TABLES, FX_TABLE)

STATE_FILE = "_lake_state.json"


@dataclass(frozen=True)
class ExportResult:
    tables: dict[str, int]
    batches: tuple[int, int] | None  # new batch range exported (events/quarantine), if any
    seconds: float


def _is_uri(lake: str | Path) -> bool:
    return "://" in str(lake)


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """Select list that writes portable Parquet: naive-UTC timestamps as UTC instants, JSON as
    text, unsigned 64-bit integers as decimal(20, 0) (what Spark reads them as)."""
    rows = con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = 'raw' and table_name = ? order by ordinal_position",
        [table],
    ).fetchall()
    if not rows:
        raise LookupError(f"raw.{table} does not exist in the warehouse")
    out = []
    for name, data_type in rows:
        kind = data_type.upper()
        if kind == "TIMESTAMP":
            out.append(f'timezone(\'UTC\', "{name}") as "{name}"')
        elif kind == "JSON":
            out.append(f'cast("{name}" as varchar) as "{name}"')
        elif kind == "UBIGINT":
            out.append(f'cast("{name}" as decimal(20, 0)) as "{name}"')
        else:
            out.append(f'"{name}"')
    return out


def _read_state(lake: Path) -> dict[str, Any]:
    path = lake / STATE_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def _write_state(lake: Path, state: dict[str, Any]) -> None:
    tmp = lake / f".{STATE_FILE}.{uuid.uuid4().hex}"
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
    os.replace(tmp, lake / STATE_FILE)


def _batch_range_start(name: str) -> int | None:
    """First batch of a lake file named ``<table>-b<first>-<last>...``."""
    try:
        return int(name.split("-b", 1)[1].split("-", 1)[0])
    except (IndexError, ValueError):
        return None


def _drop_uncommitted(folder: Path, exported_until: int) -> None:
    """Delete files of a crashed export (batch range beyond the recorded mark)."""
    if not folder.exists():
        return
    for path in folder.rglob("*.parquet"):
        start = _batch_range_start(path.name)
        if start is not None and start > exported_until:
            path.unlink()


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def _copy(con: duckdb.DuckDBPyConnection, select: str, target: Path, options: str = "") -> None:
    con.execute(
        f"copy ({select}) to '{_sql_path(target)}' (format parquet, compression zstd{options})"
    )


def _replace_folder(lake: Path, table: str, write) -> None:
    """Write a table into a fresh folder, then swap it in (readers never see half a table)."""
    staging = lake / f".{table}.{uuid.uuid4().hex}"
    staging.mkdir(parents=True)
    try:
        write(staging)
        final = lake / table
        old = lake / f".{table}.old.{uuid.uuid4().hex}"
        if final.exists():
            os.replace(final, old)
        os.replace(staging, final)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _export_events(
    con: duckdb.DuckDBPyConnection, lake: Path, after: int, until: int, empty_marker: bool
) -> int:
    folder = lake / "events"
    folder.mkdir(parents=True, exist_ok=True)
    columns = ", ".join(_columns(con, "events"))
    where = f"batch_id > {after} and batch_id <= {until}"
    count = con.execute(f"select count(*) from raw.events where {where}").fetchone()[0]
    if count:
        select = (
            f"select {columns}, cast(event_ts as date) as event_date from raw.events where {where}"
        )
        _copy(
            con,
            select,
            folder,
            f", partition_by (event_date), overwrite_or_ignore true, "
            f"filename_pattern 'events-b{after + 1:012d}-{until:012d}_{{i}}'",
        )
    elif empty_marker and not any(folder.rglob("*.parquet")):
        # Spark infers a folder's schema from its files: give an empty store one empty file
        # in a partition of its own (never matched by a real event date).
        marker = folder / "event_date=1970-01-01"
        marker.mkdir(exist_ok=True)
        _copy(con, f"select {columns} from raw.events where false", marker / "empty.parquet")
    return count


def _export_quarantine(con: duckdb.DuckDBPyConnection, lake: Path, after: int, until: int) -> int:
    folder = lake / "quarantine"
    folder.mkdir(parents=True, exist_ok=True)
    columns = ", ".join(_columns(con, "quarantine"))
    where = f"batch_id > {after} and batch_id <= {until}"
    count = con.execute(f"select count(*) from raw.quarantine where {where}").fetchone()[0]
    if count or not any(folder.glob("*.parquet")):
        name = f"quarantine-b{after + 1:012d}-{until:012d}.parquet" if count else "empty.parquet"
        _copy(con, f"select {columns} from raw.quarantine where {where}", folder / name)
    return count


def _fx_rates_select(fx_path: Path) -> str:
    """The same read of the FX CSV as the DuckDB model int_fx_rates."""
    return (
        f"select * from read_csv('{_sql_path(fx_path)}', header = true, "
        "columns = {'currency': 'VARCHAR', 'month': 'DATE', 'rate_to_reporting': 'VARCHAR'})"
    )


def default_fx_rates() -> Path:
    from meterworks.config import REPO_ROOT

    explicit = os.environ.get("METERWORKS_FX_RATES")
    return (
        Path(explicit).expanduser().resolve() if explicit else REPO_ROOT / "data" / "fx_rates.csv"
    )


def export_lake(
    warehouse: str | Path,
    lake: str | Path,
    *,
    full: bool = False,
    fx_rates: str | Path | None = None,
) -> ExportResult:
    """Export the raw tables dbt reads from the DuckDB warehouse to Parquet under ``lake``.

    Incremental by default (events and quarantine of batches committed since the last export;
    the small tables rewritten); ``full`` rewrites everything."""
    if _is_uri(lake):
        raise NotImplementedError(
            "export to an object store: write to a local lake and sync it (e.g. `aws s3 sync`)"
        )
    from meterworks.warehouse import connect, ensure_raw_schema

    with connect(warehouse) as rw:  # a fresh home: the raw tables exist, empty
        ensure_raw_schema(rw)
    started = time.perf_counter()
    lake = Path(lake)
    lake.mkdir(parents=True, exist_ok=True)
    state = {} if full else _read_state(lake)
    if full:
        for table in APPEND_ONLY:
            shutil.rmtree(lake / table, ignore_errors=True)
    after = int(state.get("exported_batch_id", -1))

    con = connect(warehouse, read_only=True)
    try:
        con.execute("begin transaction")  # one snapshot for every table
        until = int(
            con.execute("select coalesce(max(batch_id), -1) from raw.ingest_batches").fetchone()[0]
        )
        until = max(until, after)
        counts: dict[str, int] = {}
        for table in APPEND_ONLY:
            _drop_uncommitted(lake / table, after)
        counts["events"] = _export_events(con, lake, after, until, empty_marker=True)
        counts["quarantine"] = _export_quarantine(con, lake, after, until)
        for table in FULL_TABLES:
            select = f"select {', '.join(_columns(con, table))} from raw.{table}"
            counts[table] = con.execute(f"select count(*) from raw.{table}").fetchone()[0]
            _replace_folder(lake, table, lambda d, s=select: _copy(con, s, d / "part-0.parquet"))
        fx = Path(fx_rates) if fx_rates else default_fx_rates()
        fx_select = _fx_rates_select(fx)
        counts[FX_TABLE] = con.execute(f"select count(*) from ({fx_select})").fetchone()[0]
        _replace_folder(lake, FX_TABLE, lambda d: _copy(con, fx_select, d / "part-0.parquet"))
        con.execute("commit")
    finally:
        con.close()
    _write_state(
        lake,
        {
            "exported_batch_id": until,
            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "tables": list(LAKE_TABLES),
        },
    )
    return ExportResult(
        tables=counts,
        batches=(after + 1, until) if until > after else None,
        seconds=round(time.perf_counter() - started, 3),
    )
