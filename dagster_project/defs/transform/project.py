"""The dbt project handle.

``@dbt_assets`` needs ``target/manifest.json`` at import time and a fresh clone has none
(``target/`` is never committed). Importing never parses (no side effects at import): the
``meterworks`` commands and the test session call ``meterworks.jobs.prepare_dbt_manifest``
first, and ``dg dev`` re-parses on every load (``prepare_if_dev``).
"""

import os

from dagster_dbt import DbtCliResource, DbtProject

from meterworks.config import DBT_EXECUTABLE, DBT_PROJECT_DIR, settings

meterworks_dbt_project = DbtProject(
    project_dir=DBT_PROJECT_DIR,
    profiles_dir=DBT_PROJECT_DIR,
    target="duckdb",
)


def parse_dbt_project() -> None:
    """``dbt parse`` into the project's target path (profiles.yml reads the warehouse path
    from the environment; parsing never opens the warehouse)."""
    os.environ.setdefault("METERWORKS_WAREHOUSE", str(settings().warehouse))
    dbt = DbtCliResource(project_dir=meterworks_dbt_project, dbt_executable=DBT_EXECUTABLE)
    dbt.cli(["parse", "--quiet"], target_path=meterworks_dbt_project.target_path).wait()


meterworks_dbt_project.prepare_if_dev()
