"""The short text summary printed after ``meterworks demo`` / ``meterworks run``."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from meterworks import health
from meterworks.pricing import minor_unit_exponent
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


def money(minor_units: int | None, currency: str | None) -> str:
    """Minor units as a display amount, exactly (``12345, 'usd'`` -> ``'USD 123.45'``)."""
    if minor_units is None:
        return "-"
    code = (currency or "usd").lower()
    amount = Decimal(int(minor_units)).scaleb(-minor_unit_exponent(code))
    return f"{code.upper()} {amount:,.{minor_unit_exponent(code)}f}"


def _billing_lines(con, top: int) -> list[str]:
    lines: list[str] = []
    if _has_table(con, "marts", "fct_invoice_reconciliation"):
        statuses = con.execute(
            "select status, count(*) from marts.fct_invoice_reconciliation "
            "group by 1 order by 2 desc, 1"
        ).fetchall()
        if statuses:
            lines.append(
                "  reconciliation (customer x closed period x meter): "
                + ", ".join(f"{status} {_fmt(n)}" for status, n in statuses)
            )
        flagged = con.execute(
            """
            select customer_id, meter_code, period_start, period_end, status,
                   measured_quantity, invoiced_quantity, expected_amount, invoiced_amount, currency
            from marts.fct_invoice_reconciliation
            where status != 'matched'
            order by status, customer_id, meter_code, period_start
            """
        ).fetchall()
        for c, meter, start, end, status, measured, invoiced, expected, billed, cur in flagged:
            invoiced_text = "no invoice" if invoiced is None else _fmt(float(invoiced))
            lines.append(
                f"    {status}: {c} {meter} {start:%Y-%m-%d %H:%M}..{end:%Y-%m-%d %H:%M} UTC, "
                f"measured {_fmt(float(measured))} vs invoiced {invoiced_text}; "
                f"expected {money(expected, cur)} vs invoiced {money(billed, cur)}"
            )
    if _has_table(con, "marts", "fct_projected_invoice"):
        totals = con.execute(
            """
            select currency, count(distinct customer_id), sum(amount_to_date),
                   sum(projected_amount)
            from marts.fct_projected_invoice
            where projected_amount is not null
            group by 1 order by 1
            """
        ).fetchall()
        for cur, customers, to_date, projected in totals:
            lines.append(
                f"  open periods: {_fmt(customers)} customers, {money(to_date, cur)} accrued to "
                f"date, {money(projected, cur)} projected at period end"
            )
        biggest = con.execute(
            """
            select customer_id, currency, sum(projected_amount) as projected
            from marts.fct_projected_invoice
            group by 1, 2 order by projected desc nulls last, 1 limit ?
            """,
            [top],
        ).fetchall()
        if biggest:
            lines.append(
                "    largest projected invoices: "
                + ", ".join(f"{c} {money(amount, cur)}" for c, cur, amount in biggest)
            )
    return lines


def _mrr_lines(con) -> list[str]:
    """The MRR bridge of the last closed month (the month before the newest one)."""
    if not _has_table(con, "marts", "fct_mrr_movements"):
        return []
    rows = con.execute(
        """
        select month, reporting_currency, starting_mrr, new_mrr, expansion_mrr,
               reactivation_mrr, contraction_mrr, churned_mrr, ending_mrr, ending_customers, nrr
        from marts.fct_mrr_movements
        order by month desc
        limit 2
        """
    ).fetchall()
    if len(rows) < 2:
        return []
    month, cur, start, new, expansion, reactivation, contraction, churn, end, customers, nrr = rows[
        1
    ]

    def amount(minor) -> str:
        return money(int(Decimal(minor).to_integral_value(rounding="ROUND_HALF_UP")), cur)

    nrr_text = "-" if nrr is None else f"{float(nrr):.1%}"
    return [
        f"  MRR {month:%Y-%m} (last closed month): {amount(start)} + new {amount(new)} "
        f"+ expansion {amount(expansion)} + reactivation {amount(reactivation)} "
        f"- contraction {amount(contraction)} - churn {amount(churn)} = {amount(end)} "
        f"({_fmt(customers)} paying customers, NRR {nrr_text}); "
        f"`meterworks report mrr --month {month:%Y-%m}` writes the finance report"
    ]


def _alert_lines(con) -> list[str]:
    """Quota thresholds (fired, armed, passed), usage anomalies (recent ones explained), and
    the outbox."""
    lines = []
    if _has_table(con, "alerts", "threshold_state"):
        by_status = dict(
            con.execute(
                "select status, count(*) from alerts.threshold_state group by 1 order by 1"
            ).fetchall()
        )
        lines.append(
            f"  quota thresholds: {_fmt(by_status.get('fired', 0))} crossings fired, "
            f"{_fmt(by_status.get('armed', 0))} armed, {_fmt(by_status.get('passed', 0))} "
            "already passed when first evaluated (never fire this period)"
        )
        closest = con.execute(
            """
            select customer_id, meter_code, quantity * 100 / included as used, included
            from alerts.threshold_periods
            where included > 0 and period_end > now()::timestamp
            order by used desc, customer_id, meter_code
            limit 3
            """
        ).fetchall()
        if closest:
            lines.append(
                "    most of their allowance used this period: "
                + ", ".join(
                    f"{c} {m} {float(u):.0f}% of {_fmt(float(i))}" for c, m, u, i in closest
                )
            )
    if _has_table(con, "marts", "fct_usage_anomalies"):
        days, anomalies, incidents, last = con.execute(
            """
            select count(distinct window_start), count(*) filter (where is_anomaly),
                   count(*) filter (where is_alert), max(window_start)
            from marts.fct_usage_anomalies
            where granularity = 'day'
              and window_start >= (select max(window_start) from marts.fct_usage_anomalies
                                   where granularity = 'day') - interval 29 day
            """
        ).fetchone()
        if days:
            lines.append(
                f"  usage anomalies, last {days} complete days (to {last:%Y-%m-%d}): "
                f"{_fmt(anomalies)} anomalous customer-meter-days in {_fmt(incidents)} incidents;"
                " the latest:"
            )
            for customer, severity, text in con.execute(
                """
                select customer_id, severity, explanation from marts.fct_usage_anomalies
                where is_alert and granularity = 'day'
                order by window_start desc, score desc, customer_id
                limit 3
                """
            ).fetchall():
                lines.append(f"    {customer} [{severity}]: {text}")
    if _has_table(con, "alerts", "outbox"):
        queued = con.execute(
            "select event_type, count(*) from alerts.outbox where delivery_status = 'pending' "
            "group by 1 order by 1"
        ).fetchall()
        text = ", ".join(f"{_fmt(n)} {t}" for t, n in queued) or "none"
        lines.append(f"  alerts pending webhook delivery (alerts.outbox): {text}")
    return lines


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
        # the last month whose periods have all ended, else the newest (still open) one
        latest, closed = con.execute(
            """
            select
                coalesce(max(period_month) filter (where closed), max(period_month)),
                max(period_month) filter (where closed) is not null
            from (
                select period_month, max(period_end) <= now()::timestamp as closed
                from marts.fct_meter_totals
                group by 1
            )
            """
        ).fetchone()
        state = "closed" if closed else "open, to date"
        lines.append(
            f"  top customers by usage, billing period {latest:%Y-%m} ({state}; customer's "
            "local month):"
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
        lines.extend(_billing_lines(con, top))
        lines.extend(_mrr_lines(con))
        lines.extend(_alert_lines(con))
        sizes = con.execute(
            """
            select table_name, estimated_size from duckdb_tables()
            where schema_name = 'marts' order by table_name
            """
        ).fetchall()
        lines.append("  marts: " + ", ".join(f"{name} ({_fmt(rows)} rows)" for name, rows in sizes))
    return "\n".join(lines)
