"""The short text summary printed after ``meterworks demo`` / ``meterworks run``."""

from __future__ import annotations

from pathlib import Path

from meterworks import health
from meterworks.warehouse import ensure_raw_schema, open_warehouse


def _fmt(number: float | int) -> str:
    if isinstance(number, float) and not number.is_integer():
        return f"{number:,.2f}"
    return f"{int(number):,}"


def _has_table(con, schema: str, table: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchone()[0]
    )


def render_summary(warehouse: Path, top: int = 5) -> str:
    lines: list[str] = []
    with open_warehouse(warehouse) as con:
        ensure_raw_schema(con)
        t = health.totals(con)
        lines.append("Meterworks summary")
        lines.append(f"  warehouse: {warehouse}")
        lines.append(
            f"  events: {_fmt(t['rows_read'])} rows read in {t['batches']} batch(es) -> "
            f"{_fmt(t['accepted'])} accepted ({_fmt(t['corrections'])} corrections), "
            f"{_fmt(t['duplicates'])} duplicates dropped, {_fmt(t['conflicts'])} conflicts kept "
            f"for review, {_fmt(t['quarantined'])} quarantined"
        )
        reasons = health.quarantine_by_reason(con)
        if reasons:
            lines.append(
                "  quarantined by reason: " + ", ".join(f"{r} {n}" for r, n in reasons.items())
            )
        if not _has_table(con, "marts", "fct_meter_totals"):
            lines.append("  (no marts yet: run `meterworks build`)")
            return "\n".join(lines)
        latest = con.execute("select max(period_month) from marts.fct_meter_totals").fetchone()[0]
        lines.append(
            f"  top customers by usage, billing period {latest:%Y-%m} (customer's local month):"
        )
        meters = con.execute(
            "select meter_code, coalesce(unit, '') from marts.dim_meters order by meter_code"
        ).fetchall()
        for meter_code, unit in meters:
            rows = con.execute(
                """
                select customer_id, sum(quantity) as quantity
                from marts.fct_meter_totals
                where meter_code = ? and period_month = ?
                group by customer_id
                order by quantity desc, customer_id
                limit ?
                """,
                [meter_code, latest, top],
            ).fetchall()
            ranked = ", ".join(f"{c} {_fmt(float(q))}" for c, q in rows)
            lines.append(f"    {meter_code}{f' ({unit})' if unit else ''}: {ranked or '-'}")
        sizes = con.execute(
            """
            select table_name, estimated_size from duckdb_tables()
            where schema_name = 'marts' order by table_name
            """
        ).fetchall()
        lines.append("  marts: " + ", ".join(f"{name} ({_fmt(rows)} rows)" for name, rows in sizes))
    return "\n".join(lines)
