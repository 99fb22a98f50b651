"""The dbt CLI resource, minus two start-up costs Meterworks does not need.

Before starting dbt, dagster-dbt's ``DbtCliResource.cli`` runs ``dbt --version`` in a
subprocess (~2.7 s here) and loads every dbt macro in-process to build an adapter handle
(~1.8 s), which it only uses for optional column and row-count metadata that Meterworks does
not request. On an hourly build whose dbt work takes a few seconds that doubled the latency.
The dbt run is beside this interpreter (``DBT_EXECUTABLE``), so its version is the installed
dbt-core's. Both hooks are private dagster-dbt API, pinned by ``dagster-dbt<0.30``;
``tests/test_defs.py`` checks they still exist.
"""

from functools import cached_property
from importlib.metadata import version as installed_version

from dagster_dbt import DbtCliResource
from packaging import version


class MeterworksDbtCliResource(DbtCliResource):
    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(installed_version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args):
        return None
