"""The demo's Stripe account: determinism, shapes and references, amounts rated by the pricing
engine, the planted defects, and the reconciliation oracle against an independent reading.

The independent reading re-derives every invoiced quantity from the *event files* (through
``_reference_ingest`` of ``test_demo.py``, which shares no code with the generator), nets credit
notes, rates the catalog pricing, and must flag exactly the rows of
``stripe/expected_reconciliation.csv``; the periods are checked against their definition (local
midnight of the 1st, or the anniversary instant, in the customer's time zone) and for gaps.
"""

from __future__ import annotations

import calendar
import csv
import itertools
import json
from bisect import bisect_left
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from meterworks.catalog import load_catalog
from meterworks.demo import DemoSummary, generate_demo
from meterworks.demo.stripe_account import (
    API_VERSION,
    DEFECT_KINDS,
    FILES,
    RECONCILIATION_COLUMNS,
    RECONCILIATION_FILE,
)
from meterworks.pricing import price_from_catalog, price_from_stripe, rate
from tests.test_demo import _aggregate, _reference_ingest

SMALL = {"seed": 7, "customers": 30, "days": 70, "end": date(2025, 3, 15)}
FLAGGED = {"missing_invoice", "unbilled_usage", "amount_mismatch", "quantity_mismatch",
           "invoice_without_usage"}  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoSummary:
    return generate_demo(tmp_path_factory.mktemp("stripe-demo"), **SMALL)


def _load(out_dir: Path) -> dict[str, list[dict]]:
    return {
        name: [json.loads(line) for line in (out_dir / "stripe" / name).read_text().splitlines()]
        for name in FILES
    }


@pytest.fixture(scope="module")
def objects(demo: DemoSummary) -> dict[str, list[dict]]:
    return _load(demo.out_dir)


@pytest.fixture(scope="module")
def manifest(demo: DemoSummary) -> dict:
    return json.loads(demo.manifest_path.read_text())


@pytest.fixture(scope="module")
def oracle(demo: DemoSummary) -> list[dict]:
    with (demo.out_dir / "stripe" / RECONCILIATION_FILE).open() as f:
        return list(csv.DictReader(f))


def _by_id(rows: list[dict]) -> dict[str, dict]:
    index = {row["id"]: row for row in rows}
    assert len(index) == len(rows), "duplicate ids"
    return index


