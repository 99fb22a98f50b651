"""MRR marts end to end on an independent, hand-built Stripe account.

Raw Stripe objects (customers, prices, subscriptions, invoices, invoice lines) for seven
customers over January-July 2026 are written as JSON into ``raw.stripe_objects`` of a temp
warehouse; ``dbt build --select +fct_mrr_movements`` runs with ``as_of`` = 5 July 2026 (so July is
the current month, from live subscription items) and a test FX table. The expected customer-month
table and the monthly bridge below were worked out by hand from the policies (see the YAML of
``marts/revenue``), not from the SQL.

    acme (metadata id)  basic x1 Jan-Mar, x2 from April (expansion); usage 7.77 in January;
                        a void February invoice is ignored
    cus_b               two subscriptions from February (basic + pro); pro cancels at the end of
                        April → May contraction, not churn
    cus_c               annual plan 1,200.00 from 10 Feb → 100.00 a month
    cus_d               50 % coupon March-April (repeating, expired 1 May) → expansion in May
    cus_e               trial 20 Jan-20 Feb at 0, paid from 20 Feb (first month with the 15th
                        paid: March), cancelled immediately 25 May → churn in June, a new
                        subscription from 1 July → reactivation
    cus_f               2,000 EUR a month from April; EUR→USD 1.10 Apr, 1.20 May, (June: none,
                        May's carries), 1.25 Jul → FX restatements, never movements
    cus_g               past_due in July still counts
    cus_h               trialing in July: never paying, no rows
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from meterworks.warehouse import connect, ensure_raw_schema

REPO = Path(__file__).resolve().parent.parent
DBT_DIR = REPO / "dbt"
DBT = Path(sys.executable).with_name("dbt")
AS_OF = "2026-07-05 00:00:00"


def ts(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp())


def price(
    pid: str, amount: int, interval: str = "month", currency: str = "usd", usage: str = "licensed"
):
    return {
        "id": pid,
        "object": "price",
        "currency": currency,
        "type": "recurring",
        "billing_scheme": "per_unit",
        "unit_amount": amount,
        "unit_amount_decimal": str(amount),
        "recurring": {
            "interval": interval,
            "interval_count": 1,
            "usage_type": usage,
            "meter": None,
        },
        "active": True,
    }


PRICES = {
    "basic": price("price_basic", 1000),
    "pro": price("price_pro", 5000),
    "annual": price("price_annual", 120000, "year"),
    "eur": price("price_eur", 2000, currency="eur"),
    "tokens": price("price_tokens", 1, usage="metered"),
}


class Account:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str | None, dict]] = []
        self.invoice_seq = 0

    def customer(self, cid: str, meterworks_id: str | None = None) -> None:
        metadata = {"meterworks_customer_id": meterworks_id} if meterworks_id else {}
        self.rows.append(
            ("customer", cid, None, {"id": cid, "object": "customer", "metadata": metadata})
        )

    def subscription(
        self,
        sid: str,
        customer: str,
        status: str,
        items: list[tuple[str, str, int, str, str]],
        currency: str = "usd",
        ended: str | None = None,
        cancel_at_period_end: bool = False,
        trial: tuple[str, str] | None = None,
        discounts: list[dict] | None = None,
    ) -> None:
        self.rows.append(
            (
                "subscription",
                sid,
                None,
                {
                    "id": sid,
                    "object": "subscription",
                    "customer": customer,
                    "status": status,
                    "currency": currency,
                    "start_date": ts("2026-01-01"),
                    "trial_start": ts(trial[0]) if trial else None,
                    "trial_end": ts(trial[1]) if trial else None,
                    "canceled_at": ts(ended) if ended else None,
                    "ended_at": ts(ended) if ended else None,
                    "cancel_at_period_end": cancel_at_period_end,
                    "discounts": discounts or [],
                    "items": {
                        "object": "list",
                        "data": [
                            {
                                "id": si,
                                "object": "subscription_item",
                                "price": PRICES[p],
                                "quantity": q,
                                "current_period_start": ts(start),
                                "current_period_end": ts(end),
                            }
                            for si, p, q, start, end in items
                        ],
                    },
                },
            )
        )

    def invoice(
        self,
        customer: str,
        sub: str,
        lines: list[dict],
        status: str = "paid",
        currency: str = "usd",
    ) -> None:
        self.invoice_seq += 1
        iid = f"in_{self.invoice_seq:03d}"
        self.rows.append(
            (
                "invoice",
                iid,
                None,
                {
                    "id": iid,
                    "object": "invoice",
                    "customer": customer,
                    "status": status,
                    "currency": currency,
                    "status_transitions": {"finalized_at": ts("2026-01-01")},
                    "parent": {"subscription_details": {"subscription": sub}},
                },
            )
        )
        for n, line in enumerate(lines):
            lid = f"il_{self.invoice_seq:03d}_{n}"
            self.rows.append(
                (
                    "line_item",
                    lid,
                    iid,
                    {
                        "id": lid,
                        "object": "line_item",
                        "invoice": iid,
                        "amount": line["amount"],
                        "currency": currency,
                        "quantity": line.get("quantity", 1),
                        "period": {"start": ts(line["start"]), "end": ts(line["end"])},
                        "pricing": {"price_details": {"price": PRICES[line["price"]]["id"]}},
                        "parent": {
                            "subscription_item_details": {
                                "subscription": sub,
                                "subscription_item": line["item"],
                                "proration": line.get("proration", False),
                            }
                        },
                        "discount_amounts": line.get("discounts", []),
                    },
                )
            )

    def monthly(
        self, customer, sub, item, price_key, amounts: dict[str, int], currency="usd", **kw
    ):
        """One invoice per month: {'2026-01': amount} for calendar periods."""
        for month, amount in amounts.items():
            y, m = map(int, month.split("-"))
            start = f"{y}-{m:02d}-01"
            end = f"{y + (m == 12)}-{m % 12 + 1:02d}-01"
            self.invoice(
                customer,
                sub,
                [
                    {
                        "amount": amount,
                        "start": start,
                        "end": end,
                        "price": price_key,
                        "item": item,
                        "quantity": kw.get("quantity", {}).get(month, 1),
                        "discounts": kw.get("discounts", {}).get(month, []),
                    }
                ],
                currency=currency,
            )


def build_account() -> Account:
    a = Account()
    for key in PRICES.values():
        a.rows.append(("price", key["id"], None, key))
    # acme: basic x1 Jan-Mar, x2 from April; usage in January; a void February duplicate
    a.customer("cus_a", "acme")
    a.subscription(
        "sub_a",
        "cus_a",
        "active",
        [
            ("si_a", "basic", 2, "2026-07-01", "2026-08-01"),
            ("si_a_tok", "tokens", 1, "2026-07-01", "2026-08-01"),
        ],
    )
    a.monthly(
        "cus_a",
        "sub_a",
        "si_a",
        "basic",
        {
            "2026-01": 1000,
            "2026-02": 1000,
            "2026-03": 1000,
            "2026-04": 2000,
            "2026-05": 2000,
            "2026-06": 2000,
        },
        quantity={"2026-04": 2, "2026-05": 2, "2026-06": 2},
    )
    a.invoice(
        "cus_a",
        "sub_a",
        [
            {
                "amount": 777,
                "start": "2026-01-01",
                "end": "2026-02-01",
                "price": "tokens",
                "item": "si_a_tok",
                "quantity": 777,
            }
        ],
    )
    a.invoice(
        "cus_a",
        "sub_a",
        [
            {
                "amount": 1000,
                "start": "2026-02-01",
                "end": "2026-03-01",
                "price": "basic",
                "item": "si_a_void",
            }
        ],
        status="void",
    )
    # cus_b: basic + pro from February; pro cancels at the end of April
    a.customer("cus_b")
    a.subscription("sub_b1", "cus_b", "active", [("si_b1", "basic", 1, "2026-07-01", "2026-08-01")])
    a.subscription(
        "sub_b2",
        "cus_b",
        "canceled",
        [("si_b2", "pro", 1, "2026-04-01", "2026-05-01")],
        ended="2026-05-01",
        cancel_at_period_end=True,
    )
    a.monthly(
        "cus_b",
        "sub_b1",
        "si_b1",
        "basic",
        {m: 1000 for m in ["2026-02", "2026-03", "2026-04", "2026-05", "2026-06"]},
    )
    a.monthly(
        "cus_b", "sub_b2", "si_b2", "pro", {m: 5000 for m in ["2026-02", "2026-03", "2026-04"]}
    )
    # cus_c: annual from 10 February
    a.customer("cus_c")
    a.subscription("sub_c", "cus_c", "active", [("si_c", "annual", 1, "2026-02-10", "2027-02-10")])
    a.invoice(
        "cus_c",
        "sub_c",
        [
            {
                "amount": 120000,
                "start": "2026-02-10",
                "end": "2027-02-10",
                "price": "annual",
                "item": "si_c",
            }
        ],
    )
    # cus_d: 50 % off March and April
    a.customer("cus_d")
    coupon = {
        "id": "di_d",
        "object": "discount",
        "start": ts("2026-03-01"),
        "end": ts("2026-05-01"),
        "source": {
            "type": "coupon",
            "coupon": {
                "id": "HALF",
                "object": "coupon",
                "percent_off": 50,
                "duration": "repeating",
                "duration_in_months": 2,
            },
        },
    }
    a.subscription(
        "sub_d",
        "cus_d",
        "active",
        [("si_d", "basic", 1, "2026-07-01", "2026-08-01")],
        discounts=[coupon],
    )
    half = [{"amount": 500, "discount": "di_d"}]
    a.monthly(
        "cus_d",
        "sub_d",
        "si_d",
        "basic",
        {"2026-03": 1000, "2026-04": 1000, "2026-05": 1000, "2026-06": 1000},
        discounts={"2026-03": half, "2026-04": half},
    )
    # cus_e: trial, paid, cancelled immediately on 25 May, back on 1 July
    a.customer("cus_e")
    a.subscription(
        "sub_e1",
        "cus_e",
        "canceled",
        [("si_e1", "basic", 1, "2026-05-20", "2026-06-20")],
        ended="2026-05-25",
        trial=("2026-01-20", "2026-02-20"),
    )
    for start, end, amount in [
        ("2026-01-20", "2026-02-20", 0),
        ("2026-02-20", "2026-03-20", 1000),
        ("2026-03-20", "2026-04-20", 1000),
        ("2026-04-20", "2026-05-20", 1000),
        ("2026-05-20", "2026-06-20", 1000),
    ]:
        a.invoice(
            "cus_e",
            "sub_e1",
            [{"amount": amount, "start": start, "end": end, "price": "basic", "item": "si_e1"}],
        )
    a.subscription("sub_e2", "cus_e", "active", [("si_e2", "basic", 1, "2026-07-01", "2026-08-01")])
    # cus_f: EUR from April
    a.customer("cus_f")
    a.subscription(
        "sub_f", "cus_f", "active", [("si_f", "eur", 1, "2026-07-01", "2026-08-01")], currency="eur"
    )
    a.monthly(
        "cus_f",
        "sub_f",
        "si_f",
        "eur",
        {m: 2000 for m in ["2026-04", "2026-05", "2026-06"]},
        currency="eur",
    )
    # cus_g: past_due in July
    a.customer("cus_g")
    a.subscription("sub_g", "cus_g", "past_due", [("si_g", "basic", 1, "2026-07-01", "2026-08-01")])
    a.monthly("cus_g", "sub_g", "si_g", "basic", {"2026-06": 1000})
    # cus_h: trialing
    a.customer("cus_h")
    a.subscription(
        "sub_h",
        "cus_h",
        "trialing",
        [("si_h", "basic", 1, "2026-06-25", "2026-07-25")],
        trial=("2026-06-25", "2026-07-25"),
    )
    a.invoice(
        "cus_h",
        "sub_h",
        [
            {
                "amount": 0,
                "start": "2026-06-25",
                "end": "2026-07-25",
                "price": "basic",
                "item": "si_h",
            }
        ],
    )
    return a


# (customer, month, mrr, previous_mrr, mrr_change, movement, usage_mrr, fx_rate)
EXPECTED_CUSTOMER_MONTHS = [
    ("acme", "2026-01", 1000, 0, 1000, "new", 777, 1),
    ("acme", "2026-02", 1000, 1000, 0, None, 0, 1),
    ("acme", "2026-03", 1000, 1000, 0, None, 0, 1),
    ("acme", "2026-04", 2000, 1000, 1000, "expansion", 0, 1),
    ("acme", "2026-05", 2000, 2000, 0, None, 0, 1),
    ("acme", "2026-06", 2000, 2000, 0, None, 0, 1),
    ("acme", "2026-07", 2000, 2000, 0, None, 0, 1),
    ("cus_b", "2026-02", 6000, 0, 6000, "new", 0, 1),
    ("cus_b", "2026-03", 6000, 6000, 0, None, 0, 1),
    ("cus_b", "2026-04", 6000, 6000, 0, None, 0, 1),
    ("cus_b", "2026-05", 1000, 6000, -5000, "contraction", 0, 1),
    ("cus_b", "2026-06", 1000, 1000, 0, None, 0, 1),
    ("cus_b", "2026-07", 1000, 1000, 0, None, 0, 1),
    ("cus_c", "2026-02", 10000, 0, 10000, "new", 0, 1),
    ("cus_c", "2026-03", 10000, 10000, 0, None, 0, 1),
    ("cus_c", "2026-04", 10000, 10000, 0, None, 0, 1),
    ("cus_c", "2026-05", 10000, 10000, 0, None, 0, 1),
    ("cus_c", "2026-06", 10000, 10000, 0, None, 0, 1),
    ("cus_c", "2026-07", 10000, 10000, 0, None, 0, 1),
    ("cus_d", "2026-03", 500, 0, 500, "new", 0, 1),
    ("cus_d", "2026-04", 500, 500, 0, None, 0, 1),
    ("cus_d", "2026-05", 1000, 500, 500, "expansion", 0, 1),
    ("cus_d", "2026-06", 1000, 1000, 0, None, 0, 1),
    ("cus_d", "2026-07", 1000, 1000, 0, None, 0, 1),
    ("cus_e", "2026-03", 1000, 0, 1000, "new", 0, 1),
    ("cus_e", "2026-04", 1000, 1000, 0, None, 0, 1),
    ("cus_e", "2026-05", 1000, 1000, 0, None, 0, 1),
    ("cus_e", "2026-06", 0, 1000, -1000, "churn", 0, 1),
    ("cus_e", "2026-07", 1000, 0, 1000, "reactivation", 0, 1),
    ("cus_f", "2026-04", 2200, 0, 2200, "new", 0, Decimal("1.1")),
    ("cus_f", "2026-05", 2400, 2400, 0, None, 0, Decimal("1.2")),
    ("cus_f", "2026-06", 2400, 2400, 0, None, 0, Decimal("1.2")),
    ("cus_f", "2026-07", 2500, 2500, 0, None, 0, Decimal("1.25")),
    ("cus_g", "2026-06", 1000, 0, 1000, "new", 0, 1),
    ("cus_g", "2026-07", 1000, 1000, 0, None, 0, 1),
]

# month: starting, new, expansion, reactivation, contraction, churned, ending, fx_restatement,
#        starting_customers, ending_customers, (new, expansion, reactivation, contraction, churned) customers
EXPECTED_BRIDGE = {
    "2026-01": (0, 1000, 0, 0, 0, 0, 1000, 0, 0, 1, (1, 0, 0, 0, 0)),
    "2026-02": (1000, 16000, 0, 0, 0, 0, 17000, 0, 1, 3, (2, 0, 0, 0, 0)),
    "2026-03": (17000, 1500, 0, 0, 0, 0, 18500, 0, 3, 5, (2, 0, 0, 0, 0)),
    "2026-04": (18500, 2200, 1000, 0, 0, 0, 21700, 0, 5, 6, (1, 1, 0, 0, 0)),
    "2026-05": (21900, 0, 500, 0, 5000, 0, 17400, 200, 6, 6, (0, 1, 0, 1, 0)),
    "2026-06": (17400, 1000, 0, 0, 0, 1000, 17400, 0, 6, 6, (1, 0, 0, 0, 1)),
    "2026-07": (17500, 0, 0, 1000, 0, 0, 18500, 100, 6, 7, (0, 0, 1, 0, 0)),
}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mrr")
    path = root / "warehouse.duckdb"
    fx = root / "fx_rates.csv"
    fx.write_text(
        "currency,month,rate_to_reporting\n"
        "eur,2026-04-01,1.10\neur,2026-05-01,1.20\neur,2026-07-01,1.25\n"
    )
    con = connect(path)
    try:
        ensure_raw_schema(con)
        for object_type, oid, parent, data in build_account().rows:
            con.execute(
                "insert into raw.stripe_objects (object_type, id, parent_id, created, livemode,"
                " version_seen, api_version, synced_at, data) values (?, ?, ?, ?, false, 'v1',"
                " '2025-03-31.basil', ?, ?)",
                [
                    object_type,
                    oid,
                    parent,
                    datetime(2026, 1, 1),
                    datetime(2026, 7, 5),
                    json.dumps(data),
                ],
            )
    finally:
        con.close()
    env = {**os.environ, "METERWORKS_WAREHOUSE": str(path), "METERWORKS_FX_RATES": str(fx)}
    result = subprocess.run(
        [
            str(DBT),
            "build",
            "--select",
            "+fct_mrr_movements",
            "--exclude",
            "test_type:unit",
            "--vars",
            json.dumps({"as_of": AS_OF, "reporting_currency": "usd"}),
            "--project-dir",
            str(DBT_DIR),
            "--profiles-dir",
            str(DBT_DIR),
            "--target-path",
            str(root / "target"),
            "--log-path",
            str(root / "logs"),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "assert_mrr_bridge_holds" in result.stdout
    return path


def test_customer_months_match_the_hand_worked_table(warehouse: Path) -> None:
    con = connect(warehouse, read_only=True)
    try:
        rows = con.execute(
            "select customer_id, strftime(month, '%Y-%m'), mrr, previous_mrr, mrr_change, movement,"
            " usage_mrr, fx_rate, reporting_currency from marts.fct_mrr order by 1, 2"
        ).fetchall()
    finally:
        con.close()
    assert all(r[8] == "usd" for r in rows)
    actual = [
        (c, m, mrr, prev, chg, mv, usage, fx) for c, m, mrr, prev, chg, mv, usage, fx, _ in rows
    ]
    expected = [
        (c, m, Decimal(mrr), Decimal(prev), Decimal(chg), mv, Decimal(u), Decimal(fx))
        for c, m, mrr, prev, chg, mv, u, fx in EXPECTED_CUSTOMER_MONTHS
    ]
    assert actual == expected


def test_monthly_bridge_matches_the_hand_worked_bridge(warehouse: Path) -> None:
    con = connect(warehouse, read_only=True)
    try:
        rows = con.execute(
            "select strftime(month, '%Y-%m'), starting_mrr, new_mrr, expansion_mrr, reactivation_mrr,"
            " contraction_mrr, churned_mrr, ending_mrr, fx_restatement_mrr, starting_customers,"
            " ending_customers, new_customers, expansion_customers, reactivation_customers,"
            " contraction_customers, churned_customers, arr, nrr, grr, logo_churn_rate, usage_mrr"
            " from marts.fct_mrr_movements order by 1"
        ).fetchall()
    finally:
        con.close()
    actual = {r[0]: (*r[1:9], r[9], r[10], tuple(r[11:16])) for r in rows}
    expected = {
        m: (*(Decimal(x) for x in v[:8]), v[8], v[9], v[10]) for m, v in EXPECTED_BRIDGE.items()
    }
    assert actual == expected
    by_month = {r[0]: r for r in rows}
    assert by_month["2026-07"][16] == Decimal(18500 * 12)
    june = by_month["2026-06"]
    assert (june[17], june[18], june[19]) == (
        Decimal("0.942529"),
        Decimal("0.942529"),
        Decimal("0.166667"),
    )
    assert by_month["2026-01"][20] == Decimal(777)
    for month, (start, new, exp, react, contr, churn, end, *_rest) in EXPECTED_BRIDGE.items():
        assert end == start + new + exp + react - contr - churn, month
