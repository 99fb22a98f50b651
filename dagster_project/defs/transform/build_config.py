"""The flags of a ``dbt build`` run by the dbt ops, and the run config that sets them.

Kept apart from ``assets`` (which needs the parsed manifest at import) so the CLI can build
run config before the manifest exists.
"""

from typing import Any

import dagster as dg


def dbt_build_args(full_refresh: bool, unit_tests: bool = False, audit: bool = False) -> list[str]:
    """``dbt build`` for a pipeline run. dbt unit tests check the SQL, not the data, so they run
    in the test suite and CI (``unit_tests`` on demand), not on every hourly build; the
    history-wide ``audit`` tests run nightly (see dbt_project.yml). ``--no-write-json``: the
    ops read dbt's structured log, not its JSON artifacts, and writing the manifest (and run
    results) every run costs a few tenths of a second on the fresh-usage path."""
    args = ["build", "--no-write-json"]
    if full_refresh:
        args.append("--full-refresh")
    if not unit_tests:
        args += ["--exclude-resource-type", "unit_test"]
    if not audit:
        args += ["--exclude", "tag:audit"]
    return args


class DbtBuildConfig(dg.Config):
    full_refresh: bool = False
    unit_tests: bool = False
    audit: bool = False


#: The hourly usage mart is the largest aggregation of the project and nothing in dbt reads it
#: (the daily mart and the period totals aggregate the meter events themselves), so it is built
#: by a second dbt invocation after every other model: billing-critical totals never queue
#: behind it.
HOURLY_USAGE_MODEL = "fct_usage_hourly"


#: Every op that runs dbt; a build's flags go to each of them.
DBT_OPS = ("meterworks_dbt_models", "meterworks_dbt_hourly")


def dbt_run_config(
    full_refresh: bool = False, unit_tests: bool = False, audit: bool = False
) -> dict[str, Any]:
    """Run config handing the same ``dbt build`` flags to every dbt op of a build job."""
    flags = {"full_refresh": full_refresh, "unit_tests": unit_tests, "audit": audit}
    return {"ops": {name: {"config": dict(flags)} for name in DBT_OPS}}
