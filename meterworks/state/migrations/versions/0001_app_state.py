"""App state: users and roles, adjustments, and the append-only audit log.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SQLITE_TRIGGERS = (
    """
    create trigger audit_log_no_update before update on audit_log
    begin select raise(abort, 'audit_log is append-only: UPDATE is not allowed'); end
    """,
    """
    create trigger audit_log_no_delete before delete on audit_log
    begin select raise(abort, 'audit_log is append-only: DELETE is not allowed'); end
    """,
)

POSTGRES_TRIGGERS = (
    """
    create or replace function meterworks_audit_log_append_only() returns trigger
    language plpgsql as $$
    begin
        raise exception 'audit_log is append-only: % is not allowed', tg_op
            using errcode = 'insufficient_privilege';
    end
    $$
    """,
    """
    create trigger audit_log_append_only before update or delete on audit_log
    for each row execute function meterworks_audit_log_append_only()
    """,
    """
    create trigger audit_log_no_truncate before truncate on audit_log
    for each statement execute function meterworks_audit_log_append_only()
    """,
)


def upgrade() -> None:
    op.create_table(
        "app_users",
        sa.Column("user_id", sa.String(255), primary_key=True),
        sa.Column("display_name", sa.String(255)),
        sa.Column("roles", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("disabled_at", sa.DateTime),
    )
    op.create_table(
        "adjustments",
        sa.Column("adjustment_id", sa.String(40), primary_key=True),
        sa.Column("customer_id", sa.String(255), nullable=False),
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
            "kind != 'usage' or (quantity is not null and quantity != 0 "
            "and meter_code is not null)",
            name="ck_adjustments_usage_quantity",
        ),
        sa.CheckConstraint("length(reason_code) > 0", name="ck_adjustments_reason"),
    )
    op.create_index("ix_adjustments_customer_id", "adjustments", ["customer_id"])
    op.create_table(
        "audit_log",
        sa.Column("audit_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("occurred_at", sa.DateTime, nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("entity_type", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(255), nullable=False),
        sa.Column("before_json", sa.Text),
        sa.Column("after_json", sa.Text),
    )
    op.create_index("ix_audit_log_occurred_at", "audit_log", ["occurred_at"])
    op.create_index("ix_audit_log_entity_id", "audit_log", ["entity_id"])
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)
    elif dialect == "postgresql":
        for statement in POSTGRES_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("drop trigger if exists audit_log_no_truncate on audit_log")
        op.execute("drop trigger if exists audit_log_append_only on audit_log")
        op.execute("drop function if exists meterworks_audit_log_append_only()")
    op.drop_table("audit_log")
    op.drop_table("adjustments")
    op.drop_table("app_users")
