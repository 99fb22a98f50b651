"""dbt models as Dagster assets. dbt data tests surface as asset checks on their models."""

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from dagster_project.defs.concurrency import dbt_pool
from dagster_project.defs.resources import MeterworksResource
from dagster_project.defs.transform.build_config import (
    HOURLY_USAGE_MODEL,
    DbtBuildConfig,
    dbt_build_args,
)
from dagster_project.defs.transform.project import (
    invocation_target_path,
    meterworks_dbt_project,
    prune_invocation_targets,
    save_partial_parse,
)
from meterworks.config import Settings
from meterworks.engine import dbt_env as engine_dbt_env
from meterworks.engine import engine, spark_dir
from meterworks.engine.serving import retry_on_lock, serve_spark_tables, spark_table_folders


class MeterworksDbtTranslator(DagsterDbtTranslator):
    """Keys models by their name (model names are unique, so ``fct_meter_totals`` rather than
    ``marts/fct_meter_totals``), groups them by layer/domain and tags them with DuckDB.
    Sources keep the keys their ``meta.dagster.asset_key`` gives (the ingest assets)."""

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: Any
    ) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        node = manifest["nodes"].get(unique_id)
        if node is None or node.get("resource_type") != "model":
            return spec
        return spec.replace_attributes(
            key=dg.AssetKey(node["name"]),
            group_name=dbt_group_name(node.get("fqn", [])),
            kinds={"dbt", "duckdb"},
        )

    def get_asset_check_spec(
        self, asset_spec: dg.AssetSpec, manifest: Mapping[str, Any], unique_id: str, project: Any
    ) -> dg.AssetCheckSpec | None:
        """dbt's error-severity tests block, except the history-wide ``audit`` tests: only the
        nightly audit runs them, so they cannot gate an hourly build's later steps (Dagster
        warned on every run that they "emitted no result")."""
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        test = manifest["nodes"].get(unique_id, {})
        if spec is not None and spec.blocking and "audit" in test.get("tags", []):
            return spec._replace(blocking=False)
        return spec


def dbt_group_name(fqn: list[str]) -> str:
    """``staging`` for staging models, else the domain folder under marts/intermediate."""
    layers = fqn[1:-1]
    if "staging" in layers:
        return "staging"
    domains = [part for part in layers if part not in ("marts", "intermediate")]
    return domains[0] if domains else "metering"


def _build(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    meterworks: MeterworksResource,
    config: DbtBuildConfig,
    name: str,
) -> Iterator[Any]:
    cfg = meterworks.settings()
    # dbt runs with cwd=dbt/: hand it the absolute paths through its profile's env vars.
    os.environ.update(engine_dbt_env(cfg))
    on_spark = engine() == "spark"
    target_path = invocation_target_path(name)
    if on_spark:
        _prepare_spark(context, dbt, cfg, config, target_path)
    yield from dbt.cli(
        dbt_build_args(config.full_refresh, config.unit_tests, config.audit),
        context=context,
        target_path=target_path,
    ).stream()
    save_partial_parse(target_path)
    prune_invocation_targets(name)
    if on_spark:
        served = retry_on_lock(
            lambda: serve_spark_tables(cfg.warehouse, spark_dir(cfg) / "warehouse")
        )
        context.log.info(
            f"Spark tables served to DuckDB readers: {len(served.views)} views"
            + (f"; not yet written (empty): {', '.join(served.skipped)}" if served.skipped else "")
        )


def _prepare_spark(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    cfg: Settings,
    config: DbtBuildConfig,
    target_path: Path,
) -> None:
    """On Spark: export the batches committed since the last export to the lake (the only read
    of the DuckDB file), and on a fresh Spark catalog create every relation empty first (unit
    tests read the columns of the relations they mock)."""
    from meterworks.engine import spark as spark_engine

    exported = retry_on_lock(lambda: spark_engine.prepare(cfg))
    context.log.info(f"lake export: {exported}")
    if config.unit_tests and not spark_table_folders(spark_dir(cfg) / "warehouse"):
        dbt.cli(spark_engine.EMPTY_BUILD, target_path=target_path).wait()


@dbt_assets(
    manifest=meterworks_dbt_project.manifest_path,
    project=meterworks_dbt_project,
    dagster_dbt_translator=MeterworksDbtTranslator(),
    exclude=HOURLY_USAGE_MODEL,
    pool=dbt_pool(),
)
def meterworks_dbt_models(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    meterworks: MeterworksResource,
    config: DbtBuildConfig,
) -> Iterator[Any]:
    yield from _build(context, dbt, meterworks, config, "meterworks_dbt_models")


@dbt_assets(
    manifest=meterworks_dbt_project.manifest_path,
    project=meterworks_dbt_project,
    dagster_dbt_translator=MeterworksDbtTranslator(),
    select=HOURLY_USAGE_MODEL,
    name="meterworks_dbt_hourly",
    pool=dbt_pool(),
)
def meterworks_dbt_hourly(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    meterworks: MeterworksResource,
    config: DbtBuildConfig,
) -> Iterator[Any]:
    yield from _build(context, dbt, meterworks, config, "meterworks_dbt_hourly")
