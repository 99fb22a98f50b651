"""The audit log: append-only. This module can add a row and read rows; there is no update or
delete path anywhere in the code, and a database trigger refuses UPDATE and DELETE (and
TRUNCATE on PostgreSQL) from anyone else."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from meterworks.state.models import audit_log


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def to_json(value: dict[str, Any] | None) -> str | None:
    if value is None:
        return None
    return json.dumps(value, default=_default, sort_keys=True)


def append(
    conn: Connection,
    *,
    occurred_at: datetime,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """Add one row, inside the caller's transaction (so the change and its record commit or
    roll back together)."""
    conn.execute(
        audit_log.insert().values(
            occurred_at=occurred_at,
            actor=actor,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            before_json=to_json(before),
            after_json=to_json(after),
        )
    )


@dataclass(frozen=True)
class AuditEntry:
    audit_id: int
    occurred_at: datetime
    actor: str
    action: str
    entity_type: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def list_audit(
    engine: Engine, *, entity_id: str | None = None, limit: int = 500
) -> list[AuditEntry]:
    """The newest entries first (optionally those of one entity)."""
    query = sa.select(audit_log).order_by(audit_log.c.audit_id.desc()).limit(limit)
    if entity_id is not None:
        query = query.where(audit_log.c.entity_id == entity_id)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        AuditEntry(
            audit_id=r.audit_id,
            occurred_at=r.occurred_at,
            actor=r.actor,
            action=r.action,
            entity_type=r.entity_type,
            entity_id=r.entity_id,
            before=json.loads(r.before_json) if r.before_json else None,
            after=json.loads(r.after_json) if r.after_json else None,
        )
        for r in rows
    ]
