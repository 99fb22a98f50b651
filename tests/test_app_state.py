"""App state (meterworks.state) on SQLite and on a real PostgreSQL server: migrations,
adjustments and their validation, edits and voids, the append-only audit log, users and roles,
the export to raw.adjustments, and the idempotent Stripe credit.

PostgreSQL: ``eval "$(scripts/ci/start-postgres.sh)"`` exports ``METERWORKS_TEST_POSTGRES_URL``;
without it those cases are skipped.
"""

from __future__ import annotations

import json
import os
import re
import threading
import uuid
from datetime import datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qsl

import duckdb
import pytest
import sqlalchemy as sa

from meterworks import state
from meterworks.state import AdjustmentError, AdjustmentRequest

NOV = (datetime(2026, 11, 1), datetime(2026, 12, 1))
DEC = (datetime(2026, 12, 1), datetime(2027, 1, 1))
PERIODS = [NOV, DEC]


def _postgres_engine():
    url = os.environ.get("METERWORKS_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("METERWORKS_TEST_POSTGRES_URL unset: run scripts/ci/start-postgres.sh")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = state.make_engine(url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"create schema {schema}")
    engine = state.make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    return engine, admin, schema


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path: Path):
    if request.param == "sqlite":
        engine = state.make_engine(f"sqlite:///{tmp_path / 'state.db'}")
        state.upgrade(engine)
        yield engine
        engine.dispose()
        return
    engine, admin, schema = _postgres_engine()
    state.upgrade(engine)
    yield engine
    engine.dispose()
    with admin.begin() as conn:
        conn.exec_driver_sql(f"drop schema {schema} cascade")
    admin.dispose()


def credit(**kw) -> AdjustmentRequest:
    values = dict(customer_id="acme", kind="credit", period_start=NOV[0], period_end=NOV[1],
                  reason_code="service_outage", note="outage", amount_minor=2500, currency="usd")  # fmt: skip
    values.update(kw)
    return AdjustmentRequest(**values)


def usage(**kw) -> AdjustmentRequest:
    values = dict(customer_id="acme", kind="usage", period_start=DEC[0], period_end=DEC[1],
                  reason_code="duplicate_events", note="test traffic", meter_code="api_calls",
                  quantity=Decimal("-1200.5"))  # fmt: skip
    values.update(kw)
    return AdjustmentRequest(**values)


def create(engine, request, actor="olive"):
    return state.create_adjustment(
        engine, request, actor=actor, known_periods=PERIODS, known_customers={"acme", "zed"},
        known_meters={"api_calls", "tokens"},
    )  # fmt: skip


def test_migrations_are_idempotent(engine) -> None:
    assert state.current_revision(engine) == "0001"
    assert state.upgrade(engine) == "0001"
    tables = set(sa.inspect(engine).get_table_names())
    assert {"adjustments", "audit_log", "app_users", "alembic_version_app_state"} <= tables


