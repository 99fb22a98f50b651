"""From the warehouse's alert outbox to the delivery store, and endpoints from the catalog.

``enqueue_from_outbox(con, store)`` copies the ``alerts.outbox`` rows the store has not seen
(by ``alert_id``) into ``webhook_messages`` with their deliveries. It only reads the warehouse
and is idempotent: run it as often as you like, an alert is queued once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb

from meterworks.webhooks.settings import EMBEDDED
from meterworks.webhooks.signing import generate_secret
from meterworks.webhooks.store import DeliveryStore, utcnow

CATALOG = "catalog"


@dataclass(frozen=True)
class EnqueueResult:
    outbox_rows: int
    messages_added: int
    deliveries_created: int


def canonical_body(payload: Any) -> str:
    """The exact body sent (and signed): compact JSON with sorted keys."""
    if isinstance(payload, str):
        payload = json.loads(payload)
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _has_outbox(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'alerts' and table_name = 'outbox'"
        ).fetchone()[0]
    )


def enqueue_from_outbox(
    con: duckdb.DuckDBPyConnection,
    store: DeliveryStore,
    *,
    mode: str = EMBEDDED,
    now: datetime | None = None,
    chunk: int = 5000,
) -> EnqueueResult:
    """Queue every outbox alert the store does not hold yet (one message per alert)."""
    now = now or utcnow()
    if not _has_outbox(con):
        return EnqueueResult(0, 0, 0)
    # alerts are written with their evaluation time: re-read a day before the newest one held
    # (slack for clock skew between evaluations), never the whole history
    latest = store.latest_message_created_at()
    since = datetime(1970, 1, 1) if latest is None else latest - timedelta(days=1)
    ids = [
        row[0]
        for row in con.execute(
            "select alert_id from alerts.outbox where created_at >= ?", [since]
        ).fetchall()
    ]
    new_ids = sorted(set(ids) - store.known_message_ids(ids))
    added = created = 0
    for start in range(0, len(new_ids), chunk):
        part = new_ids[start : start + chunk]
        rows = con.execute(
            "select alert_id, event_type, customer_id, created_at, cast(payload as varchar) "
            "from alerts.outbox where alert_id in (select unnest(?)) order by created_at, alert_id",
            [part],
        ).fetchall()
        a, c = store.add_messages(
            (
                {
                    "message_id": alert_id,
                    "event_type": event_type,
                    "customer_id": customer_id,
                    "created_at": created_at,
                    "body": canonical_body(payload),
                }
                for alert_id, event_type, customer_id, created_at, payload in rows
            ),
            mode=mode,
            now=now,
        )
        added += a
        created += c
    return EnqueueResult(len(ids), added, created)


def sync_endpoints(
    store: DeliveryStore,
    customers: Iterable[Any],
    *,
    now: datetime | None = None,
) -> dict[str, list[str]]:
    """Make the store's catalog endpoints match the catalog's ``webhook_url``s.

    ``customers`` are catalog customers (``.id``, ``.webhook_url``). A new endpoint gets a fresh
    ``whsec_`` secret (used by the embedded sender, and given to Svix when it is registered
    there, so the customer verifies with the same secret in both modes). An endpoint whose URL
    left the catalog is marked removed (its pending deliveries fail). Returns the endpoint ids
    created, kept and removed."""
    now = now or utcnow()
    created: list[str] = []
    kept: list[str] = []
    keep: set[tuple[str, str]] = set()
    for customer in customers:
        url = getattr(customer, "webhook_url", None)
        if not url:
            continue
        keep.add((customer.id, url))
        endpoint_id, is_new = store.upsert_endpoint(
            customer.id, url, now=now, source=CATALOG, secret=generate_secret()
        )
        (created if is_new else kept).append(endpoint_id)
    removed = store.remove_endpoints_except(keep, source=CATALOG, now=now)
    return {"created": created, "kept": kept, "removed": removed}
