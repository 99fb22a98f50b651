"""Users and roles for OIDC sign-in (password sign-in takes its role from the environment).

Roles: ``support`` (customers, alerts, pipeline health), ``finance`` and ``leadership`` (also
revenue: overview, reconciliation), ``ops`` (also adjustments), ``admin`` (everything). Every
grant and revocation is in the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from meterworks.state import audit
from meterworks.state.adjustments import utc_naive, utcnow
from meterworks.state.models import app_users

ROLES = ("support", "finance", "leadership", "ops", "admin")
#: who may see revenue figures (MRR, invoices, reconciliation)
REVENUE_ROLES = frozenset({"finance", "leadership", "admin"})
#: who may apply adjustments
ADJUST_ROLES = frozenset({"ops", "admin"})


class RoleError(ValueError):
    pass


def parse_roles(text: str | None) -> frozenset[str]:
    """``"finance, ops"`` -> {"finance", "ops"}; unknown roles are refused."""
    roles = frozenset(r.strip().lower() for r in (text or "").split(",") if r.strip())
    unknown = roles - set(ROLES)
    if unknown:
        raise RoleError(f"unknown role(s) {', '.join(sorted(unknown))}: use {', '.join(ROLES)}")
    return roles


@dataclass(frozen=True)
class AppUser:
    user_id: str
    display_name: str | None
    roles: frozenset[str]
    disabled_at: datetime | None


def set_roles(
    engine: Engine,
    user_id: str,
    roles: str | set[str] | frozenset[str],
    *,
    actor: str,
    display_name: str | None = None,
    now: datetime | None = None,
) -> AppUser:
    """Create the user or replace its roles (an empty set leaves it unable to see anything)."""
    wanted = parse_roles(roles) if isinstance(roles, str) else parse_roles(",".join(roles))
    user_id = user_id.strip().lower()
    if not user_id:
        raise RoleError("a user needs an id (the e-mail address the identity provider gives)")
    now = utc_naive(now) if now else utcnow()
    text = ",".join(sorted(wanted))
    with engine.begin() as conn:
        row = conn.execute(sa.select(app_users).where(app_users.c.user_id == user_id)).first()
        if row is None:
            conn.execute(
                app_users.insert().values(
                    user_id=user_id,
                    display_name=display_name,
                    roles=text,
                    created_at=now,
                    updated_at=now,
                )
            )
            before = None
        else:
            conn.execute(
                app_users.update()
                .where(app_users.c.user_id == user_id)
                .values(
                    roles=text,
                    display_name=display_name or row.display_name,
                    disabled_at=None,
                    updated_at=now,
                )
            )
            before = {"roles": row.roles, "disabled_at": row.disabled_at}
        audit.append(
            conn,
            occurred_at=now,
            actor=actor,
            action="user.set_roles",
            entity_type="user",
            entity_id=user_id,
            before=before,
            after={"roles": text, "disabled_at": None},
        )
    return AppUser(user_id, display_name, wanted, None)


def disable_user(engine: Engine, user_id: str, *, actor: str, now: datetime | None = None) -> None:
    now = utc_naive(now) if now else utcnow()
    user_id = user_id.strip().lower()
    with engine.begin() as conn:
        found = conn.execute(
            app_users.update()
            .where(app_users.c.user_id == user_id, app_users.c.disabled_at.is_(None))
            .values(disabled_at=now, updated_at=now)
        ).rowcount
        if not found:
            raise RoleError(f"no active user '{user_id}'")
        audit.append(
            conn,
            occurred_at=now,
            actor=actor,
            action="user.disable",
            entity_type="user",
            entity_id=user_id,
            before={"disabled_at": None},
            after={"disabled_at": now},
        )


def get_user(engine: Engine, user_id: str) -> AppUser | None:
    """The active user with this id (case-insensitive), or None."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(app_users).where(
                app_users.c.user_id == user_id.strip().lower(), app_users.c.disabled_at.is_(None)
            )
        ).first()
    if row is None:
        return None
    return AppUser(row.user_id, row.display_name, parse_roles(row.roles), row.disabled_at)


def list_users(engine: Engine) -> list[AppUser]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(app_users).order_by(app_users.c.user_id)).all()
    return [AppUser(r.user_id, r.display_name, parse_roles(r.roles), r.disabled_at) for r in rows]
