"""The alert outbox: every alert, once, waiting for webhook delivery.

``alerts.outbox`` holds one row per alert with a stable ``alert_id`` (the webhook's event id),
its ``event_type`` and its versioned JSON ``payload``. Writers insert inside their own
transaction; an ``alert_id`` already present is left untouched, so re-running an evaluation
never queues an alert twice. Delivery reads from here (issue 6).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import duckdb

OUTBOX_DDL = """
create schema if not exists alerts;

create table if not exists alerts.outbox (
    alert_id varchar primary key,
    event_type varchar not null,
    customer_id varchar not null,
    created_at timestamp not null,
    payload json not null,
    delivery_status varchar not null default 'pending'
);
"""


def ensure_outbox(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(OUTBOX_DDL)


def write_outbox(
    con: duckdb.DuckDBPyConnection, payloads: Iterable[dict[str, Any]], now: datetime
) -> int:
    """Queue each payload (it carries ``alert_id``, ``event_type``, ``customer_id``) once.

    Returns how many were new. Runs in the caller's transaction.
    """
    rows = [
        [p["alert_id"], p["event_type"], p["customer_id"], now, json.dumps(p, sort_keys=True)]
        for p in payloads
    ]
    if not rows:
        return 0
    before = con.execute("select count(*) from alerts.outbox").fetchone()[0]
    con.executemany(
        """
        insert into alerts.outbox (alert_id, event_type, customer_id, created_at, payload,
                                   delivery_status)
        values (?, ?, ?, ?, ?, 'pending')
        on conflict (alert_id) do nothing
        """,
        rows,
    )
    return con.execute("select count(*) from alerts.outbox").fetchone()[0] - before
