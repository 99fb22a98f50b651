"""The MRR report job and its monthly schedule (the month just closed, on the 1st)."""

import dagster as dg

from dagster_project.defs.pipeline import WAREHOUSE_EXECUTOR, WAREHOUSE_RUN_TAGS
from dagster_project.defs.revenue.assets import mrr_report
from dagster_project.defs.revenue.partitions import monthly_report_partitions

#: one month's report (``meterworks report mrr --month YYYY-MM`` runs it with that partition)
mrr_report_job = dg.define_asset_job(
    "meterworks_mrr_report",
    selection=dg.AssetSelection.assets(mrr_report),
    partitions_def=monthly_report_partitions,
    description="Write the finance MRR report (CSV + Excel) for one closed month.",
    # it reads the warehouse: not beside a build (DuckDB refuses a reader next to a writer)
    tags=WAREHOUSE_RUN_TAGS,
    executor_def=WAREHOUSE_EXECUTOR,
)

#: 06:00 UTC on the 1st: the partition of the month that closed at midnight
monthly_mrr_report = dg.build_schedule_from_partitioned_job(
    mrr_report_job,
    name="monthly_mrr_report",
    day_of_month=1,
    hour_of_day=6,
    minute_of_hour=0,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="06:00 UTC on the 1st: the MRR report for the month just closed.",
)
