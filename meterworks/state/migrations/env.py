"""Alembic environment of the app-state database (run through ``meterworks.state.upgrade``,
which hands over an open connection; offline SQL generation is not supported)."""

from alembic import context

from meterworks.state.engine import VERSION_TABLE
from meterworks.state.models import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable from a hand-written alembic.ini
    raise RuntimeError("run the migrations through meterworks.state.upgrade(engine)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
