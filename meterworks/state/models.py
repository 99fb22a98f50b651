"""The app-side state tables (SQLAlchemy Core): users and roles, adjustments, the audit log.

They live in the same SQLAlchemy database as the webhook delivery store
(``$METERWORKS_STATE_URL``, SQLite at ``$METERWORKS_HOME/state.db`` by default), never in the
DuckDB warehouse. The schema is owned by the Alembic migrations in ``migrations/``; these
definitions mirror them for queries.

Timestamps are naive UTC (the store's convention, as in ``meterworks.webhooks.store``).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

#: who may sign in through OIDC, and with which roles (password sign-in uses the environment)
app_users = sa.Table(
    "app_users",
    metadata,
    sa.Column("user_id", sa.String(255), primary_key=True),  # e-mail (OIDC) or login name
    sa.Column("display_name", sa.String(255)),
    sa.Column("roles", sa.String(255), nullable=False),  # comma-separated, sorted
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("disabled_at", sa.DateTime),
)

#: one row per adjustment; corrections are edits (audited) or voids, never deletes
adjustments = sa.Table(
    "adjustments",
    metadata,
    sa.Column("adjustment_id", sa.String(40), primary_key=True),
    sa.Column("customer_id", sa.String(255), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("meter_code", sa.String(255)),
    sa.Column("period_start", sa.DateTime, nullable=False),
    sa.Column("period_end", sa.DateTime, nullable=False),
    sa.Column("amount_minor", sa.BigInteger),
    sa.Column("currency", sa.String(3)),
    sa.Column("quantity", sa.Numeric(38, 9)),
    sa.Column("reason_code", sa.String(64), nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(255), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("voided_at", sa.DateTime),
    sa.Column("voided_by", sa.String(255)),
    sa.Column("void_reason", sa.Text),
    sa.Column("stripe_object_id", sa.String(255)),
    sa.Column("stripe_status", sa.String(16)),
    sa.Column("stripe_error", sa.Text),
    sa.CheckConstraint("kind in ('credit', 'usage')", name="ck_adjustments_kind"),
    sa.CheckConstraint("period_end > period_start", name="ck_adjustments_period"),
    sa.CheckConstraint(
        "kind != 'credit' or (amount_minor > 0 and currency is not null)",
        name="ck_adjustments_credit_amount",
    ),
    sa.CheckConstraint(
        "kind != 'usage' or (quantity is not null and quantity != 0 and meter_code is not null)",
        name="ck_adjustments_usage_quantity",
    ),
    sa.CheckConstraint("length(reason_code) > 0", name="ck_adjustments_reason"),
)

#: append-only: the code has no update or delete path, and a trigger refuses both
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("audit_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("occurred_at", sa.DateTime, nullable=False, index=True),
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("entity_type", sa.String(32), nullable=False),
    sa.Column("entity_id", sa.String(255), nullable=False, index=True),
    sa.Column("before_json", sa.Text),
    sa.Column("after_json", sa.Text),
)
