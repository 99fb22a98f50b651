"""Svix mode: the real ``svix`` SDK against a local Svix-compatible server (tests/svix_server.py),
which delivers to the same verifying receivers as the embedded sender."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest
from svix.api import ApplicationIn, MessageIn, Svix, SvixOptions

from meterworks.webhooks import (
    DeliveryStore,
    EmbeddedSender,
    SvixSender,
    drain,
    enqueue_from_outbox,
    sync_endpoints,
)
from meterworks.webhooks.schemas import payload_schemas
from meterworks.webhooks.settings import WebhookSettings
from meterworks.webhooks.store import FAILED, PENDING, SUCCEEDED
from tests.svix_server import SvixTestServer
from tests.webhook_fixtures import build_alert_warehouse
from tests.webhook_receiver import WebhookReceiver

T0 = datetime(2026, 3, 2, 9, 0, 0)
CUSTOMERS = ["acme", "globex", "initech"]
CFG = WebhookSettings(state_url="unused")


@pytest.fixture
def svix():
    with SvixTestServer() as server:
        yield server


@pytest.fixture
def rx():
    with WebhookReceiver() as receiver:
        yield receiver


def open_store(path: Path) -> DeliveryStore:
    return DeliveryStore.open(f"sqlite:///{path}")


def catalog_customers(rx: WebhookReceiver, prefix: str) -> list[SimpleNamespace]:
    return [SimpleNamespace(id=c, webhook_url=f"{rx.base_url}/{prefix}/{c}") for c in CUSTOMERS]


def listen(store: DeliveryStore, rx: WebhookReceiver, prefix: str) -> None:
    """Receivers at the store's endpoint URLs, each with the endpoint's secret."""
    for endpoint in store.list_endpoints():
        rx.add_endpoint(
            f"/{prefix}/{endpoint.customer_id}", store.endpoint_secret(endpoint.endpoint_id)
        )


def svix_messages(server: SvixTestServer) -> list[dict]:
    return [m for msgs in server.messages.values() for m in msgs]


def valid_payload(alert_id: str, customer: str) -> dict:
    """A ``usage.threshold_crossed`` payload that matches its schema."""
    return {
        "schema_version": 1,
        "event_type": "usage.threshold_crossed",
        "alert_id": alert_id,
        "customer_id": customer,
        "meter_code": "api_calls",
        "period_start": "2026-03-01T00:00:00Z",
        "period_end": "2026-04-01T00:00:00Z",
        "threshold": {"kind": "percent", "value": 80, "unit": "percent_of_included"},
        "included": 1000,
        "quantity": 800,
        "percent_used": 80.0,
        "currency": "usd",
        "amount_to_date": 0,
        "projected_amount": 0,
        "period_closed": False,
        "evaluated_at": "2026-03-02T09:00:00Z",
    }


def synthetic(store: DeliveryStore, customer: str, n: int, valid: bool = True) -> list[str]:
    ids = [f"thr_{i:032x}" for i in range(n)]
    store.add_messages(
        [
            {
                "message_id": i,
                "event_type": "usage.threshold_crossed",
                "customer_id": customer,
                "body": json.dumps(valid_payload(i, customer) if valid else {"alert_id": i}),
                "created_at": T0,
            }
            for i in ids
        ],
        mode="svix",
        now=T0,
    )
    return ids


@pytest.fixture(scope="module")
def alert_warehouse(tmp_path_factory) -> Path:
    return build_alert_warehouse(tmp_path_factory.mktemp("wh") / "w.duckdb", CUSTOMERS)


def test_both_modes_deliver_the_same_alerts(alert_warehouse, svix, rx, tmp_path):
    with duckdb.connect(str(alert_warehouse), read_only=True) as con:
        outbox = {
            a: (e, c)
            for a, e, c in con.execute(
                "select alert_id, event_type, customer_id from alerts.outbox"
            ).fetchall()
        }
    delivered = {}
    for mode in ("embedded", "svix"):
        store = open_store(tmp_path / f"{mode}.db")
        sync_endpoints(store, catalog_customers(rx, mode), now=T0)
        listen(store, rx, mode)
        with duckdb.connect(str(alert_warehouse), read_only=True) as con:
            enqueue_from_outbox(con, store, mode=mode, now=T0)
        sender = (
            SvixSender(svix.token, svix.url, timeout=5)
            if mode == "svix"
            else EmbeddedSender(timeout=5)
        )
        report = drain(store, T0, sender=sender, settings=CFG)
        sender.close()
        assert report.succeeded == len(outbox) and report.failed == 0
        assert store.counts() == {SUCCEEDED: len(outbox)}
        svix.wait_dispatched()
        delivered[mode] = {
            (d.payload["alert_id"], d.payload["event_type"], c, d.msg_id)
            for c in CUSTOMERS
            for d in rx.received[f"/{mode}/{c}"]
        }
        assert not any(rx.rejected.values())
        store.close()

    def alerts(mode):
        return {(a, e, c) for a, e, c, _ in delivered[mode]}

    assert alerts("embedded") == alerts("svix") == {(a, e, c) for a, (e, c) in outbox.items()}
    # embedded: svix-id is the alert id; Svix: its own msg_ id, exactly one per alert
    assert all(a == m for a, _, _, m in delivered["embedded"])
    svix_ids = {a: m for a, _, _, m in delivered["svix"]}
    assert len(svix_ids) == len(outbox) and all(m.startswith("msg_") for m in svix_ids.values())

    # what the Svix server holds: event types with the repo's schemas, one app per customer
    # (uid = customer id), the catalog endpoint, one message per alert with eventId = alert id
    registered = {name: et["schemas"] for name, et in svix.event_types.items()}
    assert registered == {e: {str(v): s} for (e, v), s in payload_schemas().items()}
    assert sorted(app["uid"] for app in svix.apps.values()) == sorted(CUSTOMERS)
    for app in svix.apps.values():
        [endpoint] = svix.endpoints[app["id"]]
        assert endpoint["url"].endswith(f"/svix/{app['uid']}")
    messages = svix_messages(svix)
    assert sorted(m["eventId"] for m in messages) == sorted(outbox)
    assert all(m["eventType"] == outbox[m["eventId"]][0] for m in messages)


def test_duplicate_event_id_counts_as_delivered(svix, tmp_path):
    store = open_store(tmp_path / "s.db")
    [lost, sent_before] = synthetic(store, "acme", 2)
    client = Svix(svix.token, SvixOptions(server_url=svix.url))
    client.application.get_or_create(ApplicationIn(name="acme", uid="acme"))
    client.message.create(
        "acme",
        MessageIn(event_id=sent_before, event_type="usage.threshold_crossed", payload={"x": 1}),
    )
    # the answer to the first create is lost (Svix created it): the SDK's retry gets 409
    svix.inject(500, times=1, path_prefix="/api/v1/app/acme/msg", method="POST", after_commit=True)
    sender = SvixSender(svix.token, svix.url, timeout=5, workers=1)
    report = drain(store, T0, sender=sender, settings=CFG)
    assert report.succeeded == 2 and report.failed == 0
    for alert_id in (lost, sent_before):
        [row] = store.attempts_of(alert_id)
        assert row["outcome"] == SUCCEEDED and row["status_code"] == 409
    events = [m["eventId"] for m in svix_messages(svix)]
    assert sorted(events) == sorted([lost, sent_before])  # never twice


def test_rate_limit_backs_off_and_leaves_the_rest_for_the_next_pass(svix, tmp_path):
    store = open_store(tmp_path / "s.db")
    ids = synthetic(store, "acme", 6)
    svix.inject(429, times=1, path_prefix="/api/v1/app/acme/msg", method="POST")
    sender = SvixSender(svix.token, svix.url, timeout=5, workers=1)
    report = drain(store, T0, sender=sender, settings=CFG)
    assert report.throttled and report.failed == 1 and report.succeeded == 0
    assert report.released == 5  # not attempted, no attempt recorded
    [limited] = store.attempts_of(ids[0])
    assert limited["status_code"] == 429 and limited["error"] == "svix: rate limited"
    assert all(store.attempts_of(i) == [] for i in ids[1:])
    assert store.next_due_at() == T0  # the others are still due now
    report = drain(store, T0, sender=sender, settings=CFG)
    assert report.succeeded == 5
    [delivery] = store.deliveries(message_id=ids[0])
    assert delivery["status"] == PENDING and delivery["next_attempt_at"] == T0 + timedelta(
        seconds=5
    )
    drain(store, T0 + timedelta(seconds=5), sender=sender, settings=CFG)
    assert store.counts() == {SUCCEEDED: 6}
    assert sorted(m["eventId"] for m in svix_messages(svix)) == sorted(ids)


def test_outage_is_retried_from_the_outbox_with_backoff(svix, tmp_path):
    store = open_store(tmp_path / "s.db")
    ids = synthetic(store, "acme", 3)
    sender = SvixSender(svix.token, svix.url, timeout=5, workers=4)
    sender.prepare(store, [])  # event types registered before the outage
    sender.ensure_customer(store, "acme")
    svix.inject(503, times=None, path_prefix="/api/v1/app/acme/msg")
    drain(store, T0, sender=sender, settings=CFG)
    drain(store, T0 + timedelta(seconds=5), sender=sender, settings=CFG)
    for i in ids:
        rows = store.attempts_of(i)
        assert [r["status_code"] for r in rows] == [503, 503]
        assert rows[0]["error"].startswith("svix: HTTP 503")
    [delivery] = store.deliveries(message_id=ids[0])
    assert delivery["next_attempt_at"] == T0 + timedelta(seconds=15)  # 5 s, then 10 s
    svix._faults.clear()  # Svix is back
    drain(store, T0 + timedelta(seconds=15), sender=sender, settings=CFG)
    assert store.counts() == {SUCCEEDED: 3}
    assert sorted(m["eventId"] for m in svix_messages(svix)) == sorted(ids)


def test_invalid_message_is_a_permanent_failure(svix, tmp_path):
    store = open_store(tmp_path / "s.db")
    [alert_id] = synthetic(store, "acme", 1, valid=False)  # misses required fields
    drain(store, T0, sender=SvixSender(svix.token, svix.url, timeout=5), settings=CFG)
    [row] = store.attempts_of(alert_id)
    assert row["status_code"] == 422 and row["error"].startswith("svix: HTTP 422")
    [delivery] = store.deliveries(message_id=alert_id)
    assert delivery["status"] == FAILED and delivery["attempts"] == 1


def test_setup_failure_holds_the_customers_messages(svix, tmp_path):
    store = open_store(tmp_path / "s.db")
    [alert_id] = synthetic(store, "acme", 1)
    svix.inject(503, times=None, path_prefix="/api/v1/app", method="POST")
    sender = SvixSender(svix.token, svix.url, timeout=5)
    drain(store, T0, sender=sender, settings=CFG)
    [row] = store.attempts_of(alert_id)
    assert row["error"].startswith("svix setup:") and svix_messages(svix) == []
    svix._faults.clear()
    drain(store, T0 + timedelta(seconds=5), sender=SvixSender(svix.token, svix.url), settings=CFG)
    assert store.counts() == {SUCCEEDED: 1}
