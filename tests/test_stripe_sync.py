"""Stripe sync through the real ``stripe`` SDK against the Stripe-compatible test server.

Every count is exact: the account built by ``_account`` holds 8 customers (one per subscription
status), 2 products, 12 prices (flat, tiered, metered + 9 for a 12-item subscription), 8
subscriptions with 26 items, 9 invoices with 49 lines (one of 25 lines: embedded page + more),
2 credit notes with 14 lines (one of 12), 1 billing meter and usage giving 6 daily summaries.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from meterworks.stripe_sync import (
    OBJECT_TYPES,
    StripeApiSource,
    StripeExportSource,
    StripeSyncError,
    sync_stripe,
)
from meterworks.stripe_sync.store import dump_json
from tests.stripe_server import StripeTestServer

pytestmark = pytest.mark.timeout(60)

STATUSES = [
    "incomplete",
    "incomplete_expired",
    "trialing",
    "active",
    "past_due",
    "canceled",
    "unpaid",
    "paused",
]
FULL_COUNTS = {
    "customer": 8,
    "product": 2,
    "price": 12,
    "subscription": 8,
    "subscription_item": 26,
    "invoice": 9,
    "line_item": 49,
    "credit_note": 2,
    "credit_note_line_item": 14,
    "billing.meter": 1,
    "billing.meter_event_summary": 6,
}


def _account(server: StripeTestServer) -> dict[str, Any]:
    meter = server.create_meter("api_request", formula="sum")
    prod_a = server.create_product(name="Platform")
    prod_b = server.create_product(name="Add-ons")
    flat = server.create_price(prod_a["id"], unit_amount=4900)
    tiered = server.create_price(
        prod_a["id"],
        tiers=[
            {"up_to": 1000, "unit_amount_decimal": "0.5", "flat_amount": 0},
            {"up_to": None, "unit_amount_decimal": "0.25"},
        ],
    )
    metered = server.create_price(
        prod_a["id"], unit_amount=None, meter=meter["id"], unit_amount_decimal="0.0125"
    )
    extras = [server.create_price(prod_b["id"], unit_amount=100 * i) for i in range(1, 10)]
    customers, subs = [], []
    for i, status in enumerate(STATUSES):
        cus = server.create_customer()
        prices = [flat if i % 2 else tiered, metered]
        if status == "active":
            prices = [flat, tiered, metered, *extras]  # 12 items: embedded 10 + 2 more
        customers.append(cus)
        subs.append(server.create_subscription(cus["id"], prices, status=status))
    invoices = [
        server.create_invoice(c["id"], subscription=s, n_lines=3, status="paid")
        for c, s in zip(customers, subs, strict=True)
    ]
    invoices[1] = server.update("invoice", invoices[1]["id"], {"status": "open"})
    big = server.create_invoice(customers[3]["id"], subscription=subs[3], n_lines=25)
    invoices.append(big)
    credit_notes = [
        server.create_credit_note(invoices[0], n_lines=2),
        server.create_credit_note(invoices[2], n_lines=12),
    ]
    now = server.tick()
    midnight = now - now % 86_400
    for cus in customers[2:5]:  # 3 customers x 2 days
        for days_ago in (1, 2):
            server.add_usage(meter["id"], cus["id"], midnight - days_ago * 86_400 + 600, 40)
            server.add_usage(meter["id"], cus["id"], midnight - days_ago * 86_400 + 900, 2)
    return {
        "meter": meter,
        "prices": {"flat": flat, "tiered": tiered, "metered": metered},
        "customers": customers,
        "subscriptions": subs,
        "invoices": invoices,
        "big_invoice": big,
        "credit_notes": credit_notes,
        "now": datetime.fromtimestamp(now, UTC),
    }


@pytest.fixture
def server():
    with StripeTestServer() as srv:
        yield srv


@pytest.fixture
def con():
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    yield con
    con.close()


def _source(server: StripeTestServer, **kw: Any) -> StripeApiSource:
    kw.setdefault("max_network_retries", 2)
    kw.setdefault("backoff_base", 0.001)
    kw.setdefault("backoff_cap", 0.01)
    return StripeApiSource(server.api_key, api_base=server.url, **kw)


def _expected(**changes: int) -> dict[str, int]:
    counts = {t: 0 for t in OBJECT_TYPES}
    counts.update(changes)
    return counts


def _rows(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    counts = {t: 0 for t in OBJECT_TYPES}
    counts.update(
        con.execute("select object_type, count(*) from raw.stripe_objects group by 1").fetchall()
    )
    return counts


def _data(con: duckdb.DuckDBPyConnection, object_type: str, oid: str) -> dict[str, Any]:
    row = con.execute(
        "select data from raw.stripe_objects where object_type = ? and id = ?", [object_type, oid]
    ).fetchone()
    assert row is not None, (object_type, oid)
    return json.loads(row[0])


def _snapshot(con: duckdb.DuckDBPyConnection) -> tuple:
    return (
        con.execute(
            "select object_type, id, version_seen, md5(data::varchar) from raw.stripe_objects "
            "order by all"
        ).fetchall(),
        con.execute("select * from raw.stripe_sync_state order by all").fetchall(),
        con.execute("select count(*) from raw.stripe_sync_runs").fetchone(),
    )


def test_full_sync(server, con):
    acct = _account(server)
    result = sync_stripe(con, _source(server), now=acct["now"])

    assert result.mode == "full"
    assert result.objects == FULL_COUNTS
    assert _rows(con) == FULL_COUNTS
    assert result.retries == 0
    assert result.requests == server.count_requests()
    assert result.objects_per_second > 0
    assert set(result.counts()) == {*OBJECT_TYPES, "requests", "retries", "seconds"}

    # Subscriptions of every status, canceled included, with all 12 items of the big one.
    statuses = con.execute(
        "select data->>'$.status' from raw.stripe_objects where object_type = 'subscription'"
    ).fetchall()
    assert sorted(s for (s,) in statuses) == sorted(STATUSES)
    active = acct["subscriptions"][3]
    assert con.execute(
        "select count(*) from raw.stripe_objects "
        "where object_type = 'subscription_item' and parent_id = ?",
        [active["id"]],
    ).fetchone() == (12,)
    item = _data(con, "subscription_item", active["items"]["data"][0]["id"])
    assert item["current_period_end"] > item["current_period_start"]

    # All 25 lines of the big invoice, as their own rows; the invoice keeps its first page.
    big = acct["big_invoice"]
    lines = con.execute(
        "select id, data from raw.stripe_objects where object_type = 'line_item' "
        "and parent_id = ? order by id",
        [big["id"]],
    ).fetchall()
    assert len(lines) == 25
    line = json.loads(lines[0][1])
    assert line["pricing"]["price_details"]["price"] == acct["prices"]["flat"]["id"]
    assert line["parent"]["subscription_item_details"]["subscription"] == active["id"]
    invoice = _data(con, "invoice", big["id"])
    assert len(invoice["lines"]["data"]) == 10 and invoice["lines"]["has_more"] is True

    # Tiers only come with expand; Decimal strings stay strings.
    tiered = _data(con, "price", acct["prices"]["tiered"]["id"])
    assert [t["unit_amount_decimal"] for t in tiered["tiers"]] == ["0.5", "0.25"]
    assert (
        _data(con, "price", acct["prices"]["metered"]["id"])["recurring"]["meter"]
        == (acct["meter"]["id"])
    )

    # Credit note lines: 12 for the second credit note (embedded 10 + listed 2).
    cn = acct["credit_notes"][1]
    assert con.execute(
        "select count(*) from raw.stripe_objects "
        "where object_type = 'credit_note_line_item' and parent_id = ?",
        [cn["id"]],
    ).fetchone() == (12,)

    # Meter summaries: per customer and day, over whole UTC days.
    summaries = con.execute(
        "select parent_id, (data->>'$.aggregated_value')::int from raw.stripe_objects "
        "where object_type = 'billing.meter_event_summary'"
    ).fetchall()
    assert summaries == [(acct["meter"]["id"], 42)] * 6

    meta = con.execute(
        "select count(*), count(created), count(*) filter (where version_seen = 'list'), "
        "count(*) filter (where api_version = '2026-10-28.endive'), bool_and(not livemode), "
        "min(synced_at) from raw.stripe_objects where object_type = 'invoice'"
    ).fetchone()
    assert meta == (9, 9, 9, 9, True, acct["now"].replace(tzinfo=None))

    # The requests the SDK made.
    log = server.request_log
    subs_q = [r.query for r in log if r.path == "/v1/subscriptions"]
    assert subs_q and all(q.get("status") == "all" for q in subs_q)
    assert all(
        q.get("expand[0]") == "data.tiers" for q in (r.query for r in log if r.path == "/v1/prices")
    )
    big_lines = [r.query for r in log if r.path == f"/v1/invoices/{big['id']}/lines"]
    assert big_lines == [
        {"limit": "100", "starting_after": big["lines"]["data"][9]["id"]},
    ]
    items_q = [r.query for r in log if r.path == "/v1/subscription_items"]
    assert items_q == [
        {
            "limit": "100",
            "subscription": active["id"],
            "starting_after": active["items"]["data"][9]["id"],
        }
    ]
    summary_q = [r.query for r in log if r.path.endswith("/event_summaries")]
    # 6 live subscriptions + 2 that ended inside the 35-day window
    assert len(summary_q) == 8
    assert {int(q["start_time"]) % 86_400 for q in summary_q} == {0}
    assert {q["value_grouping_window"] for q in summary_q} == {"day"}

    state = dict(
        con.execute("select resource, created_cursor from raw.stripe_sync_state").fetchall()
    )
    assert state["invoices"] == max(i["created"] for i in acct["invoices"])
    assert "events" in state
    runs = con.execute("select run_id, mode, counts->>'$.invoice' from raw.stripe_sync_runs")
    assert runs.fetchall() == [(1, "full", "9")]


def test_incremental_new_finalized_and_voided_invoices(server, con):
    acct = _account(server)
    source = _source(server)
    first = sync_stripe(con, source, now=acct["now"])
    assert first.mode == "full"

    customers, subs = acct["customers"], acct["subscriptions"]
    new = server.create_invoice(customers[0]["id"], subscription=subs[0], n_lines=2)
    server.emit("invoice.created", new, created=new["created"])
    big = acct["big_invoice"]  # a draft with 25 lines: its event snapshot has lines.has_more
    server.transition_invoice(big["id"], "open")
    voided = acct["invoices"][1]  # open
    server.transition_invoice(voided["id"], "void")
    mark = len(server.request_log)
    now = acct["now"] + timedelta(minutes=5)

    result = sync_stripe(con, source, now=now)

    assert result.mode == "incremental" and result.fallback_reason is None
    assert result.objects == _expected(
        invoice=3,
        line_item=2 + 25 + 3,
        **{"billing.meter": 1, "billing.meter_event_summary": 6},
    )
    assert _rows(con) == {**FULL_COUNTS, "invoice": 10, "line_item": 51}
    finalized = _data(con, "invoice", big["id"])
    assert finalized["status"] == "open" and finalized["status_transitions"]["finalized_at"]
    assert _data(con, "invoice", voided["id"])["status"] == "void"
    assert _data(con, "invoice", new["id"])["status"] == "draft"
    seen = dict(
        con.execute(
            "select id, version_seen from raw.stripe_objects where object_type = 'invoice' "
            "and id in (?, ?, ?)",
            [new["id"], big["id"], voided["id"]],
        ).fetchall()
    )
    assert seen[new["id"]] == "list"  # the listed version beats its invoice.created snapshot
    assert seen[big["id"]].startswith("event:evt_") and seen[voided["id"]].startswith("event:")

    log = server.request_log[mark:]
    invoice_lists = [r.query for r in log if r.path == "/v1/invoices"]
    cursor = max(i["created"] for i in acct["invoices"])
    assert invoice_lists == [{"limit": "100", "created[gt]": str(cursor)}]
    # The finalized invoice's lines are read again from the start (the snapshot has has_more).
    assert [r.query for r in log if r.path == f"/v1/invoices/{big['id']}/lines"] == [
        {"limit": "100"}
    ]

    # Nothing new: nothing but the meter data is written again.
    again = sync_stripe(con, source, now=now + timedelta(minutes=5))
    assert again.mode == "incremental"
    assert again.objects == _expected(**{"billing.meter": 1, "billing.meter_event_summary": 6})
    assert _rows(con) == {**FULL_COUNTS, "invoice": 10, "line_item": 51}


def test_events_deletions_removed_lines_and_tiers(server, con):
    acct = _account(server)
    source = _source(server)
    sync_stripe(con, source, now=acct["now"])

    draft = acct["big_invoice"]
    gone_line = draft["lines"]["data"][0]["id"]
    server.remove_line(draft["id"], gone_line)
    lost = acct["customers"][7]
    server.remove("customer", lost["id"])
    server.emit("customer.deleted", lost)
    canceled = server.update(
        "subscription",
        acct["subscriptions"][4]["id"],
        {"status": "canceled", "canceled_at": server.clock, "ended_at": server.clock},
        event_type="customer.subscription.deleted",
    )
    tiered = acct["prices"]["tiered"]
    server.update("price", tiered["id"], {"nickname": "Volume"})
    server.emit("price.updated", server.get("price", tiered["id"]))  # snapshots have no tiers
    server.emit("charge.succeeded", {"id": "ch_1", "object": "charge"})

    result = sync_stripe(con, source, now=acct["now"] + timedelta(hours=1))

    assert result.mode == "incremental"
    assert result.removed_children == 1
    assert _data(con, "line_item", gone_line)["deleted"] is True
    assert _rows(con) == FULL_COUNTS  # deleted objects are kept
    customer = _data(con, "customer", lost["id"])
    assert customer["deleted"] is True and customer["email"] == lost["email"]
    sub = _data(con, "subscription", canceled["id"])
    assert sub["deleted"] is True and sub["status"] == "canceled"
    price = _data(con, "price", tiered["id"])
    assert price["nickname"] == "Volume" and len(price["tiers"]) == 2
    assert any(r.path == f"/v1/prices/{tiered['id']}" for r in server.request_log)
    assert any("1 events ignored" in note for note in result.notes)


def test_429_storm_then_complete(server, con):
    acct = _account(server)
    server.inject(status=429, times=6, path_prefix="/v1/invoices")  # no Stripe-Should-Retry
    result = sync_stripe(con, _source(server), now=acct["now"])

    assert result.mode == "full"
    assert result.objects == FULL_COUNTS
    assert _rows(con) == FULL_COUNTS
    assert server.count_requests(status=429) == 6
    assert result.retries == 6
    assert result.requests == server.count_requests()


def test_429_retry_after_is_respected(server, con):
    acct = _account(server)
    slept: list[float] = []
    server.inject(status=429, times=2, path_prefix="/v1/customers", retry_after=0.02)
    result = sync_stripe(con, _source(server, sleep=slept.append, backoff_cap=1.0), now=acct["now"])
    assert slept == [0.02, 0.02]
    assert result.retries == 2 and result.objects == FULL_COUNTS


def test_permanent_429_fails_and_keeps_previous_state(server, con):
    acct = _account(server)
    source = _source(server, max_attempts=4)
    sync_stripe(con, source, now=acct["now"])
    before = _snapshot(con)

    server.update(
        "customer", acct["customers"][0]["id"], {"name": "Renamed"}, event_type="customer.updated"
    )
    server.create_invoice(acct["customers"][0]["id"], n_lines=1)
    server.inject(status=429, times=None, path_prefix="/v1/invoices")
    with pytest.raises(StripeSyncError) as err:
        sync_stripe(con, source, now=acct["now"] + timedelta(hours=1))

    message = str(err.value)
    assert "429" in message and "/v1/invoices" in message
    assert "\n" not in message
    assert server.api_key not in message and "sk_" not in message
    assert err.value.status == 429
    assert server.count_requests("/v1/invoices", status=429) == 4
    assert _snapshot(con) == before  # the customer.updated already read was not written
    assert con.execute("select count(*) from duckdb_tables() where temporary").fetchone() == (0,)


def test_bad_key_error_never_shows_the_key(server, con):
    _account(server)
    wrong = "sk_test_wrongKEY1234567890abcdef"
    with pytest.raises(StripeSyncError) as err:
        sync_stripe(con, StripeApiSource(wrong, api_base=server.url, max_network_retries=0))
    message = str(err.value)
    assert "401" in message
    assert wrong not in message and wrong[-4:] not in message and "sk_" not in message
    assert wrong not in repr(StripeApiSource(wrong))


def test_500s_are_retried_by_the_sdk(server, con):
    acct = _account(server)
    server.inject(status=500, times=2, path_prefix="/v1/customers")
    result = sync_stripe(con, _source(server, max_network_retries=2), now=acct["now"])
    assert result.objects == FULL_COUNTS
    assert server.count_requests(status=500) == 2
    assert result.retries == 2
    assert result.requests == server.count_requests()

    server.inject(status=500, times=None, path_prefix="/v1/products")
    with pytest.raises(StripeSyncError, match=r"HTTP 500"):
        sync_stripe(con, _source(server, max_network_retries=1), full=True, now=acct["now"])
    assert server.count_requests("/v1/products", status=500) == 2  # first try + 1 SDK retry


def test_invoice_with_250_lines_and_no_meters(server, con):
    cus = server.create_customer()
    price = server.create_price(unit_amount=10)
    sub = server.create_subscription(cus["id"], [price])
    inv = server.create_invoice(cus["id"], subscription=sub, n_lines=250, status="paid")

    result = sync_stripe(con, _source(server), now=datetime.fromtimestamp(server.tick(), UTC))

    assert result.objects == _expected(
        customer=1,
        product=1,
        price=1,
        subscription=1,
        subscription_item=1,
        invoice=1,
        line_item=250,
    )
    ids = con.execute(
        "select count(distinct id) from raw.stripe_objects "
        "where object_type = 'line_item' and parent_id = ?",
        [inv["id"]],
    ).fetchone()
    assert ids == (250,)
    pages = [r.query for r in server.request_log if r.path.endswith("/lines")]
    assert [len(q) for q in pages] == [2, 2, 2] and len(pages) == 3  # 240 = 100 + 100 + 40
    assert "no billing meters: event summaries skipped" in result.notes
    assert not any(r.path.endswith("/event_summaries") for r in server.request_log)


def test_events_cursor_older_than_30_days_falls_back_to_full(server, con):
    acct = _account(server)
    source = _source(server)
    sync_stripe(con, source, now=acct["now"])
    result = sync_stripe(con, source, now=acct["now"] + timedelta(days=31))
    assert result.mode == "full"
    assert "30-day" in (result.fallback_reason or "")
    assert result.objects == FULL_COUNTS  # the usage is 32-33 days old: still in the window
    assert _rows(con) == FULL_COUNTS


def test_unknown_events_cursor_falls_back_to_full(server, con):
    acct = _account(server)
    source = _source(server)
    sync_stripe(con, source, now=acct["now"])
    server.update(
        "customer", acct["customers"][0]["id"], {"name": "A"}, event_type="customer.updated"
    )
    inc = sync_stripe(con, source, now=acct["now"] + timedelta(minutes=1))
    assert inc.mode == "incremental" and inc.objects["customer"] == 1

    server.clear_events()  # the cursor event is gone (another account, or expired)
    renamed = server.update("customer", acct["customers"][1]["id"], {"name": "B"})
    event = server.emit("customer.updated", renamed)
    result = sync_stripe(con, source, now=acct["now"] + timedelta(minutes=2))
    assert result.mode == "full"
    assert "no longer listed" in (result.fallback_reason or "")
    assert result.objects == FULL_COUNTS
    assert _data(con, "customer", acct["customers"][1]["id"])["name"] == "B"
    state = con.execute(
        "select last_event_id from raw.stripe_sync_state where resource = 'events'"
    ).fetchone()
    assert state == (event["id"],)


def _export_objects() -> dict[str, Any]:
    """Objects in API shape, built by the test server's helpers (not served)."""
    srv = StripeTestServer()
    customers = [srv.create_customer() for _ in range(3)]
    price = srv.create_price(unit_amount=500)
    sub = srv.create_subscription(customers[0]["id"], [price])
    small = srv.create_invoice(customers[0]["id"], subscription=sub, n_lines=2, status="paid")
    big = srv.create_invoice(customers[1]["id"], subscription=sub, n_lines=12, status="open")
    all_big_lines = srv._lines[big["id"]]
    return {
        "customers": customers,
        "price": price,
        "subscription": sub,
        "invoices": [small, big],
        "big_extra_lines": all_big_lines[10:],
    }


