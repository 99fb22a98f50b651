"""The code location loads and wires what the README promises."""

import dagster as dg
import pytest


@pytest.fixture(scope="module")
def definitions(dbt_manifest):
    from meterworks.jobs import load_definitions

    return load_definitions()


def test_asset_graph(definitions) -> None:
    keys = {key.to_user_string() for key in definitions.resolve_asset_graph().get_all_asset_keys()}
    for expected in ("catalog_meters", "raw_events", "raw_quarantine", "fct_threshold_crossings", "fct_usage_anomalies", "fct_usage_hourly", "fct_usage_daily",
                     "fct_meter_totals", "dim_meters", "dim_customers"):  # fmt: skip
        assert expected in keys
    graph = definitions.resolve_asset_graph()
    # dbt sources resolve to the Python ingest assets, so lineage is one graph
    upstream = graph.get(dg.AssetKey("fct_meter_totals")).parent_keys
    ancestors = set(upstream)
    frontier = list(upstream)
    while frontier:
        for parent in graph.get(frontier.pop()).parent_keys:
            if parent not in ancestors:
                ancestors.add(parent)
                frontier.append(parent)
    assert dg.AssetKey("raw_events") in ancestors
    assert dg.AssetKey("catalog_meters") in ancestors
    # webhooks: queued after both alert assets, drained by their own sensor
    assert graph.get(dg.AssetKey("webhook_messages")).parent_keys >= {
        dg.AssetKey("fct_threshold_crossings"),
        dg.AssetKey("fct_usage_anomalies"),
    }
    # steps that open the DuckDB file share one pool (deploy/dagster.yaml limits it to 1)
    for key in ("raw_events", "stripe_objects", "fct_usage_anomalies", "app_snapshot",
                "webhook_messages", "fct_meter_totals"):  # fmt: skip
        assert graph.get(dg.AssetKey(key)).pools == {"meterworks_duckdb"}, key
    sensor = definitions.resolve_sensor_def("webhook_delivery_sensor")
    assert sensor.job_name == "meterworks_webhook_delivery"


def test_groups(definitions) -> None:
    graph = definitions.resolve_asset_graph()
    assert graph.get(dg.AssetKey("raw_events")).group_name == "ingest"
    assert graph.get(dg.AssetKey("fct_meter_totals")).group_name == "metering"


def test_jobs_schedules_sensors_and_checks(definitions) -> None:
    for job in ("meterworks_pipeline", "meterworks_build", "meterworks_ingest"):
        assert definitions.resolve_job_def(job) is not None
    assert definitions.resolve_schedule_def("hourly_pipeline").cron_schedule == "7 * * * *"
    audit = definitions.resolve_schedule_def("nightly_audit")
    assert audit.job_name == "meterworks_build"
    assert definitions.resolve_sensor_def("inbox_sensor").job_name == "meterworks_usage_pipeline"
    usage = definitions.resolve_job_def("meterworks_usage_build")
    usage_keys = {key.to_user_string() for key in usage.asset_layer.selected_asset_keys}
    assert {
        "fct_meter_totals",
        "fct_usage_daily",
        "fct_usage_hourly",
        "catalog_meters",
    } <= usage_keys
    # the hourly mart has its own dbt op, after the one that builds the period totals
    ops = {node.name for node in usage.graph.nodes}
    assert {"meterworks_dbt_models", "meterworks_dbt_hourly"} <= ops
    graph = definitions.resolve_asset_graph()
    assert graph.get(dg.AssetKey("fct_usage_hourly")).pools == {"meterworks_duckdb"}
    assert (
        dg.AssetKey("fct_usage_hourly")
        not in graph.get(dg.AssetKey("fct_meter_totals")).parent_keys
    )
    assert not {"raw_events", "stripe_objects", "fct_invoice_reconciliation"} & usage_keys
    check_names = {key.name for key in definitions.resolve_asset_graph().asset_check_keys}
    assert {"quarantine_rate", "duplicate_rate", "ingest_freshness"} <= check_names
    # dbt data tests surface as asset checks too
    assert any(name.startswith("not_null") or name.startswith("unique") for name in check_names)


