"""Resources, configured from the environment at run time (never read at import time)."""

from __future__ import annotations

import dagster as dg

from dagster_project.defs.transform.dbt_resource import MeterworksDbtCliResource
from dagster_project.defs.transform.project import meterworks_dbt_project
from meterworks.catalog import Catalog, load_catalog
from meterworks.config import DBT_EXECUTABLE, Settings, settings


class MeterworksResource(dg.ConfigurableResource):
    """Where Meterworks keeps its state. Unset fields fall back to ``METERWORKS_HOME`` /
    ``METERWORKS_CATALOG`` (read when a run starts, not when the code is loaded)."""

    home: str | None = None
    catalog_path: str | None = None

    def settings(self) -> Settings:
        return settings(self.home)

    def load_catalog(self) -> Catalog:
        return load_catalog(self.catalog_path or self.settings().catalog)


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "meterworks": MeterworksResource(),
            "dbt": MeterworksDbtCliResource(
                project_dir=meterworks_dbt_project, dbt_executable=DBT_EXECUTABLE
            ),
        }
    )
