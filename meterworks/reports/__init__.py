"""Report files written from the marts (plain Python, no Dagster): the finance MRR report."""

from meterworks.reports.mrr import (
    DEFAULT_MRR_POLICIES,
    ReportError,
    ReportFiles,
    check_mrr_data,
    mrr_policies,
    parse_month,
    write_mrr_report,
)

__all__ = [
    "DEFAULT_MRR_POLICIES",
    "ReportError",
    "ReportFiles",
    "check_mrr_data",
    "mrr_policies",
    "parse_month",
    "write_mrr_report",
]