def test_only_checks_the_hourly_build_runs_are_blocking(definitions) -> None:
    """History-wide audit tests run nightly only: blocking, they would be expected (and warned
    about) in every hourly build; the per-batch tests of the marts keep blocking."""
    specs = {
        (spec.asset_key.path[-1], spec.name): spec
        for assets_def in definitions.resolve_asset_graph().assets_defs
        for spec in assets_def.check_specs
    }
    audit = specs[("int_events_effective", "unique_int_events_effective_event_seq")]
    per_batch = specs[("fct_meter_totals", "not_null_fct_meter_totals_period_start")]
    assert not audit.blocking
    assert per_batch.blocking


def test_dbt_helpers(dbt_manifest) -> None:
    from dagster_project.defs.transform.assets import dbt_group_name
    from dagster_project.defs.transform.build_config import dbt_build_args, dbt_run_config

    assert dbt_build_args(False) == [
        "build", "--no-write-json", "--exclude-resource-type", "unit_test", "--exclude",
        "tag:audit"
    ]  # fmt: skip
    assert dbt_build_args(True, unit_tests=True, audit=True) == [
        "build",
        "--no-write-json",
        "--full-refresh",
    ]
    assert dbt_group_name(["meterworks", "staging", "meterworks", "stg_x"]) == "staging"
    assert dbt_group_name(["meterworks", "marts", "fct_meter_totals"]) == "metering"
    assert dbt_group_name(["meterworks", "marts", "revenue", "fct_mrr"]) == "revenue"
    # build flags reach both dbt ops
    config = dbt_run_config(audit=True)["ops"]
    assert set(config) == {"meterworks_dbt_models", "meterworks_dbt_hourly"}
    assert all(op["config"] == {"full_refresh": False, "unit_tests": False, "audit": True}
               for op in config.values())  # fmt: skip


def test_old_dbt_invocation_directories_are_pruned(tmp_path, monkeypatch) -> None:
    import os
    import time

    from dagster_project.defs.transform import project

    monkeypatch.setattr(project, "_target_root", lambda: tmp_path)
    old = time.time() - 2 * project.INVOCATION_MAX_AGE_S
    for i in range(project.INVOCATIONS_KEEP + 5):
        run = tmp_path / f"meterworks_dbt_models-{i:03d}"
        run.mkdir()
        os.utime(run, (old + i, old + i))
    (tmp_path / "meterworks_dbt_models-new").mkdir()  # recent: in use or just finished
    (tmp_path / "other-000").mkdir()
    os.utime(tmp_path / "other-000", (old, old))
    project.prune_invocation_targets("meterworks_dbt_models")
    left = sorted(path.name for path in tmp_path.iterdir())
    assert "meterworks_dbt_models-new" in left and "other-000" in left
    kept = [name for name in left if name.startswith("meterworks_dbt_models-0")]
    # the newest INVOCATIONS_KEEP (the new one among them) stay, the oldest go
    assert len(kept) == project.INVOCATIONS_KEEP - 1
    assert "meterworks_dbt_models-000" not in left


def test_dbt_resource_skips_only_optional_start_up_work(dbt_manifest) -> None:
    from dagster_dbt import DbtCliResource

    from dagster_project.defs.transform.dbt_resource import MeterworksDbtCliResource

    # the private hooks overridden must still exist in the pinned dagster-dbt
    assert hasattr(DbtCliResource, "_cli_version")
    assert hasattr(DbtCliResource, "_initialize_dbt_core_adapter")
    from meterworks.config import DBT_EXECUTABLE

    resource = MeterworksDbtCliResource(
        project_dir=str(dbt_manifest.parent.parent), dbt_executable=DBT_EXECUTABLE
    )
    assert resource._cli_version.major == 1
    assert resource._initialize_dbt_core_adapter([]) is None


def test_manifest_is_reparsed_for_another_engine(dbt_manifest, monkeypatch) -> None:
    from dagster_project.defs.transform import project
    from meterworks import jobs

    parsed = []
    monkeypatch.setattr(project, "parse_dbt_project", lambda: parsed.append(True))
    assert project.manifest_target() == project.meterworks_dbt_project.target == "duckdb"
    jobs.prepare_dbt_manifest()
    assert parsed == []  # fresh, and parsed for this engine's target
    marker = dbt_manifest.parent / project.MANIFEST_TARGET_FILE
    original = marker.read_text()
    try:
        marker.write_text("spark")  # as if the last parse was for Spark
        jobs.prepare_dbt_manifest()
        assert parsed == [True]
    finally:
        marker.write_text(original)
