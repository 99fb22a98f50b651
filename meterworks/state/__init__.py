"""App-side state: users and roles, audited adjustments, the append-only audit log.

SQLAlchemy to any URL (``$METERWORKS_STATE_URL``; SQLite at ``$METERWORKS_HOME/state.db`` by
default, PostgreSQL in production), schema by Alembic (``meterworks.state.upgrade(engine)``,
also run when the app starts).
"""

from meterworks.state.adjustments import (
    CREDIT,
    KINDS,
    REASON_CODES,
    USAGE,
    Adjustment,
    AdjustmentError,
    AdjustmentRequest,
    create_adjustment,
    edit_adjustment,
    get_adjustment,
    list_adjustments,
    parse_amount,
    void_adjustment,
)
from meterworks.state.audit import AuditEntry, list_audit
from meterworks.state.engine import current_revision, make_engine, state_url, upgrade
from meterworks.state.export import export_adjustments
from meterworks.state.users import (
    ADJUST_ROLES,
    REVENUE_ROLES,
    ROLES,
    AppUser,
    RoleError,
    disable_user,
    get_user,
    list_users,
    parse_roles,
    set_roles,
)

__all__ = [
    "ADJUST_ROLES",
    "CREDIT",
    "KINDS",
    "REASON_CODES",
    "REVENUE_ROLES",
    "ROLES",
    "USAGE",
    "Adjustment",
    "AdjustmentError",
    "AdjustmentRequest",
    "AppUser",
    "AuditEntry",
    "RoleError",
    "create_adjustment",
    "current_revision",
    "disable_user",
    "edit_adjustment",
    "export_adjustments",
    "get_adjustment",
    "get_user",
    "list_adjustments",
    "list_audit",
    "list_users",
    "make_engine",
    "parse_amount",
    "parse_roles",
    "set_roles",
    "state_url",
    "upgrade",
    "void_adjustment",
]
