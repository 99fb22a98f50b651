"""The local Dagster instance: its dagster.yaml and the event log that keeps its connections."""

import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.events.log import EventLogEntry

from dagster_project.instance_storage import PooledSqliteEventLogStorage
from meterworks.config import settings
from meterworks.jobs import LOCAL_INSTANCE_YAML, prepare_environment


def log_entry(run_id: str, message: str) -> EventLogEntry:
    return EventLogEntry(
        error_info=None,
        level="INFO",
        user_message=message,
        run_id=run_id,
        timestamp=time.time(),
        step_key=None,
        job_name=None,
        dagster_event=None,
    )


@pytest.fixture
def local_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("METERWORKS_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    return home


def test_an_empty_instance_yaml_gets_the_pooled_event_log(local_home) -> None:
    prepare_environment(settings(local_home))
    instance_yaml = local_home / "dagster" / "dagster.yaml"
    assert instance_yaml.read_text() == LOCAL_INSTANCE_YAML
    with dg.DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        assert isinstance(storage, PooledSqliteEventLogStorage)
        # Dagster's default layout: a home made before keeps its run history
        assert Path(storage._base_dir) == local_home / "dagster" / "history" / "runs"


def test_an_instance_yaml_with_content_is_left_alone(local_home) -> None:
    instance_yaml = local_home / "dagster" / "dagster.yaml"
    instance_yaml.parent.mkdir(parents=True)
    instance_yaml.write_text("telemetry:\n  enabled: false\n")
    prepare_environment(settings(local_home))
    assert instance_yaml.read_text() == "telemetry:\n  enabled: false\n"
    with dg.DagsterInstance.get() as instance:
        assert type(instance.event_log_storage).__name__ == "SqliteEventLogStorage"


def test_events_round_trip_and_open_connections_are_bounded(tmp_path) -> None:
    storage = PooledSqliteEventLogStorage(str(tmp_path / "runs"))
    try:
        runs = [f"run-{i}" for i in range(PooledSqliteEventLogStorage.MAX_OPEN_SHARDS + 3)]
        for run_id in runs:
            for k in range(3):
                storage.store_event(log_entry(run_id, f"{run_id} #{k}"))
        assert len(storage._engines) == PooledSqliteEventLogStorage.MAX_OPEN_SHARDS
        for run_id in runs:  # also the runs whose connection was closed
            records = storage.get_records_for_run(run_id).records
            assert [r.event_log_entry.user_message for r in records] == [
                f"{run_id} #{k}" for k in range(3)
            ]
        storage.wipe()
        assert not list((tmp_path / "runs").glob("run-*.db"))
        assert storage.get_records_for_run(runs[0]).records == []
    finally:
        storage.dispose()
    assert storage._engines == {}


def test_a_watch_sees_events_another_connection_keeps_in_the_wal(tmp_path) -> None:
    """A run executed elsewhere (its connection open, so commits stay in the -wal file) is
    followed live, as ``dagster dev`` follows a run the CLI executes."""
    base_dir = str(tmp_path / "runs")
    writer = PooledSqliteEventLogStorage(base_dir)
    watcher = PooledSqliteEventLogStorage(base_dir)
    seen: list[str] = []
    try:
        writer.store_event(log_entry("run-live", "first"))
        watcher.watch("run-live", None, lambda entry, cursor: seen.append(entry.user_message))
        time.sleep(0.2)  # margin: the inotify watch is set up by watch() itself
        for k in range(5):
            writer.store_event(log_entry("run-live", f"event {k}"))
        assert (tmp_path / "runs" / "run-live.db-wal").exists()  # not checkpointed away
        deadline = time.monotonic() + 10
        while len(seen) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seen == ["first", *(f"event {k}" for k in range(5))]
    finally:
        watcher.dispose()
        writer.dispose()