def test_adjustments_are_recorded_with_their_audit_row(engine) -> None:
    c = create(engine, credit())
    u = create(engine, usage())
    assert c.adjustment_id.startswith("adj_") and c.amount_minor == 2500 and c.currency == "usd"
    assert u.quantity == Decimal("-1200.5") and u.meter_code == "api_calls"
    assert [a.adjustment_id for a in state.list_adjustments(engine)] == [u.adjustment_id,
                                                                         c.adjustment_id]  # fmt: skip
    entries = state.list_audit(engine)
    assert [(e.action, e.entity_id, e.actor) for e in entries] == [
        ("adjustment.create", u.adjustment_id, "olive"),
        ("adjustment.create", c.adjustment_id, "olive"),
    ]
    assert entries[1].before is None
    assert entries[1].after["amount_minor"] == 2500
    assert entries[1].after["reason_code"] == "service_outage"
    assert entries[0].after["quantity"] == "-1200.5"


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (credit(reason_code=""), "a reason code is required"),
        (credit(reason_code="because"), "unknown reason code 'because'"),
        (credit(amount_minor=-500), "a credit must be a positive amount (got USD -5.00)"),
        (credit(amount_minor=0), "a credit must be a positive amount"),
        (credit(amount_minor=None), "a credit needs an amount"),
        (credit(currency="dollars"), "3-letter currency code"),
        (credit(period_start=datetime(2026, 10, 15), period_end=datetime(2026, 11, 15)),
         "has no billing period 2026-10-15 00:00 .. 2026-11-15 00:00 UTC"),
        (credit(period_start=NOV[1], period_end=NOV[0]), "the period must end after it starts"),
        (credit(customer_id="ghost"), "unknown customer 'ghost'"),
        (credit(reason_code="other", note=""), "reason 'other' needs a note"),
        (usage(quantity=Decimal(0)), "non-zero quantity"),
        (usage(quantity=None), "needs a quantity"),
        (usage(meter_code=None), "a usage adjustment needs a meter"),
        (usage(meter_code="nope"), "unknown meter 'nope'"),
        (usage(amount_minor=100), "has a quantity, not an amount"),
        (credit(kind="refund"), "kind must be 'credit' or 'usage'"),
    ],
)  # fmt: skip
def test_invalid_adjustments_are_refused_with_a_clear_message(engine, request_, message) -> None:
    with pytest.raises(AdjustmentError, match=re.escape(message)):
        create(engine, request_)
    assert state.list_adjustments(engine) == []
    assert state.list_audit(engine) == []


def test_the_database_refuses_what_validation_would(engine) -> None:
    """Check constraints hold even for a writer that skips the validation."""
    from meterworks.state.models import adjustments

    row = dict(adjustment_id="adj_x", customer_id="acme", kind="credit", period_start=NOV[0],
               period_end=NOV[1], amount_minor=-1, currency="usd", reason_code="goodwill",
               note="", created_by="x", created_at=NOV[0], updated_at=NOV[0])  # fmt: skip
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(adjustments.insert().values(**row))


def test_edit_and_void_are_audited_with_before_and_after(engine) -> None:
    adj = create(engine, credit())
    edited = state.edit_adjustment(
        engine, adj.adjustment_id, actor="pat", note="outage, ticket 42", reason_code="goodwill"
    )
    assert (edited.note, edited.reason_code) == ("outage, ticket 42", "goodwill")
    with pytest.raises(AdjustmentError, match="nothing to change"):
        state.edit_adjustment(engine, adj.adjustment_id, actor="pat", note="outage, ticket 42")
    with pytest.raises(AdjustmentError, match="say why"):
        state.void_adjustment(engine, adj.adjustment_id, actor="pat", reason=" ")
    voided = state.void_adjustment(engine, adj.adjustment_id, actor="pat", reason="duplicate")
    assert voided.voided_at is not None and voided.voided_by == "pat"
    with pytest.raises(AdjustmentError, match="already void"):
        state.void_adjustment(engine, adj.adjustment_id, actor="pat", reason="again")
    with pytest.raises(AdjustmentError, match="void and cannot be edited"):
        state.edit_adjustment(engine, adj.adjustment_id, actor="pat", note="x")
    entries = state.list_audit(engine, entity_id=adj.adjustment_id)
    assert [e.action for e in entries] == ["adjustment.void", "adjustment.edit",
                                           "adjustment.create"]  # fmt: skip
    edit = entries[1]
    assert edit.actor == "pat"
    assert edit.before == {"note": "outage", "reason_code": "service_outage"}
    assert edit.after == {"note": "outage, ticket 42", "reason_code": "goodwill"}
    assert entries[0].before == {"voided_at": None}
    assert entries[0].after["void_reason"] == "duplicate"
    assert [a.adjustment_id for a in state.list_adjustments(engine, include_voided=False)] == []


