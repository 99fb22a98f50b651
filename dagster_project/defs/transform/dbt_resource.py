"""The dbt CLI resource, minus the start-up costs Meterworks does not need.

Before starting dbt, dagster-dbt's ``DbtCliResource.cli`` runs ``dbt --version`` in a
subprocess (~2.7 s here) and loads every dbt macro in-process to build an adapter handle
(~1.8 s), which it only uses for optional column and row-count metadata that Meterworks does
not request. The dbt run is beside this interpreter (``DBT_EXECUTABLE``), so its version is the
installed dbt-core's.

On DuckDB, dbt then runs in this process (``dbt_in_process``) rather than as a ``dbt``
subprocess, which spent ~2-4 s per invocation starting Python and importing dbt before its
first model. ``METERWORKS_DBT_IN_PROCESS=0`` goes back to the subprocess (to isolate a dbt
crash, say); Spark always uses it (its session target starts a JVM per dbt process).

The hooks are private dagster-dbt API, pinned by ``dagster-dbt<0.30``; ``tests/test_defs.py``
checks they still exist and that both paths give the same events.
"""

import os
from collections.abc import Sequence
from functools import cached_property
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

from dagster import get_dagster_logger
from dagster_dbt import DagsterDbtTranslator, DbtCliResource
from dagster_dbt.asset_utils import (
    extract_runtime_selection_from_args,
    get_updated_cli_invocation_params_for_context,
)
from dagster_dbt.core.dbt_cli_invocation import DbtCliInvocation
from dagster_dbt.dagster_dbt_translator import validate_opt_translator
from dagster_dbt.dbt_manifest import validate_manifest
from packaging import version

from dagster_project.defs.transform.dbt_in_process import InProcessDbt
from meterworks.engine import engine

IN_PROCESS_ENV = "METERWORKS_DBT_IN_PROCESS"


def dbt_in_process() -> bool:
    """dbt runs in the step's process: on DuckDB, unless ``METERWORKS_DBT_IN_PROCESS=0``."""
    wanted = os.environ.get(IN_PROCESS_ENV, "1").strip().lower() not in ("0", "false", "no")
    return wanted and engine() == "duckdb"


class MeterworksDbtCliResource(DbtCliResource):
    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(installed_version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args):
        return None

    def cli(
        self,
        args: Sequence[str],
        *,
        raise_on_error: bool = True,
        manifest: Any = None,
        dagster_dbt_translator: DagsterDbtTranslator | None = None,
        context: Any = None,
        target_path: Path | None = None,
    ) -> DbtCliInvocation:
        """``DbtCliResource.cli``, with dbt in this process when ``dbt_in_process()``.

        The invocation is dagster-dbt's own ``DbtCliInvocation`` over an ``InProcessDbt``: the
        same selection (a subset of the assets), events, logs and errors as the subprocess.
        """
        if not dbt_in_process():
            return super().cli(
                args,
                raise_on_error=raise_on_error,
                manifest=manifest,
                dagster_dbt_translator=dagster_dbt_translator,
                context=context,
                target_path=target_path,
            )
        translator = validate_opt_translator(dagster_dbt_translator) or DagsterDbtTranslator()
        cleaned_args, selects, excludes = extract_runtime_selection_from_args(args)
        params = get_updated_cli_invocation_params_for_context(
            context=context,
            manifest=validate_manifest(manifest) if manifest else {},
            dagster_dbt_translator=translator,
            runtime_selects=selects,
            runtime_excludes=excludes,
        )
        project_dir = Path(
            params.dbt_project.project_dir if params.dbt_project else self.project_dir
        )
        target_path = target_path or self._get_unique_target_path(context=context)
        if not target_path.is_absolute():
            target_path = project_dir / target_path
        # What the subprocess gets through DBT_* variables, as flags: this process's
        # environment is not the invocation's to change.
        placement = [
            "--project-dir", str(project_dir),
            "--target-path", str(target_path),
            "--log-path", str(target_path),
            "--log-format", "json",
            "--log-level", "none",  # the lines reach dagster-dbt, which echoes them
            "--log-level-file", "debug",  # else it follows --log-level: no dbt.log at all
            "--no-send-anonymous-usage-stats",
        ]  # fmt: skip
        if self.profiles_dir:
            placement += ["--profiles-dir", str(self.profiles_dir)]
        if self.profile:
            placement += ["--profile", self.profile]
        if self.target:
            placement += ["--target", self.target]
        if params.indirect_selection:
            placement += ["--indirect-selection", params.indirect_selection]
        dbt_args = [
            *self.global_config_flags,
            *cleaned_args,
            *placement,
            *params.selection_args,
        ]
        invocation = DbtCliInvocation(
            process=InProcessDbt(dbt_args),  # type: ignore[arg-type]
            manifest=params.manifest,
            dagster_dbt_translator=params.dagster_dbt_translator,
            project_dir=project_dir,
            target_path=target_path,
            raise_on_error=raise_on_error,
            cli_version=self._cli_version,
            project=params.dbt_project,
            context=context,
            adapter=None,
        )
        get_dagster_logger().info(f"Running dbt in-process: `{invocation.dbt_command}`.")
        return invocation