def test_export_directory(tmp_path: Path, con):
    objs = _export_objects()
    d = tmp_path / "export"
    d.mkdir()
    (d / "customers.json").write_text(json.dumps(objs["customers"][:2]))  # a JSON array
    (d / "customers.jsonl").write_text(json.dumps(objs["customers"][2]) + "\n\n")
    (d / "prices.jsonl").write_text(json.dumps(objs["price"]) + "\n")
    (d / "subscriptions.jsonl").write_text(json.dumps(objs["subscription"]) + "\n")
    (d / "invoices.json").write_text(
        json.dumps({"object": "list", "data": objs["invoices"], "has_more": False})
    )
    (d / "invoice_lines.jsonl").write_text(
        "".join(json.dumps(line) + "\n" for line in objs["big_extra_lines"])
    )
    (d / "notes.txt").write_text("not an export")

    result = sync_stripe(con, StripeExportSource(d), now=datetime(2026, 1, 2, tzinfo=UTC))

    assert result.mode == "export" and result.requests == 0
    assert result.objects == _expected(
        customer=3, price=1, subscription=1, subscription_item=1, invoice=2, line_item=14
    )
    assert "ignored unknown file notes.txt" in result.notes
    big = objs["invoices"][1]
    assert con.execute(
        "select count(*), min(version_seen), max(version_seen) from raw.stripe_objects "
        "where object_type = 'line_item' and parent_id = ?",
        [big["id"]],
    ).fetchone() == (12, "export:invoice_lines.jsonl", "export:invoices.json")

    # A second export: a deleted stub keeps the stored data; a line left a complete invoice.
    d2 = tmp_path / "export2"
    d2.mkdir()
    gone = objs["customers"][0]
    (d2 / "customers.jsonl").write_text(
        json.dumps({"id": gone["id"], "object": "customer", "deleted": True}) + "\n"
    )
    small = json.loads(json.dumps(objs["invoices"][0]))
    dropped = small["lines"]["data"].pop()
    (d2 / "invoices.jsonl").write_text(json.dumps(small) + "\n")
    second = sync_stripe(con, StripeExportSource(d2), now=datetime(2026, 1, 3, tzinfo=UTC))
    assert second.objects == _expected(customer=1, invoice=1, line_item=1)
    assert second.removed_children == 1
    stored = _data(con, "customer", gone["id"])
    assert stored["deleted"] is True and stored["email"] == gone["email"]
    assert _data(con, "line_item", dropped["id"])["deleted"] is True


