"""The dbt project handle. No dbt parse happens at import except under ``dg dev``
(``prepare_if_dev``); ``meterworks`` commands prepare the manifest before loading code."""

from dagster_dbt import DbtProject

from meterworks.config import DBT_PROJECT_DIR

meterworks_dbt_project = DbtProject(
    project_dir=DBT_PROJECT_DIR,
    profiles_dir=DBT_PROJECT_DIR,
    target="duckdb",
)
meterworks_dbt_project.prepare_if_dev()
