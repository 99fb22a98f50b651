"""Embedded webhook delivery: signatures, schemas, the outbox, retries, faults, endpoints, CLI.

Real HTTP to receivers on 127.0.0.1 that verify every message with ``svix.webhooks.Webhook``.
The retry schedule runs on an injected clock (``drain(store, now)``), so no test sleeps for it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import stat
import threading
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import httpx
import jsonschema
import pytest
from svix.webhooks import Webhook

from meterworks.warehouse import connect
from meterworks.webhooks import DeliveryStore, EmbeddedSender, drain, enqueue_from_outbox
from meterworks.webhooks.cli import add_webhooks_parser
from meterworks.webhooks.outbox import sync_endpoints
from meterworks.webhooks.schemas import (
    EVENT_TYPES,
    SCHEMA_DIR,
    payload_schemas,
    render,
    schema_path,
)
from meterworks.webhooks.settings import SVIX_RETRY_SCHEDULE, WebhookSettings
from meterworks.webhooks.signing import generate_secret, signed_headers
from meterworks.webhooks.store import FAILED, SUCCEEDED
from tests.webhook_fixtures import build_alert_warehouse
from tests.webhook_receiver import WebhookReceiver, seeded_failure

T0 = datetime(2026, 3, 2, 9, 0, 0)
CUSTOMERS = ["acme", "globex", "initech"]


# -- helpers ---------------------------------------------------------------------------------
def settings(**kw) -> WebhookSettings:
    return WebhookSettings(state_url="unused", **kw)


@pytest.fixture
def store(tmp_path: Path) -> DeliveryStore:
    store = DeliveryStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    yield store
    store.close()


@pytest.fixture
def rx() -> WebhookReceiver:
    with WebhookReceiver() as receiver:
        yield receiver


def customer_endpoint(store: DeliveryStore, rx: WebhookReceiver, customer: str, **faults) -> str:
    """A catalog endpoint for ``customer`` at a receiver path that knows its secret."""
    url = f"{rx.base_url}/{customer}"
    endpoint_id, _ = store.upsert_endpoint(customer, url, now=T0, secret=generate_secret())
    rx.add_endpoint(f"/{customer}", store.endpoint_secret(endpoint_id), **faults)
    return endpoint_id


def synthetic(store: DeliveryStore, customer: str, n: int, start: int = 0) -> list[str]:
    ids = [f"thr_{customer[:4]}{i:028x}" for i in range(start, start + n)]
    store.add_messages(
        [
            {
                "message_id": alert_id,
                "event_type": "usage.threshold_crossed",
                "customer_id": customer,
                "body": json.dumps({"alert_id": alert_id, "customer_id": customer}),
                "created_at": T0,
            }
            for alert_id in ids
        ],
        mode="embedded",
        now=T0,
    )
    return ids


def run_schedule(store, sender, cfg, start=T0, max_rounds=30) -> list[datetime]:
    """Drain at every instant something falls due (bounded); returns the drain instants."""
    now, instants = start, []
    for _ in range(max_rounds):
        drain(store, now, sender=sender, settings=cfg)
        instants.append(now)
        due = store.next_due_at()
        if due is None:
            return instants
        now = max(now, due)
    raise AssertionError("schedule did not settle")


def attempts(store, message_id) -> list[dict]:
    return store.attempts_of(message_id)


@pytest.fixture
def sender():
    s = EmbeddedSender(timeout=5.0, workers=8)
    yield s
    s.close()


# -- signatures and schemas ------------------------------------------------------------------
def test_signature_is_what_the_official_library_signs_and_verifies():
    secret = generate_secret()
    body = b'{"alert_id":"thr_1","value":1}'
    ts = int(datetime.now().timestamp())
    headers = signed_headers(_key(secret), "thr_1", ts, body)
    official = Webhook(secret).sign("thr_1", datetime.fromtimestamp(ts), body.decode())
    assert headers["svix-signature"] == official
    Webhook(secret).verify(body, headers)  # raises when wrong
    assert secret.startswith("whsec_") and secret != generate_secret()


def _key(secret: str) -> bytes:
    from meterworks.webhooks.signing import secret_key

    return secret_key(secret)


def test_schema_files_equal_the_python_schemas():
    schemas = payload_schemas()
    assert {event_type for event_type, _ in schemas} == set(EVENT_TYPES)
    for (event_type, version), schema in schemas.items():
        path = schema_path(event_type, version)
        assert path.exists(), f"run `python -m meterworks.webhooks.schemas` ({path.name})"
        assert path.read_text(encoding="utf-8") == render(schema), f"{path.name} drifted"
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["title"] == event_type
    on_disk = {p.name for p in SCHEMA_DIR.glob("*.json")}
    assert on_disk == {schema_path(e, v).name for e, v in schemas}, "stale schema files"


@pytest.fixture(scope="module")
def alert_warehouse(tmp_path_factory) -> Path:
    return build_alert_warehouse(tmp_path_factory.mktemp("wh") / "w.duckdb", CUSTOMERS)


def validator(event_type: str) -> jsonschema.Validator:
    schema = json.loads(schema_path(event_type, 1).read_text())
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def test_real_alerts_enqueued_once_validated_and_delivered_verified(
    alert_warehouse, store, rx, sender
):
    import duckdb

    endpoint_ids = {c: customer_endpoint(store, rx, c) for c in CUSTOMERS[:2]}  # initech: none
    with duckdb.connect(str(alert_warehouse), read_only=True) as con:
        outbox = con.execute(
            "select alert_id, event_type, customer_id, cast(payload as varchar) from alerts.outbox"
        ).fetchall()
        first = enqueue_from_outbox(con, store, now=T0)
        again = enqueue_from_outbox(con, store, now=T0)
    assert {e for _, e, _, _ in outbox} == set(EVENT_TYPES)  # every event type, real payloads
    assert first.messages_added == len(outbox) and again.messages_added == 0
    assert first.deliveries_created == sum(1 for _, _, c, _ in outbox if c != "initech")
    for _, event_type, _, payload in outbox:
        validator(event_type).validate(json.loads(payload))

    report = drain(store, T0, sender=sender, settings=settings())
    assert report.succeeded == first.deliveries_created and report.failed == 0
    for customer in CUSTOMERS:
        got = rx.received.get(f"/{customer}", [])
        want = {a for a, _, c, _ in outbox if c == customer and customer != "initech"}
        assert {d.msg_id for d in got} == want and len(got) == len(want)
        for d in got:  # svix-id is the alert id; the body is the outbox payload, valid
            assert d.payload["alert_id"] == d.msg_id
            validator(d.payload["event_type"]).validate(d.payload)
        assert not rx.rejected.get(f"/{customer}")
    for alert_id, _, customer, _ in outbox:
        rows = attempts(store, alert_id)
        if customer == "initech":
            assert rows == []
            continue
        [row] = rows
        assert row["target"] == endpoint_ids[customer] and row["outcome"] == SUCCEEDED
        assert row["status_code"] == 204 and row["latency_ms"] > 0 and row["attempt_no"] == 1
    assert store.counts() == {SUCCEEDED: first.deliveries_created}


# -- retries on Svix's schedule ---------------------------------------------------------------
def cumulative(n: int) -> list[datetime]:
    out, t = [T0], T0
    for delay in SVIX_RETRY_SCHEDULE[: n - 1]:
        t += delay
        out.append(t)
    return out


def test_receiver_down_for_first_attempts_then_delivered_on_schedule(store, rx, sender):
    customer_endpoint(store, rx, "acme", fail_first=3, fail_status=503)
    [alert_id] = synthetic(store, "acme", 1)
    run_schedule(store, sender, settings())
    rows = attempts(store, alert_id)
    assert [r["status_code"] for r in rows] == [503, 503, 503, 204]
    assert [r["outcome"] for r in rows] == [FAILED, FAILED, FAILED, SUCCEEDED]
    assert [r["started_at"] for r in rows] == cumulative(4)  # 0, +5 s, +5 min, +30 min
    assert [r["attempt_no"] for r in rows] == [1, 2, 3, 4]
    assert rx.ids("/acme") == [alert_id]
    [delivery] = store.deliveries(message_id=alert_id)
    assert delivery["status"] == SUCCEEDED and delivery["attempts"] == 4


def test_connection_refused_until_the_receiver_comes_up(store, sender):
    rx = WebhookReceiver().up()
    customer_endpoint(store, rx, "acme")
    rx.down()  # nothing listens on the port now
    ids = synthetic(store, "acme", 3)
    drain(store, T0, sender=sender, settings=settings())
    errors = {r["error"].split(":")[0] for i in ids for r in attempts(store, i)}
    assert errors == {"ConnectError"}
    rx.up()  # same port
    try:
        drain(store, T0 + timedelta(seconds=5), sender=sender, settings=settings())
        assert sorted(rx.ids("/acme")) == ids
        assert all(len(attempts(store, i)) == 2 for i in ids)
    finally:
        rx.down()


def test_schedule_exhausted_then_failed_and_replayed_by_command(store, rx, sender, tmp_path):
    endpoint_id = customer_endpoint(store, rx, "acme", fail_first=8, fail_status=500)
    [alert_id] = synthetic(store, "acme", 1)
    run_schedule(store, sender, settings())
    rows = attempts(store, alert_id)
    assert [r["started_at"] for r in rows] == cumulative(8)  # 8 attempts over ~27.6 h
    assert rows[-1]["started_at"] - T0 == timedelta(hours=27, minutes=35, seconds=5)
    [delivery] = store.deliveries(message_id=alert_id)
    assert delivery["status"] == FAILED and delivery["next_attempt_at"] is None
    assert store.list_endpoints("acme")[0].status == "enabled"  # 27.6 h < 5 days
    assert rx.ids("/acme") == []

    code, out = run_cli(tmp_path, store, ["replay", alert_id])
    assert code == 0 and "succeeded" in out
    rows = attempts(store, alert_id)
    assert len(rows) == 9 and rows[-1]["trigger"] == "replay" and rows[-1]["status_code"] == 204
    assert rx.ids("/acme") == [alert_id]
    assert store.list_endpoints("acme")[0].endpoint_id == endpoint_id


def test_random_500s_seeded_exact_attempts(store, rx, sender):
    customer_endpoint(store, rx, "acme", fail_rate=0.35, seed=11)
    ids = synthetic(store, "acme", 60)
    run_schedule(store, sender, settings())

    def expected_attempts(msg_id: str) -> int:
        n = 1
        while seeded_failure(11, msg_id, n, 0.35):
            n += 1
        return n

    expected = {i: expected_attempts(i) for i in ids}
    assert any(n > 1 for n in expected.values()) and max(expected.values()) <= 8
    assert {i: len(attempts(store, i)) for i in ids} == expected
    assert sorted(rx.ids("/acme")) == sorted(ids)  # each once, verified
    assert store.counts() == {SUCCEEDED: 60}


def test_slow_receiver_times_out_then_answers(store, rx):
    slow = EmbeddedSender(timeout=0.2, workers=4)
    try:
        customer_endpoint(store, rx, "acme", delay=0.6)
        ids = synthetic(store, "acme", 4)
        drain(store, T0, sender=slow, settings=settings())
        drain(store, T0 + timedelta(seconds=5), sender=slow, settings=settings())
        rx.endpoints["/acme"].delay = 0.0
        drain(store, T0 + timedelta(minutes=5, seconds=5), sender=slow, settings=settings())
    finally:
        slow.close()
    for i in ids:
        rows = attempts(store, i)
        assert [r["outcome"] for r in rows] == [FAILED, FAILED, SUCCEEDED]
        assert rows[0]["error"] == "timeout: no answer within 0.2 s"
        assert rows[0]["status_code"] is None and 150 < rows[0]["latency_ms"] < 1500
    assert store.counts() == {SUCCEEDED: 4}


def test_endpoint_disabled_after_sustained_failure_and_enabled_by_command(
    store, rx, sender, tmp_path
):
    endpoint_id = customer_endpoint(store, rx, "acme", fail_first=10**6, fail_status=500)
    customer_endpoint(store, rx, "globex")  # healthy neighbour
    [alert_id] = synthetic(store, "acme", 1)
    [other] = synthetic(store, "globex", 1)
    cfg = settings(disable_after=timedelta(hours=1))
    run_schedule(store, sender, cfg)
    rows = attempts(store, alert_id)
    # failing since T0; the first failure at or after T0 + 1 h disables it: attempt 5 at 2h35m5s
    assert [r["started_at"] for r in rows] == cumulative(5)
    [endpoint] = store.list_endpoints("acme")
    assert endpoint.status == "disabled" and endpoint.failing_since == T0
    assert endpoint.disabled_at == cumulative(5)[-1]
    assert rx.ids("/globex") == [other]
    # a new alert for the disabled endpoint is held, not attempted
    [held] = synthetic(store, "acme", 1, start=1)
    later = T0 + timedelta(hours=3)
    drain(store, later, sender=sender, settings=cfg)
    assert attempts(store, held) == [] and store.next_due_at() is None
    code, out = run_cli(tmp_path, store, ["list", "--customer", "acme"])
    assert code == 0 and out.count("held") == 2

    rx.endpoints["/acme"].fail_first = 0
    code, out = run_cli(tmp_path, store, ["enable", endpoint_id])
    assert code == 0 and "2 held deliveries" in out
    drain(store, sender=sender, settings=cfg)  # wall clock: due now
    assert sorted(rx.ids("/acme")) == sorted([alert_id, held])
    [endpoint] = store.list_endpoints("acme")
    assert endpoint.status == "enabled" and endpoint.failing_since is None


def test_tampered_stale_or_wrongly_signed_messages_are_rejected(store, rx, sender):
    customer_endpoint(store, rx, "acme")
    secret = rx.endpoints["/acme"].secret
    url = f"{rx.base_url}/acme"
    body = b'{"alert_id":"thr_x","quantity":10}'
    now = int(datetime.now().timestamp())

    def post(content: bytes, headers: dict) -> int:
        return httpx.post(url, content=content, headers=headers, trust_env=False).status_code

    good = signed_headers(_key(secret), "thr_x", now, body)
    assert post(body, good) == 204
    assert post(body.replace(b"10", b"99"), good) == 400  # tampered body
    stale = signed_headers(_key(secret), "thr_x", now - 600, body)
    assert post(body, stale) == 400  # 10 minutes old
    wrong = signed_headers(_key(generate_secret()), "thr_x", now, body)
    assert post(body, wrong) == 400
    assert len(rx.rejected["/acme"]) == 3 and rx.ids("/acme") == ["thr_x"]

    # the receiver rotated its secret without telling us: deliveries fail, and are recorded
    rx.set_secret("/acme", generate_secret())
    [alert_id] = synthetic(store, "acme", 1)
    drain(store, T0, sender=sender, settings=settings())
    [row] = attempts(store, alert_id)
    assert row["status_code"] == 400 and row["outcome"] == FAILED


def test_reserved_domains_are_never_contacted(store, sender):
    sync_endpoints(store, [SimpleNamespace(id="acme", webhook_url="https://hooks.acme.example/x")])
    [alert_id] = synthetic(store, "acme", 1)
    drain(store, T0, sender=sender, settings=settings())
    [row] = attempts(store, alert_id)
    assert row["error"].startswith("not sent: reserved domain") and row["latency_ms"] is None


def test_two_concurrent_drains_never_send_a_message_twice(store, rx, tmp_path):
    customer_endpoint(store, rx, "acme", delay=0.002)
    ids = synthetic(store, "acme", 400)
    other = DeliveryStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    senders = [EmbeddedSender(timeout=5, workers=4), EmbeddedSender(timeout=5, workers=4)]
    threads = [
        threading.Thread(
            target=drain,
            args=(s, T0),
            kwargs={"sender": sn, "settings": settings(), "batch_size": 25, "worker": f"w{k}"},
        )
        for k, (s, sn) in enumerate(zip([store, other], senders, strict=True))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for s in senders:
        s.close()
    other.close()
    assert sorted(rx.ids("/acme")) == sorted(ids)  # each exactly once
    workers = {r["worker"] for i in ids for r in attempts(store, i)}
    assert workers == {"w0", "w1"}  # both took part
    assert all(len(attempts(store, i)) == 1 for i in ids)


def test_catalog_sync_creates_removes_and_restores_endpoints(store):
    acme = SimpleNamespace(id="acme", webhook_url="http://127.0.0.1:9/acme")
    none = SimpleNamespace(id="globex", webhook_url=None)
    first = sync_endpoints(store, [acme, none], now=T0)
    assert len(first["created"]) == 1 and first["removed"] == []
    [endpoint_id] = first["created"]
    secret = store.endpoint_secret(endpoint_id)
    assert sync_endpoints(store, [acme], now=T0)["kept"] == [endpoint_id]
    [alert_id] = synthetic(store, "acme", 1)
    assert sync_endpoints(store, [], now=T0)["removed"] == [endpoint_id]
    [delivery] = store.deliveries(message_id=alert_id)
    assert delivery["status"] == FAILED and delivery["last_error"] == "endpoint removed"
    assert sync_endpoints(store, [acme], now=T0)["kept"] == [endpoint_id]
    assert store.endpoint_secret(endpoint_id) == secret  # same endpoint, same secret
    assert store.list_endpoints("acme")[0].status == "enabled"


# -- secrets and the CLI -------------------------------------------------------------------------
def run_cli(tmp_path: Path, store: DeliveryStore, argv: list[str]) -> tuple[int, str]:
    import contextlib
    import io

    parser = argparse.ArgumentParser()
    add_webhooks_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["webhooks", *argv])
    url = str(store.engine.url)
    out = io.StringIO()
    old = os.environ.get("METERWORKS_STATE_URL")
    os.environ["METERWORKS_STATE_URL"] = url
    try:
        with contextlib.redirect_stdout(out):
            code = args.func(args, SimpleNamespace(home=tmp_path))
    finally:
        if old is None:
            os.environ.pop("METERWORKS_STATE_URL", None)
        else:
            os.environ["METERWORKS_STATE_URL"] = old
    return code, out.getvalue()


def test_secrets_are_never_printed_or_logged(store, rx, sender, tmp_path, caplog, capsys):
    endpoint_id = customer_endpoint(store, rx, "acme", fail_first=1)
    secret = store.endpoint_secret(endpoint_id)
    [alert_id] = synthetic(store, "acme", 1)
    caplog.set_level(logging.DEBUG)
    drain(store, T0, sender=sender, settings=settings())
    drain(store, T0 + timedelta(seconds=5), sender=sender, settings=settings())
    outputs = []
    for argv in (["list"], ["list", "--json"], ["endpoints"], ["attempts", alert_id]):
        code, out = run_cli(tmp_path, store, argv)
        assert code == 0
        outputs.append(out)
    out_file = tmp_path / "acme.secret"
    code, out = run_cli(tmp_path, store, ["secret", endpoint_id, "--out", str(out_file)])
    outputs.append(out)
    captured = capsys.readouterr()
    everything = "\n".join([*outputs, caplog.text, captured.out, captured.err])
    assert secret not in everything and secret.removeprefix("whsec_") not in everything
    assert alert_id in outputs[0] and "whsec_…" in outputs[2]
    assert out_file.read_text().strip() == secret
    assert stat.S_IMODE(out_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "state.db").stat().st_mode) == 0o600
    job = store.claim(now=T0 + timedelta(days=9), limit=1, lease=timedelta(1), worker="w")
    assert job == [] or secret not in repr(job)
    code, _ = run_cli(tmp_path, store, ["secret", endpoint_id, "--out", str(out_file)])
    assert code == 2  # never overwrites


def test_cli_reports_unknown_ids_as_one_line(store, tmp_path, capsys):
    for argv in (["replay", "thr_nope"], ["enable", "ep_nope"], ["attempts", "thr_nope"]):
        code, _ = run_cli(tmp_path, store, argv)
        assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("meterworks webhooks: ") for line in err)


def test_enqueue_reads_only_the_outbox_since_the_newest_message_held(tmp_path, store):
    """A copy starts a day before the newest alert the store holds, not at the beginning."""
    from alerts.outbox import ensure_outbox, write_outbox

    con = connect(tmp_path / "w.duckdb")

    def alert(n: int) -> dict:
        return {"alert_id": f"thr_{n:032x}", "event_type": "usage.threshold_crossed",
                "customer_id": "acme", "n": n}  # fmt: skip

    ensure_outbox(con)
    write_outbox(con, [alert(i) for i in range(5)], T0 - timedelta(days=10))
    first = enqueue_from_outbox(con, store, now=T0)
    write_outbox(con, [alert(5)], T0 - timedelta(days=5))
    second = enqueue_from_outbox(con, store, now=T0)
    write_outbox(con, [alert(6)], T0 - timedelta(days=1))
    third = enqueue_from_outbox(con, store, now=T0)
    con.close()
    assert (first.outbox_rows, first.messages_added) == (5, 5)
    assert (second.outbox_rows, second.messages_added) == (6, 1)  # since 11 days ago
    assert (third.outbox_rows, third.messages_added) == (2, 1)  # since 6 days ago