def _ts(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def _metered_lines(invoice: dict, prices: dict[str, dict]):
    for line in invoice["lines"]["data"]:
        price = prices[line["pricing"]["price_details"]["price"]]
        if price["recurring"]["usage_type"] == "metered":
            yield line, price


# -- tests --------------------------------------------------------------------------------------


def test_same_seed_gives_identical_stripe_files(demo, tmp_path):
    again = generate_demo(tmp_path / "again", **SMALL)
    names = sorted(p.name for p in (demo.out_dir / "stripe").iterdir())
    assert names == sorted([*FILES, RECONCILIATION_FILE])
    for name in names:
        mine, theirs = (d / "stripe" / name for d in (demo.out_dir, again.out_dir))
        assert mine.read_bytes() == theirs.read_bytes(), name
    other = generate_demo(tmp_path / "other", **{**SMALL, "seed": 8})
    assert (other.out_dir / "stripe" / "invoices.jsonl").read_bytes() != (
        demo.out_dir / "stripe" / "invoices.jsonl"
    ).read_bytes()


def test_manifest_counts_and_customers(demo, objects, manifest):
    section = manifest["stripe"]
    assert section["api_version"] == API_VERSION
    assert section["files"] == {name: len(rows) for name, rows in objects.items()}
    catalog = load_catalog(demo.catalog_path)
    demo_ids = [c.id for c in catalog.customers]
    customers = objects["customers.jsonl"]
    ids = [c["id"] for c in customers]
    assert set(ids) | set(section["catalog_only_customers"]) == set(demo_ids)
    assert not set(ids) & set(section["catalog_only_customers"])
    assert 0.75 * len(demo_ids) <= len(ids) < len(demo_ids)
    names = {c.id: c.name for c in catalog.customers}
    for c in customers:
        assert c["object"] == "customer" and c["currency"] == "usd"
        assert c["metadata"]["meterworks_customer_id"] == c["id"] and c["name"] == names[c["id"]]
    statuses = Counter(s["status"] for s in objects["subscriptions.jsonl"])
    assert statuses["active"] > statuses["canceled"] > 0
    assert statuses["trialing"] == 2 and statuses["past_due"] == 2
    assert section["subscriptions_by_billing_cycle"]["anniversary"] >= 1
    assert {i["status"] for i in objects["invoices.jsonl"]} == {"paid", "open", "void"}
    rec = section["reconciliation"]
    assert rec["rows_in_scope"] == sum(rec["by_status"].values())
    assert rec["rows_in_scope"] - rec["by_status"]["matched"] == len(
        list(csv.DictReader((demo.out_dir / section["expected_reconciliation"]).open()))
    )


def test_prices_parse_and_mirror_the_catalog(demo, objects):
    catalog = load_catalog(demo.catalog_path)
    aggregation = {m.code: m.aggregation for m in catalog.meters}
    charges = {(p.code, c.meter): c.pricing for p in catalog.plans for c in p.charges if c.pricing}
    meters = _by_id(objects["billing_meters.jsonl"])
    assert {m["event_name"] for m in meters.values()} == {
        code for code, agg in aggregation.items() if agg in ("sum", "count", "latest")
    }
    formula = {"sum": "sum", "count": "count", "latest": "last"}
    for m in meters.values():
        assert m["default_aggregation"]["formula"] == formula[aggregation[m["event_name"]]]
    quantities = [Decimal(q) for q in ("0", "1", "999", "1000", "1001", "12345.67", "2500000")]
    quantities += [Decimal(10) ** k + d for k in range(2, 9) for d in (-1, 0, 1)]
    metered = [p for p in objects["prices.jsonl"] if p["recurring"]["usage_type"] == "metered"]
    assert {(p["metadata"]["meterworks_plan"], p["metadata"]["meterworks_meter"]) for p in metered} == set(charges)  # fmt: skip
    custom = []
    for p in objects["prices.jsonl"]:
        engine_price = price_from_stripe(p)
        assert p["currency"] == "usd" and p["type"] == "recurring"
        if p["recurring"]["usage_type"] == "licensed":
            assert p["billing_scheme"] == "per_unit" and p["recurring"]["interval"] in ("month", "year")  # fmt: skip
            continue
        plan, meter = p["metadata"]["meterworks_plan"], p["metadata"]["meterworks_meter"]
        expected_meter = f"mtr_demo_{meter}" if aggregation[meter] in formula else None
        assert p["recurring"]["meter"] == expected_meter
        catalog_price = price_from_catalog(charges[(plan, meter)])
        same = all(
            rate(engine_price, q).amount == rate(catalog_price, q).amount for q in quantities
        )
        if p["lookup_key"] is None:
            custom.append(p)
            assert not same and "meterworks_custom_for" in p["metadata"]
        else:
            assert p["lookup_key"] == f"{plan}_{meter}" and same, p["id"]
    assert len(custom) == 1
    schemes = {
        (p["billing_scheme"], p["tiers_mode"], bool(p["transform_quantity"])) for p in metered
    }
    assert {("per_unit", None, False), ("per_unit", None, True), ("tiered", "graduated", False),
            ("tiered", "volume", False)} <= schemes  # fmt: skip
    assert all(isinstance(t["unit_amount_decimal"], str) for p in metered for t in p.get("tiers", []))  # fmt: skip


def test_every_reference_resolves(objects):
    customers = _by_id(objects["customers.jsonl"])
    products = _by_id(objects["products.jsonl"])
    prices = _by_id(objects["prices.jsonl"])
    meters = _by_id(objects["billing_meters.jsonl"])
    subs = _by_id(objects["subscriptions.jsonl"])
    invoices = _by_id(objects["invoices.jsonl"])
    for p in prices.values():
        assert p["product"] in products
        assert p["recurring"]["meter"] is None or p["recurring"]["meter"] in meters
    for p in products.values():
        assert p["default_price"] is None or p["default_price"] in prices
    assert sorted(s["customer"] for s in subs.values()) == sorted(customers)
    item_of: dict[str, tuple[str, str]] = {}
    for s in subs.values():
        assert s["items"]["has_more"] is False
        for item in s["items"]["data"]:
            assert item["subscription"] == s["id"] and item["price"]["id"] in prices
            assert "tiers" not in item["price"]  # embedded prices come without tiers
            assert item["current_period_start"] < item["current_period_end"]
            item_of[item["id"]] = (s["id"], item["price"]["id"])
        assert s["latest_invoice"] is None or invoices[s["latest_invoice"]]["customer"] == s["customer"]  # fmt: skip
    lines = {}
    for inv in invoices.values():
        assert inv["customer"] in customers
        sub = subs[inv["parent"]["subscription_details"]["subscription"]]
        assert sub["customer"] == inv["customer"]
        assert inv["lines"]["has_more"] is False and inv["lines"]["data"]
        for line in inv["lines"]["data"]:
            details = line["parent"]["subscription_item_details"]
            assert details["subscription"] == sub["id"] and line["invoice"] == inv["id"]
            assert item_of[details["subscription_item"]] == (
                sub["id"],
                line["pricing"]["price_details"]["price"],
            )
            price = prices[line["pricing"]["price_details"]["price"]]
            assert line["pricing"]["price_details"]["product"] == price["product"]
            lines[line["id"]] = line
        if inv["from_invoice"]:
            assert invoices[inv["from_invoice"]["invoice"]]["latest_revision"] == inv["id"]
    for cn in objects["credit_notes.jsonl"]:
        assert cn["invoice"] in invoices and cn["customer"] in customers
        for cl in cn["lines"]["data"]:
            assert lines[cl["invoice_line_item"]]["invoice"] == cn["invoice"]


def test_amounts_are_rated_by_the_pricing_engine(objects):
    prices = _by_id(objects["prices.jsonl"])
    subs = _by_id(objects["subscriptions.jsonl"])
    lines = {}
    for inv in objects["invoices.jsonl"]:
        for line in inv["lines"]["data"]:
            lines[line["id"]] = line
            price = prices[line["pricing"]["price_details"]["price"]]
            quantity = Decimal(line["quantity_decimal"])
            if line["quantity"] is not None:
                assert Decimal(line["quantity"]) == quantity
            proration = line["parent"]["subscription_item_details"]["proration"]
            if proration:  # the first, partial period of calendar billing: by the second
                tz = ZoneInfo(subs[inv["parent"]["subscription_details"]["subscription"]]["metadata"]["meterworks_timezone"])  # fmt: skip
                end = datetime.fromtimestamp(line["period"]["end"], tz)
                months = 12 if price["recurring"]["interval"] == "year" else 1
                years, month = divmod(end.month - 1 - months, 12)
                full_start = end.replace(year=end.year + years, month=month + 1)
                share = Decimal(line["period"]["end"] - line["period"]["start"]) / Decimal(
                    line["period"]["end"] - int(full_start.timestamp())
                )
                assert 0 < share < 1
                exact = (price["unit_amount"] * share).quantize(Decimal(1), ROUND_HALF_UP)
                assert line["amount"] == exact, line["id"]
            elif line["description"].startswith("Trial period"):
                assert line["amount"] == 0
            else:
                assert line["amount"] == rate(price_from_stripe(price), quantity).amount, line["id"]
            assert line["subtotal"] == line["amount"] and line["currency"] == inv["currency"]
        total = sum(line["amount"] for line in inv["lines"]["data"])
        assert inv["subtotal"] == inv["total"] == inv["amount_due"] == total
        assert inv["status_transitions"]["finalized_at"] >= inv["created"]
        if inv["status"] == "paid":
            assert inv["amount_paid"] == total and inv["amount_remaining"] == 0
            assert inv["status_transitions"]["paid_at"] >= inv["status_transitions"]["finalized_at"]  # fmt: skip
        elif inv["status"] == "open":
            assert inv["amount_paid"] == 0 and inv["amount_remaining"] == total
        else:
            assert inv["status"] == "void" and inv["status_transitions"]["voided_at"]
    for cn in objects["credit_notes.jsonl"]:
        assert cn["amount"] == cn["total"] == sum(cl["amount"] for cl in cn["lines"]["data"])
        for cl in cn["lines"]["data"]:
            line = lines[cl["invoice_line_item"]]
            price = price_from_stripe(prices[line["pricing"]["price_details"]["price"]])
            kept = Decimal(line["quantity_decimal"]) - Decimal(cl["quantity"])
            assert cl["amount"] == line["amount"] - rate(price, kept).amount > 0


def test_each_defect_is_planted_once(objects, manifest, oracle):
    defects = manifest["stripe"]["defects"]
    assert [d["kind"] for d in defects] == list(DEFECT_KINDS)
    assert manifest["stripe"]["defects_skipped"] == []
    assert len({d["customer_id"] for d in defects}) == len(defects)  # one customer each
    assert list(oracle[0]) == list(RECONCILIATION_COLUMNS)
    assert {r["status"] for r in oracle} == FLAGGED
    keys = defaultdict(set)
    for r in oracle:
        keys[r["status"]].add((r["customer_id"], r["period_start_utc"], r["meter_code"]))
    for status in FLAGGED - {"missing_invoice", "amount_mismatch"}:
        assert len(keys[status]) == 1, status
    periods = {(c, p) for c, p, _ in keys["missing_invoice"]}
    assert len(periods) == 1
    by_kind = {d["kind"]: d for d in defects}
    assert len(keys["missing_invoice"]) == len(by_kind["missing_invoice"]["meter_codes"])
    assert {c for c, _, _ in keys["amount_mismatch"]} == {by_kind["amount_mismatch"]["customer_id"]}
    assert len(keys["amount_mismatch"]) == by_kind["amount_mismatch"]["expected_rows"]
    for r in oracle:
        if r["status"] == "amount_mismatch":
            assert r["measured_quantity"] == r["invoiced_quantity"]
            assert r["expected_amount"] != r["invoiced_amount"]
    void = [i for i in objects["invoices.jsonl"] if i["status"] == "void"]
    assert [i["id"] for i in void] == [by_kind["voided_and_reissued"]["voided_invoice_id"]]
    assert void[0]["latest_revision"] == by_kind["voided_and_reissued"]["invoice_id"]
    assert [c["id"] for c in objects["credit_notes.jsonl"]] == [by_kind["credit_note"]["credit_note_id"]]  # fmt: skip
    flagged_customers = {r["customer_id"] for r in oracle}
    for kind in ("voided_and_reissued", "credit_note"):
        assert by_kind[kind]["customer_id"] not in flagged_customers


def test_invoices_match_an_independent_reading_of_the_events(demo, objects, manifest, oracle):
    """Re-derive every metered line's quantity from the event files, reconcile, compare."""
    catalog = load_catalog(demo.catalog_path)
    expected = manifest["expected"]
    now = datetime.fromisoformat(expected["ingest_not_before_utc"]) + timedelta(hours=1)
    effective = _reference_ingest(demo.events_dir, catalog, now)["effective"]
    events: dict[str, list[tuple]] = defaultdict(list)
    for content in effective.values():
        if content is not None:
            customer, name, ts, props = content
            events[customer].append((int(ts.timestamp()), name, json.loads(props)))
    for rows in events.values():
        rows.sort(key=lambda e: e[0])
    meters = {m.code: m for m in catalog.meters}
    plan_of = {c.id: c.plan for c in catalog.customers}
    charges = {(p.code, c.meter): c.pricing for p in catalog.plans for c in p.charges if c.pricing}

    def measured(customer: str, meter: str, start: int, end: int) -> Decimal:
        rows = events[customer]
        lo = bisect_left(rows, start, key=lambda e: e[0])
        hi = bisect_left(rows, end, key=lambda e: e[0])
        m = meters[meter]
        items = [
            (ts, props.get(m.property))
            for ts, name, props in rows[lo:hi]
            if name == m.event and all(str(props.get(k)) in v for k, v in m.filters.items())
        ]
        return _aggregate(m.aggregation, items)[0] if items else Decimal(0)

    prices = _by_id(objects["prices.jsonl"])
    subs = _by_id(objects["subscriptions.jsonl"])
    usage_from = _ts(manifest["parameters"]["usage_from_utc"])
    usage_until = _ts(manifest["parameters"]["usage_until_utc"])
    credited: dict[str, tuple[Decimal, int]] = {}
    for cn in objects["credit_notes.jsonl"]:
        for cl in cn["lines"]["data"]:
            credited[cl["invoice_line_item"]] = (Decimal(cl["quantity"]), cl["amount"])

    found: set[tuple] = set()
    periods: dict[str, set[tuple[int, int]]] = defaultdict(set)
    matched = 0
    for inv in objects["invoices.jsonl"]:
        if inv["status"] == "void":
            continue
        for line, price in _metered_lines(inv, prices):
            customer, meter = inv["customer"], price["metadata"]["meterworks_meter"]
            start, end = line["period"]["start"], line["period"]["end"]
            periods[inv["parent"]["subscription_details"]["subscription"]].add((start, end))
            quantity, amount = Decimal(line["quantity_decimal"]), line["amount"]
            if line["id"] in credited:
                quantity -= credited[line["id"]][0]
                amount -= credited[line["id"]][1]
            usage = measured(customer, meter, start, end)
            catalog_price = price_from_catalog(charges[(plan_of[customer], meter)])
            if usage == 0 and quantity > 0:
                status = "invoice_without_usage"
            elif quantity != usage:
                status = "unbilled_usage" if quantity < usage else "quantity_mismatch"
            elif amount != rate(catalog_price, usage).amount:
                status = "amount_mismatch"
            else:
                matched += 1
                continue
            found.add((customer, start, end, meter, status, usage, quantity))

    # the periods: contiguous from the first one in the window to the current one, each
    # boundary at the anchor's local day and time; a gap is a missing invoice
    missing = {(r["subscription_id"], _ts(r["period_start_utc"]), _ts(r["period_end_utc"]))
               for r in oracle if r["status"] == "missing_invoice"}  # fmt: skip
    for sub in subs.values():
        metered = [i for i in sub["items"]["data"] if i["price"]["recurring"]["usage_type"] == "metered"]  # fmt: skip
        if sub["status"] == "trialing" or not metered:
            assert sub["id"] not in periods
            continue
        chain = sorted(periods[sub["id"]] | {(s, e) for i, s, e in missing if i == sub["id"]})
        current = min(i["current_period_start"] for i in metered)
        if not chain:  # signed up in the last period of the window: nothing billed yet
            assert current == sub["start_date"] and sub["status"] != "canceled", sub["id"]
            continue
        assert all(a[1] == b[0] for a, b in itertools.pairwise(chain)), sub["id"]
        first_start, first_end = chain[0]
        assert first_start == sub["start_date"] or first_start < usage_from < first_end
        assert usage_from < first_end
        if sub["status"] == "canceled":
            assert chain[-1][1] == sub["canceled_at"] == sub["ended_at"]
            assert current < sub["canceled_at"]
        else:
            assert chain[-1][1] == current <= usage_until
        tz = ZoneInfo(sub["metadata"]["meterworks_timezone"])
        anchor = datetime.fromtimestamp(sub["billing_cycle_anchor"], tz)
        cycle = sub["metadata"]["meterworks_billing_cycle"]
        if cycle == "calendar":
            assert (anchor.day, anchor.hour, anchor.minute, anchor.second) == (1, 0, 0, 0)
        for start, end in chain:
            for instant in (start, end):
                if instant in (sub["start_date"], sub["canceled_at"]):
                    continue
                local = datetime.fromtimestamp(instant, tz)
                assert local.time() == anchor.time(), (sub["id"], local)
                last_day = calendar.monthrange(local.year, local.month)[1]
                assert local.day == min(anchor.day, last_day), (sub["id"], local)
        for s, e in chain:
            if (sub["id"], s, e) in missing:
                customer = sub["customer"]
                for item in sub["items"]["data"]:
                    price = prices[item["price"]["id"]]
                    if price["recurring"]["usage_type"] != "metered":
                        continue
                    meter = price["metadata"]["meterworks_meter"]
                    usage = measured(customer, meter, s, e)
                    if usage > 0:
                        found.add((customer, s, e, meter, "missing_invoice", usage, None))

    want = {
        (
            r["customer_id"],
            _ts(r["period_start_utc"]),
            _ts(r["period_end_utc"]),
            r["meter_code"],
            r["status"],
            Decimal(r["measured_quantity"]),
            Decimal(r["invoiced_quantity"]) if r["invoiced_quantity"] else None,
        )
        for r in oracle
    }
    assert found == want
    assert matched == manifest["stripe"]["reconciliation"]["by_status"]["matched"]
    assert matched > 5 * len(want)


def test_periods_are_the_customers_local_calendar(objects):
    """Calendar subscriptions in several time zones; DST moves the UTC instant, not the local."""
    subs = [s for s in objects["subscriptions.jsonl"]
            if s["metadata"]["meterworks_billing_cycle"] == "calendar"]  # fmt: skip
    assert len({s["metadata"]["meterworks_timezone"] for s in subs}) >= 4
    starts = {
        datetime.fromtimestamp(i["current_period_start"], UTC).hour
        for s in subs
        for i in s["items"]["data"]
    }
    assert len(starts) >= 3  # local midnights are different UTC hours
