"""Warehouse tables the Stripe sync owns (schema ``raw``; dbt reads them as sources)."""

from __future__ import annotations

import duckdb

STRIPE_DDL = """
create schema if not exists raw;

create table if not exists raw.stripe_objects (
    object_type varchar not null,
    id varchar not null,
    parent_id varchar,
    created timestamp,
    livemode boolean,
    version_seen varchar not null,
    api_version varchar,
    synced_at timestamp not null,
    data json not null,
    primary key (object_type, id)
);

create table if not exists raw.stripe_sync_state (
    source varchar not null,
    resource varchar not null,
    created_cursor bigint,
    last_event_id varchar,
    last_event_created bigint,
    last_full_sync_at timestamp,
    updated_at timestamp not null,
    primary key (source, resource)
);

create table if not exists raw.stripe_sync_runs (
    run_id bigint,
    source varchar,
    mode varchar,
    started_at timestamp,
    finished_at timestamp,
    counts json
);
"""

#: Every ``object`` value the sync stores, parents before children.
OBJECT_TYPES = (
    "customer",
    "product",
    "price",
    "subscription",
    "subscription_item",
    "invoice",
    "line_item",
    "credit_note",
    "credit_note_line_item",
    "billing.meter",
    "billing.meter_event_summary",
)

#: Parent object -> the child object type whose complete set it embeds or lists.
CHILD_TYPE = {
    "invoice": "line_item",
    "credit_note": "credit_note_line_item",
    "subscription": "subscription_item",
}


def ensure_stripe_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``raw.stripe_objects``, ``raw.stripe_sync_state`` and ``raw.stripe_sync_runs``."""
    con.execute(STRIPE_DDL)
