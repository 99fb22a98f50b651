"""Asset checks on the billing marts: warn when Stripe and the measured usage disagree."""

import dagster as dg

from dagster_project.defs.resources import MeterworksResource
from meterworks.warehouse import open_warehouse

#: How many flagged rows the check's metadata lists in full.
LISTED = 25


@dg.asset_check(
    asset="fct_invoice_reconciliation",
    description="Every closed period of every metered Stripe charge reconciles (status matched).",
)
def invoices_match_usage(meterworks: MeterworksResource) -> dg.AssetCheckResult:
    with open_warehouse(meterworks.settings().warehouse, read_only=True) as con:
        by_status = dict(
            con.execute(
                "select status, count(*) from marts.fct_invoice_reconciliation group by 1"
            ).fetchall()
        )
        flagged = con.execute(
            f"""
            select status, customer_id, meter_code, strftime(period_start, '%Y-%m-%d %H:%M'),
                   measured_quantity, invoiced_quantity, expected_amount, invoiced_amount,
                   currency, invoice_ids
            from marts.fct_invoice_reconciliation
            where status != 'matched'
            order by status, customer_id, period_start
            limit {LISTED}
            """
        ).fetchall()
        accounts = [
            row[0]
            for row in con.execute(
                "select distinct customer_id from marts.fct_invoice_reconciliation "
                "where status != 'matched' order by 1"
            ).fetchall()
        ]
    mismatches = sum(n for status, n in by_status.items() if status != "matched")
    rows = [
        {
            "status": status,
            "customer_id": customer,
            "meter_code": meter,
            "period_start_utc": start,
            "measured_quantity": str(measured),
            "invoiced_quantity": None if invoiced is None else str(invoiced),
            "expected_amount": expected,
            "invoiced_amount": billed,
            "currency": currency,
            "invoice_ids": invoices,
        }
        for status, customer, meter, start, measured, invoiced, expected, billed, currency, invoices in flagged
    ]
    return dg.AssetCheckResult(
        passed=mismatches == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "mismatches": mismatches,
            "by_status": dg.MetadataValue.json(by_status),
            "accounts": dg.MetadataValue.json(accounts),
            "flagged": dg.MetadataValue.json(rows),
        },
    )
