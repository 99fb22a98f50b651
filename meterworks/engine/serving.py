"""Serve the tables dbt built on Spark to every DuckDB reader (the app, the alerts, the CLI).

On ``METERWORKS_ENGINE=spark`` the marts live as Parquet table folders under Spark's warehouse
(``<spark dir>/warehouse/<schema>.db/<table>``). After each Spark build, every such table is
registered in the DuckDB warehouse as a view of the same name (``marts.fct_meter_totals`` ->
``read_parquet('…/marts.db/fct_meter_totals/**/*.parquet')``), so code that reads
``marts.<table>`` works the same on both engines and sees Spark's latest files. A DuckDB table
of that name left by an earlier DuckDB build is replaced; relations Spark did not build (the
raw tables, the alert marts the Python assets write) are never touched.

The DuckDB file has a single writer: registering views waits, boundedly, for the file lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import duckdb

from meterworks.warehouse import connect

T = TypeVar("T")

#: The dbt schemas whose Spark tables are served.
SERVED_SCHEMAS = ("staging", "intermediate", "marts")


@dataclass
class ServingResult:
    views: list[str] = field(default_factory=list)
    #: table folders without a Parquet file yet (an empty Spark table): left unregistered
    skipped: list[str] = field(default_factory=list)


def spark_table_folders(
    spark_warehouse: Path, schemas: Iterable[str] = SERVED_SCHEMAS
) -> list[tuple[str, str, Path]]:
    """``(schema, table, folder)`` of every table Spark keeps under ``spark_warehouse``."""
    found = []
    for schema in schemas:
        folder = spark_warehouse / f"{schema}.db"
        if folder.is_dir():
            found += [(schema, p.name, p) for p in sorted(folder.iterdir()) if p.is_dir()]
    return found


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _existing_kind(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> str | None:
    row = con.execute(
        "select table_type from information_schema.tables "
        "where table_schema = ? and table_name = ? and table_catalog = current_database()",
        [schema, table],
    ).fetchone()
    return row[0] if row else None


def serve_spark_tables(
    warehouse: Path,
    spark_warehouse: Path,
    schemas: Iterable[str] = SERVED_SCHEMAS,
    *,
    lock_timeout_s: float = 600.0,
) -> ServingResult:
    """(Re)register every Spark table as a DuckDB view; see the module docstring."""
    result = ServingResult()
    tables = spark_table_folders(spark_warehouse, schemas)
    if not tables:
        return result
    con = retry_on_lock(lambda: connect(warehouse), lock_timeout_s)
    try:
        con.execute("begin transaction")
        for schema, table, folder in tables:
            name = f"{schema}.{table}"
            if not any(folder.rglob("*.parquet")):
                result.skipped.append(name)
                continue
            relation = f"{_quote(schema)}.{_quote(table)}"
            con.execute(f"create schema if not exists {_quote(schema)}")
            if _existing_kind(con, schema, table) == "BASE TABLE":
                con.execute(f"drop table {relation}")
            glob = _literal(f"{folder}/**/*.parquet")
            con.execute(
                f"create or replace view {relation} as select * from read_parquet({glob}, "
                "hive_partitioning = true, union_by_name = true)"
            )
            result.views.append(name)
        con.execute("commit")
    finally:
        con.close()
    return result


def retry_on_lock(action: Callable[[], T], timeout_s: float = 600.0) -> T:
    """Run ``action``, retrying (bounded, with backoff) while another process holds the DuckDB
    file lock: on Spark the dbt step is not in the DuckDB pool, so an ingest may be writing."""
    deadline = time.monotonic() + timeout_s
    delay = 0.2
    while True:
        try:
            return action()
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
