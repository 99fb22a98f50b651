"""Monthly partitions of the finance reports: one per closed calendar month (UTC)."""

from datetime import date

import dagster as dg

#: first month a report can be produced for; ``end_offset=0``: the current (open) month is not a
#: partition until it has closed.
MRR_REPORT_START = "2024-01-01"

monthly_report_partitions = dg.MonthlyPartitionsDefinition(
    start_date=MRR_REPORT_START, end_offset=0, timezone="UTC"
)


def partition_key(month: date) -> str:
    """The partition key of a month (``2026-10-01``)."""
    return f"{month:%Y-%m}-01"
