"""The app-state database: its URL, an engine for it, and its Alembic migrations.

``METERWORKS_STATE_URL`` is any SQLAlchemy URL (``postgresql://user@host/db`` in production;
the psycopg 3 driver is used for a bare ``postgresql://``); the default is SQLite at
``$METERWORKS_HOME/state.db``, the same database as the webhook delivery store.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: our own Alembic version table, so other components of the same database can migrate apart
VERSION_TABLE = "alembic_version_app_state"
HEAD = "0001"


def state_url(home: str | os.PathLike[str] | None = None) -> str:
    """``$METERWORKS_STATE_URL``, else SQLite at ``<home>/state.db`` (home: the argument, else
    ``$METERWORKS_HOME``, else ``./data``) -- the same rule as the webhook delivery store."""
    explicit = os.environ.get("METERWORKS_STATE_URL")
    if explicit:
        return explicit
    raw = home if home is not None else os.environ.get("METERWORKS_HOME", "data")
    return f"sqlite:///{Path(raw).expanduser().resolve() / 'state.db'}"


def _normalise(url: str) -> sa.URL:
    parsed = sa.make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """An engine for the state database; a new SQLite file is created 0600 with WAL and a
    busy timeout (the webhook sender writes to the same file)."""
    parsed = _normalise(url or state_url())
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            path = os.path.abspath(database)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if not os.path.exists(path):
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        engine = sa.create_engine(parsed, **kwargs)

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("pragma busy_timeout=30000")  # first: wal needs the lock
            cursor.execute("pragma journal_mode=wal")
            cursor.execute("pragma foreign_keys=on")
            cursor.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(parsed, **kwargs)


def _alembic_config(connection: sa.Connection) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


@contextlib.contextmanager
def _sqlite_migration_lock(engine: Engine) -> Iterator[None]:
    """Serialise migrations of one SQLite file across processes (the app and a build may both
    start on a fresh install); other backends lock inside the transaction."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    import fcntl

    with open(f"{os.path.abspath(database)}.migrate.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Apply the migrations up to ``revision`` (idempotent, safe to run from two processes at
    once); returns the revision in force."""
    from alembic import command

    with _sqlite_migration_lock(engine), engine.begin() as connection:
        if connection.dialect.name == "postgresql":  # released at commit
            connection.exec_driver_sql("select pg_advisory_xact_lock(7263540117)")
        command.upgrade(_alembic_config(connection), revision)
    return current_revision(engine)


def current_revision(engine: Engine) -> str | None:
    """The applied revision, or None on a database the migrations never touched."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()
