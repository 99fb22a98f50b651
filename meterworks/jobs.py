"""Runs the Dagster jobs in-process against the persistent instance under
``$METERWORKS_HOME/dagster``, so every CLI run shows up in the Dagster UI (``meterworks dev``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from meterworks.config import DBT_PROJECT_DIR, Settings

QUIET_LOGGING = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}

#: ``dagster.yaml`` of the local instance, written where there is none or it is empty.
LOCAL_INSTANCE_YAML = """\
# The CLI's local Dagster instance, written by meterworks into an empty dagster.yaml (a file
# with content is left as it is): Dagster's SQLite storage, with an event log that keeps its
# connections open (see dagster_project/instance_storage.py).
event_log_storage:
  module: dagster_project.instance_storage
  class: PooledSqliteEventLogStorage
"""


def prepare_environment(cfg: Settings) -> None:
    """Point Dagster and dbt at this home (absolute paths only, see CONVENTIONS)."""
    cfg.ensure_dirs()
    os.environ["METERWORKS_HOME"] = str(cfg.home)
    os.environ.update(cfg.dbt_env())
    dagster_home = Path(os.environ.setdefault("DAGSTER_HOME", str(cfg.home / "dagster")))
    dagster_home.mkdir(parents=True, exist_ok=True)
    instance_yaml = dagster_home / "dagster.yaml"
    if not instance_yaml.exists() or not instance_yaml.read_text().strip():
        instance_yaml.write_text(LOCAL_INSTANCE_YAML)


def _manifest_is_stale(manifest: Path) -> bool:
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    sources = [DBT_PROJECT_DIR / "dbt_project.yml", DBT_PROJECT_DIR / "profiles.yml"]
    for folder in ("models", "macros", "tests", "seeds"):
        sources.extend((DBT_PROJECT_DIR / folder).rglob("*"))
    return any(p.is_file() and p.stat().st_mtime > built for p in sources)


def prepare_dbt_manifest() -> None:
    """``dbt parse`` when the manifest is missing or older than the dbt sources."""
    from dagster_project.defs.transform.project import (
        manifest_target,
        meterworks_dbt_project,
        parse_dbt_project,
    )

    if (
        _manifest_is_stale(meterworks_dbt_project.manifest_path)
        or manifest_target() != meterworks_dbt_project.target
    ):
        parse_dbt_project()


def load_definitions():
    import dagster as dg

    from dagster_project.definitions import defs

    return defs() if not isinstance(defs, dg.Definitions) else defs


def run_job(cfg: Settings, job_name: str, run_config: Mapping[str, Any] | None = None) -> Any:
    """Execute a job of the code location in this process; raises on failure."""
    import dagster as dg

    prepare_environment(cfg)
    prepare_dbt_manifest()
    definitions = load_definitions()
    job = definitions.resolve_job_def(job_name)
    config = {**QUIET_LOGGING, **(run_config or {})}
    # dagster-dbt echoes dbt's log to stdout; send it to stderr so stdout carries only results
    # (``meterworks ingest`` prints exactly one JSON line).
    with dg.DagsterInstance.get() as instance, contextlib.redirect_stdout(sys.stderr):
        return job.execute_in_process(run_config=config, instance=instance)


def materialization_metadata(result: Any, asset_name: str) -> dict[str, Any]:
    """Metadata of an asset's materialization in a finished in-process run."""
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        if materialization.asset_key.path[-1] == asset_name:
            return {key: value.value for key, value in materialization.metadata.items()}
    return {}
