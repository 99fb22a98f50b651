"""Adjustments into the warehouse: ``raw.adjustments``, rewritten whole on every call, for the
dbt models (projected invoice, reconciliation) to apply.

Columns (timestamps naive UTC, like the marts):

=================  ===============  ======================================================
adjustment_id      varchar          ``adj_...``, the id in the app-state database
customer_id        varchar          Meterworks customer id
kind               varchar          ``credit`` | ``usage``
meter_code         varchar          the meter (always for usage; optional for a credit)
period_start       timestamp        start of the billing period (as in the billing marts)
period_end         timestamp        end of that period
amount_minor       bigint           credit: positive minor units owed to the customer; null
                                    for usage
currency           varchar          credit: lower-case ISO code; null for usage
quantity           decimal(38,9)    usage: signed quantity added to the measured usage; null
                                    for a credit
reason_code        varchar          see ``meterworks.state.REASON_CODES``
note               varchar          free text
created_by         varchar          who made it
created_at         timestamp        when
voided_at          timestamp        when it was voided (null while in force)
=================  ===============  ======================================================
"""

from __future__ import annotations

import duckdb
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from meterworks.state.models import adjustments

COLUMNS: tuple[tuple[str, str], ...] = (
    ("adjustment_id", "varchar not null"),
    ("customer_id", "varchar not null"),
    ("kind", "varchar not null"),
    ("meter_code", "varchar"),
    ("period_start", "timestamp not null"),
    ("period_end", "timestamp not null"),
    ("amount_minor", "bigint"),
    ("currency", "varchar"),
    ("quantity", "decimal(38, 9)"),
    ("reason_code", "varchar not null"),
    ("note", "varchar"),
    ("created_by", "varchar not null"),
    ("created_at", "timestamp not null"),
    ("voided_at", "timestamp"),
)
DDL = "create or replace table raw.adjustments (\n    {}\n)".format(
    ",\n    ".join(f"{name} {kind}" for name, kind in COLUMNS)
)


def export_adjustments(engine: Engine, con: duckdb.DuckDBPyConnection) -> int:
    """(Re)write ``raw.adjustments`` from the state database in one DuckDB transaction (an
    empty table when there are none). Returns the number of rows written."""
    names = [name for name, _ in COLUMNS]
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(*(adjustments.c[n] for n in names)).order_by(
                adjustments.c.created_at, adjustments.c.adjustment_id
            )
        ).all()
    con.execute("begin")
    try:
        con.execute("create schema if not exists raw")
        con.execute(DDL)
        if rows:
            placeholders = ", ".join("?" for _ in names)
            con.executemany(
                f"insert into raw.adjustments values ({placeholders})", [tuple(r) for r in rows]
            )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return len(rows)
