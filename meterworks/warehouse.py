"""The DuckDB warehouse: connections, the ``raw`` schema that ingestion owns, catalog tables.

dbt owns every other schema. The DDL here is the contract documented in
``docs/architecture.md``; dbt reads these tables as sources.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd

from meterworks.catalog import Catalog

#: DuckDB memory ceiling; keeps the whole process under the 4 GB budget on small machines.
DEFAULT_MEMORY_LIMIT = os.environ.get("METERWORKS_DUCKDB_MEMORY_LIMIT", "3GB")

RAW_DDL = """
create schema if not exists raw;

create table if not exists raw.events (
    event_seq bigint not null,
    batch_id bigint not null,
    -- unique per event, so dictionary/FSST analysis finds nothing to share and costs ~2.5x
    -- zstd's CPU on every ingested row, for a column only ~15% smaller
    transaction_id varchar using compression zstd not null,
    action varchar not null,
    corrects_transaction_id varchar,
    customer_id varchar not null,
    event_name varchar not null,
    event_ts timestamp not null,
    properties varchar not null,
    source_shape varchar not null,
    source_file varchar not null,
    source_line bigint,
    ingested_at timestamp not null
);
-- Older warehouses stored an MD5 content_hash per event; ingestion now compares the content
-- itself, only for the ids a batch sees twice or already stored. It was a function of the
-- stored columns, so dropping it loses nothing (a no-op, with no write, once it is gone).
alter table raw.events drop column if exists content_hash;

create table if not exists raw.quarantine (
    batch_id bigint not null,
    source_file varchar not null,
    source_line bigint,
    raw_text varchar not null,
    reason varchar not null,
    detail varchar,
    transaction_id varchar,
    customer_id varchar,
    event_name varchar,
    quarantined_at timestamp not null
);

create table if not exists raw.ingest_batches (
    batch_id bigint not null,
    started_at timestamp not null,
    committed_at timestamp not null,
    files varchar not null,
    rows_read bigint not null,
    accepted bigint not null,
    duplicates bigint not null,
    conflicts bigint not null,
    quarantined bigint not null,
    corrections bigint not null,
    first_event_seq bigint,
    last_event_seq bigint
);

create table if not exists raw.catalog_meters (
    meter_code varchar not null,
    event_name varchar not null,
    aggregation varchar not null,
    property varchar,
    group_by varchar not null,
    filters varchar not null,
    unit varchar,
    description varchar
);

create table if not exists raw.catalog_plan_charges (
    plan_code varchar not null,
    meter_code varchar not null,
    included decimal(38, 9),
    price_id varchar,
    currency varchar,
    billing_scheme varchar,
    tiers_mode varchar,
    unit_amount_decimal decimal(38, 12),
    divide_by bigint,
    round_mode varchar
);

create table if not exists raw.catalog_price_tiers (
    price_id varchar not null,
    tier_index integer not null,
    up_to decimal(38, 12),
    unit_amount_decimal decimal(38, 12),
    flat_amount_decimal decimal(38, 12)
);

create table if not exists raw.catalog_customers (
    customer_id varchar not null,
    name varchar,
    timezone varchar not null,
    plan_code varchar
);

-- ops adjustments, copied from the app-state database (meterworks.state) before each build
create table if not exists raw.adjustments (
    adjustment_id varchar not null,
    customer_id varchar not null,
    kind varchar not null,
    meter_code varchar,
    period_start timestamp not null,
    period_end timestamp not null,
    amount_minor bigint,
    currency varchar,
    quantity decimal(38, 9),
    reason_code varchar not null,
    note varchar,
    created_by varchar not null,
    created_at timestamp not null,
    voided_at timestamp
);
"""


def connect(path: str | Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection with the session settings every Meterworks query assumes (UTC)."""
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    con.execute("set TimeZone = 'UTC'")
    con.execute(f"set memory_limit = '{DEFAULT_MEMORY_LIMIT}'")
    return con


@contextmanager
def open_warehouse(
    path: str | Path, *, read_only: bool = False
) -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect(path, read_only=read_only)
    try:
        yield con
    finally:
        con.close()


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Every raw table dbt reads, the Stripe sync's included (empty until a first sync)."""
    from meterworks.stripe_sync.schema import ensure_stripe_schema

    con.execute(RAW_DDL)
    ensure_stripe_schema(con)


def _replace_rows(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict]) -> None:
    """Replace a (small) catalog table's rows; values are bound, so decimals stay exact."""
    con.execute(f"delete from {table}")
    if rows:
        columns = list(rows[0])
        placeholders = ", ".join("?" for _ in columns)
        con.executemany(
            f"insert into {table} ({', '.join(columns)}) values ({placeholders})",
            [[row[c] for c in columns] for row in rows],
        )


def sync_catalog(con: duckdb.DuckDBPyConnection, catalog: Catalog) -> None:
    """Replace the catalog tables with the catalog's current content, atomically."""
    ensure_raw_schema(con)
    meters = pd.DataFrame(
        catalog.meter_rows(),
        columns=[
            "meter_code",
            "event_name",
            "aggregation",
            "property",
            "group_by",
            "filters",
            "unit",
            "description",
        ],
    )
    customers = pd.DataFrame(
        catalog.customer_rows(), columns=["customer_id", "name", "timezone", "plan_code"]
    ).astype(
        {"customer_id": "string", "name": "string", "timezone": "string", "plan_code": "string"}
    )
    con.execute("begin transaction")
    try:
        con.execute("delete from raw.catalog_meters")
        con.register("catalog_meters_frame", meters)
        con.execute("insert into raw.catalog_meters select * from catalog_meters_frame")
        con.execute("delete from raw.catalog_customers")
        con.register("catalog_customers_frame", customers)
        con.execute("insert into raw.catalog_customers select * from catalog_customers_frame")
        _replace_rows(con, "raw.catalog_plan_charges", catalog.plan_charge_rows())
        _replace_rows(con, "raw.catalog_price_tiers", catalog.price_tier_rows())
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    finally:
        con.unregister("catalog_meters_frame")
        con.unregister("catalog_customers_frame")