def test_the_audit_log_cannot_be_altered(engine) -> None:
    create(engine, credit())
    before = state.list_audit(engine)
    for statement in ("update audit_log set actor = 'mallory'", "delete from audit_log"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
            conn.exec_driver_sql(statement)
    if engine.dialect.name == "postgresql":
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
            conn.exec_driver_sql("truncate audit_log")
    assert state.list_audit(engine) == before


def test_no_code_path_updates_or_deletes_the_audit_log() -> None:
    source = "\n".join(
        p.read_text() for p in Path(state.__file__).parent.rglob("*.py") if "migrations" not in str(p)
    )  # fmt: skip
    assert not re.search(r"audit_log\s*\.\s*(update|delete)\b", source)
    assert not re.search(r"(update|delete from)\s+audit_log", source, re.IGNORECASE)


def test_users_and_roles(engine) -> None:
    with pytest.raises(state.RoleError, match="unknown role"):
        state.set_roles(engine, "a@example.com", "finance,superuser", actor="admin")
    state.set_roles(engine, "A@Example.com", "finance, ops", actor="admin", display_name="A")
    assert state.get_user(engine, "a@example.com").roles == {"finance", "ops"}
    state.disable_user(engine, "a@example.com", actor="admin")
    assert state.get_user(engine, "a@example.com") is None
    assert [e.action for e in state.list_audit(engine, entity_id="a@example.com")] == [
        "user.disable", "user.set_roles"]  # fmt: skip


def test_export_adjustments_matches_the_warehouse_contract(engine) -> None:
    from meterworks.warehouse import RAW_DDL

    c = create(engine, credit())
    u = create(engine, usage())
    state.void_adjustment(engine, c.adjustment_id, actor="olive", reason="typo")
    con = duckdb.connect()
    con.execute(RAW_DDL)  # the warehouse's own raw.adjustments
    expected = con.execute("describe raw.adjustments").fetchall()
    assert state.export_adjustments(engine, con) == 2
    assert con.execute("describe raw.adjustments").fetchall() == expected
    rows = con.execute(
        "select adjustment_id, kind, amount_minor, currency, quantity, voided_at is not null "
        "from raw.adjustments order by kind"
    ).fetchall()
    assert rows == [
        (c.adjustment_id, "credit", 2500, "usd", None, True),
        (u.adjustment_id, "usage", None, None, Decimal("-1200.500000000"), False),
    ]
    state.export_adjustments(engine, con)  # rewritten whole, not appended
    assert con.execute("select count(*) from raw.adjustments").fetchone()[0] == 2


# -- Stripe ----------------------------------------------------------------------------------


class _FakeStripe(BaseHTTPRequestHandler):
    """POST /v1/customers/{id}/balance_transactions, with Stripe's idempotency semantics."""

    requests: ClassVar[list[dict]] = []
    by_key: ClassVar[dict[str, dict]] = {}
    fail_next: ClassVar[int] = 0

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        form = dict(parse_qsl(self.rfile.read(length).decode()))
        key = self.headers.get("Idempotency-Key")
        type(self).requests.append({"path": self.path, "form": form, "key": key,
                                    "auth": self.headers.get("Authorization")})  # fmt: skip
        if type(self).fail_next:
            type(self).fail_next -= 1
            self._send(402, {"error": {"type": "invalid_request_error",
                                       "message": "No such customer: 'cus_missing'"}})  # fmt: skip
            return
        m = re.fullmatch(r"/v1/customers/([^/]+)/balance_transactions", self.path)
        if not m:
            self._send(404, {"error": {"type": "invalid_request_error", "message": "no route"}})
            return
        if key not in type(self).by_key:
            type(self).by_key[key] = {
                "id": f"cbtxn_{len(type(self).by_key) + 1}", "object": "customer_balance_transaction",
                "amount": int(form["amount"]), "currency": form["currency"], "customer": m.group(1),
                "metadata": {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")},
            }  # fmt: skip
        self._send(200, type(self).by_key[key])

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def fake_stripe(monkeypatch):
    _FakeStripe.requests, _FakeStripe.by_key, _FakeStripe.fail_next = [], {}, 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeStripe)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_app")
    monkeypatch.setenv("STRIPE_API_BASE", f"http://127.0.0.1:{server.server_address[1]}")
    yield _FakeStripe
    server.shutdown()
    server.server_close()


def test_a_credit_is_created_in_stripe_once(engine, fake_stripe) -> None:
    from meterworks.state.stripe_credit import push_credit

    adj = create(engine, credit())
    done = push_credit(engine, adj.adjustment_id, stripe_customer_id="cus_acme", actor="olive")
    assert done.stripe_status == "created" and done.stripe_object_id == "cbtxn_1"
    [req] = fake_stripe.requests
    assert req["path"] == "/v1/customers/cus_acme/balance_transactions"
    assert req["key"] == f"meterworks-adjustment-{adj.adjustment_id}"
    assert req["form"]["amount"] == "-2500" and req["form"]["currency"] == "usd"
    assert req["form"]["metadata[meterworks_adjustment_id]"] == adj.adjustment_id
    # a second push does not call Stripe again
    again = push_credit(engine, adj.adjustment_id, stripe_customer_id="cus_acme", actor="olive")
    assert again.stripe_object_id == "cbtxn_1" and len(fake_stripe.requests) == 1
    actions = [e.action for e in state.list_audit(engine, entity_id=adj.adjustment_id)]
    assert actions == ["adjustment.stripe_created", "adjustment.create"]


def test_a_failed_stripe_credit_is_recorded_and_retried_under_the_same_key(
    engine, fake_stripe
) -> None:
    from meterworks.state.stripe_credit import push_credit

    adj = create(engine, credit())
    fake_stripe.fail_next = 1
    with pytest.raises(AdjustmentError, match="Stripe refused the credit") as err:
        push_credit(engine, adj.adjustment_id, stripe_customer_id="cus_missing", actor="olive")
    assert "sk_test_app" not in str(err.value)
    failed = state.get_adjustment(engine, adj.adjustment_id)
    assert failed.stripe_status == "failed" and "No such customer" in failed.stripe_error
    done = push_credit(engine, adj.adjustment_id, stripe_customer_id="cus_acme", actor="olive")
    assert done.stripe_status == "created"
    keys = {r["key"] for r in fake_stripe.requests}
    assert keys == {f"meterworks-adjustment-{adj.adjustment_id}"}


def test_usage_adjustments_never_go_to_stripe(engine, fake_stripe) -> None:
    from meterworks.state.stripe_credit import push_credit

    adj = create(engine, usage())
    with pytest.raises(AdjustmentError, match="only credits"):
        push_credit(engine, adj.adjustment_id, stripe_customer_id="cus_acme", actor="olive")
    assert fake_stripe.requests == []


def test_two_processes_can_migrate_a_new_database_at_once(tmp_path: Path) -> None:
    """The app and a build may both start on a fresh install."""
    import subprocess
    import sys

    url = os.environ.get("METERWORKS_TEST_POSTGRES_URL")
    urls = [f"sqlite:///{tmp_path / 'race.db'}"]
    if url:
        engine, admin, schema = _postgres_engine()
        engine.dispose()
        urls.append(url)
    code = (
        "import sys; from meterworks import state; "
        "e = state.make_engine(sys.argv[1], **({'connect_args': {'options': sys.argv[2]}} "
        "if len(sys.argv) > 2 else {})); print(state.upgrade(e))"
    )
    for target in urls:
        extra = [f"-csearch_path={schema}"] if target.startswith("postgresql") else []
        procs = [subprocess.Popen([sys.executable, "-c", code, target, *extra],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(3)]  # fmt: skip
        results = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in results]
        assert [out.strip() for out, _ in results] == ["0001"] * 3
    if url:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"drop schema {schema} cascade")
        admin.dispose()