def test_malformed_export_line_names_file_and_line(tmp_path: Path, con):
    objs = _export_objects()
    (tmp_path / "customers.jsonl").write_text(json.dumps(objs["customers"][0]) + "\n")
    sync_stripe(con, StripeExportSource(tmp_path))
    before = _snapshot(con)
    (tmp_path / "invoices.jsonl").write_text(
        json.dumps(objs["invoices"][0]) + "\n" + '{"id": "in_broken", "object": "inv\n'
    )
    with pytest.raises(StripeSyncError, match=r"invoices\.jsonl line 2: malformed JSON"):
        sync_stripe(con, StripeExportSource(tmp_path))
    assert _snapshot(con) == before

    (tmp_path / "invoices.jsonl").write_text(json.dumps(objs["customers"][1]) + "\n")
    with pytest.raises(StripeSyncError, match=r"invoices\.jsonl line 1: expected object"):
        sync_stripe(con, StripeExportSource(tmp_path))
    with pytest.raises(StripeSyncError, match="not found"):
        sync_stripe(con, StripeExportSource(tmp_path / "missing"))


def test_from_env_and_json_of_sdk_values(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    assert StripeApiSource.from_env() is None
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_fromenv123456")
    monkeypatch.setenv("STRIPE_API_BASE", "http://127.0.0.1:9")
    source = StripeApiSource.from_env()
    assert source is not None and source.name == "stripe@127.0.0.1:9"
    assert "fromenv" not in repr(source)

    import stripe

    obj = stripe.StripeObject.construct_from(
        {"id": "li_1", "quantity_decimal": Decimal("1.500")}, "sk_test_x"
    )
    assert json.loads(dump_json({"q": Decimal("0.0125"), "o": obj})) == {
        "q": "0.0125",
        "o": {"id": "li_1", "quantity_decimal": "1.500"},
    }
