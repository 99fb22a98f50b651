"""The local Dagster instance's event log: Dagster's SQLite storage, with its connections kept.

Dagster's ``SqliteEventLogStorage`` creates an engine, opens a connection and closes it for
every event it stores. In WAL mode the close of a database's last connection checkpoints the
log into the file and deletes it, so each event costs a connect, a checkpoint and the WAL's
re-creation: ~20 ms, and a ``meterworks build`` stores ~470 events (planned materializations and
checks, outputs, results), i.e. seconds of every run spent writing its own log. This storage
keeps one pooled connection per recently used database (the run's shard and the asset index)
for the life of the instance, which halves the cost per event. Durability is unchanged:
SQLite's defaults, one transaction and one commit per event, as before.

Live views of a run (``dagster dev`` watching a run another process executes) follow changes
of the run's database file. With the connection kept open, a commit only appends to the
``-wal`` file until SQLite's automatic checkpoint, so the watch follows that file too.

Only for the CLI's local instance: ``meterworks`` writes it into an empty or missing
``$DAGSTER_HOME/dagster.yaml`` (``meterworks.jobs.LOCAL_INSTANCE_YAML``); production uses
PostgreSQL (``deploy/dagster.yaml``).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from dagster import Field, StringSource
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    SqliteEventLogStorage,
    SqliteEventLogStorageWatchdog,
)
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sqlite_storage import _event_logs_directory
from dagster._serdes import ConfigurableClassData


def default_base_dir() -> str:
    """Where Dagster's default SQLite storage keeps the event log under ``$DAGSTER_HOME``."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise RuntimeError("PooledSqliteEventLogStorage needs base_dir or DAGSTER_HOME")
    return _event_logs_directory(home)


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` that keeps a connection open per recently used shard."""

    #: Shards whose connection stays open (a run's own shard and the index are the busy ones;
    #: the webserver reads many runs, so older ones are closed).
    MAX_OPEN_SHARDS = 8

    def __init__(self, base_dir: str | None = None, inst_data: ConfigurableClassData | None = None):
        # before the parent's __init__, which may already connect (a new index shard)
        self._engines: OrderedDict[str, sa.Engine] = OrderedDict()
        self._engines_pid = os.getpid()
        super().__init__(base_dir or default_base_dir(), inst_data)

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: dict[str, Any]
    ) -> PooledSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> sa.Engine:
        """The shard's engine (called with ``_db_lock`` held, so none of its connections is in
        use when an older one is disposed)."""
        if self._engines_pid != os.getpid():
            # a forked child must not use the parent's SQLite connections
            for engine in self._engines.values():
                engine.dispose(close=False)
            self._engines.clear()
            self._engines_pid = os.getpid()
        engine = self._engines.get(shard)
        if engine is not None:
            self._engines.move_to_end(shard)
            return engine
        engine = sa.create_engine(
            self.conn_string_for_shard(shard),
            pool_size=1,
            max_overflow=2,
            # a pooled connection moves between threads, never used by two at once (the lock)
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
        )
        self._engines[shard] = engine
        while len(self._engines) > self.MAX_OPEN_SHARDS:
            _, oldest = self._engines.popitem(last=False)
            oldest.dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[sa.Connection]:
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def _dispose_engines(self) -> None:
        with self._db_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()

    def watch(self, run_id: str, cursor: str | None, callback: Any) -> None:
        from watchdog.observers import Observer

        if not self._obs:
            self._obs = Observer()
            self._obs.start()
        watchdog = _ShardAndWalWatchdog(self, run_id, callback, cursor)
        self._watchers[run_id][callback] = (
            watchdog,
            self._obs.schedule(watchdog, self._base_dir, recursive=True),
        )

    def wipe(self) -> None:
        self._dispose_engines()  # before the shard files are deleted
        super().wipe()

    def dispose(self) -> None:
        self._dispose_engines()
        super().dispose()


class _ShardAndWalWatchdog(SqliteEventLogStorageWatchdog):
    """Follows the run's database file and its ``-wal`` file."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._patterns = [self._log_path, self._log_path + "-wal"]

    def on_modified(self, event: Any) -> None:
        self._process_log()
