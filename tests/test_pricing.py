"""The rating engine against Stripe's documented pricing examples.

``CASES`` is the shared table: ``tests/test_rating_sql.py`` runs the same rows through the dbt
macro. Amounts are minor units (cents, or yen for JPY). Sources, abbreviated below:

- TIERED   docs.stripe.com/subscriptions/pricing-models/tiered-pricing (Typographic: fonts 1-5
           at 7 USD, 6-10 at 6.5 USD, 11+ at 6 USD; volume table 1/5/6/20/25 -> 7/35/39/120/150
           USD; graduated "the totals for each tier are summed")
- TRANSFORM docs.stripe.com/billing/subscriptions/usage-based/transform-quantities (car rental:
           10 USD per hour, minutes / 60 rounded up, 150 min -> 30 USD)
- PACKAGE  stripe.com/docs/billing/subscriptions/quantity-transformation (10 USD per 5 users,
           round up: 1/3/5/6/7 users -> 10/10/10/20/20 USD; round=down for "every full" package)
- DECIMAL  stripe.com/docs/billing/subscriptions/decimal-amounts (unit_amount_decimal in cents,
           up to 12 places, 105.5 = 1.055 USD; "rounding occurs on the line item level":
           0.05 x 30 = 1.5 -> 2 cents)
- OVERAGE  docs.stripe.com/billing/subscriptions/usage-based/pricing-models (Llama AI: 200 USD
           includes 100,000 tokens, 0.001 USD per token above) and .../use-cases/
           flat-fee-and-overages (0-1000 tokens 0 USD, 1000+ at 0.04 USD)
- API      API reference, price tiers: flat_amount is "the flat billing amount for an entire
           tier, regardless of the number of units in the tier"; up_to is inclusive, inf last
- CURRENCY docs.stripe.com/currencies (zero-decimal: "to charge 500 JPY, provide 500")
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from meterworks.catalog import parse_catalog
from meterworks.pricing import (
    Price,
    Rated,
    Tier,
    minor_unit_exponent,
    price_from_catalog,
    price_from_stripe,
    price_row,
    rate,
    tier_rows,
)

D = Decimal
REFERENCE = Path("/work/shared/reference/stripe")


def per_unit(price_id: str, unit: str | int, *, currency: str = "usd", **transform) -> Price:
    return Price(currency, "per_unit", D(unit), price_id=price_id, **transform)


def tiered(price_id: str, mode: str, *tiers: tuple, currency: str = "usd") -> Price:
    """``tiers`` as ``(up_to or None, unit or None, flat or None)``."""
    return Price(
        currency,
        "tiered",
        None,
        mode,
        tuple(
            Tier(
                None if up is None else D(up),
                None if unit is None else D(unit),
                None if flat is None else D(flat),
            )
            for up, unit, flat in tiers
        ),
        price_id=price_id,
    )


TYPOGRAPHIC = ((5, 700, None), (10, 650, None), (None, 600, None))
VOLUME = tiered("typographic_volume", "volume", *TYPOGRAPHIC)
GRADUATED = tiered("typographic_graduated", "graduated", *TYPOGRAPHIC)
CAR_RENTAL = per_unit("car_rental_hour", 1000, divide_by=60, round="up")
PER_5_UP = per_unit("per_5_users_up", 1000, divide_by=5, round="up")
PER_5_DOWN = per_unit("per_5_users_down", 1000, divide_by=5, round="down")
MB = per_unit("storage_mb", "0.05")
CALLS = per_unit("api_call", "0.0125")
SUB_DOLLAR = per_unit("unit_105_5", "105.5")
PICO = per_unit("pico_cent", "0.000000000001")
LLAMA_USAGE = tiered("llama_usage", "graduated", (100_000, 0, None), (None, "0.1", None))
LLAMA_FLAT = tiered("llama_flat_in_tier", "graduated", (100_000, 0, 20_000), (None, "0.1", None))
HYPERNIAN = tiered("hypernian", "graduated", (1000, 0, None), (None, 4, None))
TOKENS_FLAT = tiered("tokens_flat", "graduated", (100_000, None, 400), (None, "0.0065", None))
GRAD_FLAT = tiered("graduated_flat", "graduated", (5, 0, 1000), (10, 100, 500), (None, 50, None))
VOL_FLAT = tiered("volume_flat", "volume", (10, 0, 1000), (50, 50, 500), (None, 40, None))
HALVES = tiered("two_tenths_tiers", "graduated", (1, "0.4", None), (None, "0.4", None))
FLAT_ONLY = tiered("flat_only_volume", "volume", (100, None, 5000), (None, None, 9000))
LARGE = tiered(
    "large_graduated",
    "graduated",
    (1_000_000, "0.001", None),
    (1_000_000_000, "0.0005", None),
    (None, "0.0001", None),
)
JPY_UNIT = per_unit("jpy_unit", 8000, currency="jpy")
JPY_HALF = per_unit("jpy_half_yen", "0.5", currency="jpy")
JPY_TIERED = tiered("jpy_volume", "volume", (10, 100, 1000), (None, 80, 1000), currency="jpy")


@dataclass(frozen=True)
class Case:
    id: str
    price: Price
    quantity: Decimal
    amount: int  # minor units, as Stripe invoices it
    billed: Decimal | None = None  # billed quantity when transform_quantity changes it


CASES: list[Case] = [
    # TIERED volume table, verbatim: 1, 5, 6, 20, 25 fonts -> 7, 35, 39, 120, 150 USD.
    Case("volume-1", VOLUME, D(1), 700),
    Case("volume-5-boundary", VOLUME, D(5), 3500),
    Case("volume-6", VOLUME, D(6), 3900),
    Case("volume-20", VOLUME, D(20), 12000),
    Case("volume-25", VOLUME, D(25), 15000),
    Case("volume-10-boundary", VOLUME, D(10), 6500),  # up_to is inclusive: 10 x 6.5
    Case("volume-11", VOLUME, D(11), 6600),  # 11 x 6
    Case("volume-zero", VOLUME, D(0), 0),
    Case("volume-fractional", VOLUME, D("5.5"), 3575),  # past 5 -> 6.5 USD tier: 5.5 x 650
    # TIERED graduated: "5 fonts result in the same charge as volume-based pricing: 35 USD";
    # beyond, each tier's units at its own rate (6 -> 35 + 6.5; 20 -> 35 + 32.5 + 60).
    Case("graduated-1", GRADUATED, D(1), 700),
    Case("graduated-5-boundary", GRADUATED, D(5), 3500),
    Case("graduated-6", GRADUATED, D(6), 4150),
    Case("graduated-10-boundary", GRADUATED, D(10), 6750),
    Case("graduated-11", GRADUATED, D(11), 7350),
    Case("graduated-20", GRADUATED, D(20), 12750),
    Case("graduated-25", GRADUATED, D(25), 15750),
    Case("graduated-zero", GRADUATED, D(0), 0),
    Case("graduated-fractional", GRADUATED, D("5.5"), 3825),  # 5 x 700 + 0.5 x 650
    # TRANSFORM: 150 minutes -> 3 hours (rounded up) -> 30 USD.
    Case("car-150-min", CAR_RENTAL, D(150), 3000, D(3)),
    Case("car-120-min-exact", CAR_RENTAL, D(120), 2000, D(2)),
    Case("car-121-min", CAR_RENTAL, D(121), 3000, D(3)),
    Case("car-zero", CAR_RENTAL, D(0), 0, D(0)),
    Case("car-fraction-of-minute", CAR_RENTAL, D("0.5"), 1000, D(1)),
    # PACKAGE round up, the doc's table: users 1, 3, 5, 6, 7 -> 10, 10, 10, 20, 20 USD.
    Case("per-5-up-1", PER_5_UP, D(1), 1000, D(1)),
    Case("per-5-up-3", PER_5_UP, D(3), 1000, D(1)),
    Case("per-5-up-5", PER_5_UP, D(5), 1000, D(1)),
    Case("per-5-up-6", PER_5_UP, D(6), 2000, D(2)),
    Case("per-5-up-7", PER_5_UP, D(7), 2000, D(2)),
    # PACKAGE round=down: only full packages are charged.
    Case("per-5-down-4", PER_5_DOWN, D(4), 0, D(0)),
    Case("per-5-down-5", PER_5_DOWN, D(5), 1000, D(1)),
    Case("per-5-down-9", PER_5_DOWN, D(9), 1000, D(1)),
    Case("per-5-down-10", PER_5_DOWN, D(10), 2000, D(2)),
    Case("per-5-down-fraction", PER_5_DOWN, D("9.999"), 1000, D(1)),
    # DECIMAL: 0.05 cents x 30 = 1.5 -> "rounded up to 2 cents".
    Case("decimal-0.05x30", MB, D(30), 2),
    Case("decimal-0.05x29", MB, D(29), 1),  # 1.45 -> 1
    Case("decimal-0.05x10", MB, D(10), 1),  # 0.5 -> 1 (half-up)
    Case("decimal-0.05x9", MB, D(9), 0),  # 0.45 -> 0
    # DECIMAL: 105.5 cents = 1.055 USD per unit.
    Case("decimal-105.5x1", SUB_DOLLAR, D(1), 106),
    Case("decimal-105.5x2", SUB_DOLLAR, D(2), 211),
    Case("decimal-105.5x3", SUB_DOLLAR, D(3), 317),  # 316.5 -> 317
    # DECIMAL: 0.0125 cents per call (1.25 USD per 10,000 calls).
    Case("calls-1000", CALLS, D(1000), 13),  # 12.5 -> 13
    Case("calls-999", CALLS, D(999), 12),  # 12.4875 -> 12
    Case("calls-zero", CALLS, D(0), 0),
    Case("calls-1e6", CALLS, D(1_000_000), 12500),
    Case("calls-1e9", CALLS, D(1_000_000_000), 12_500_000),
    # DECIMAL: all 12 places: 10^-12 cents.
    Case("pico-1e12", PICO, D(10**12), 1),
    Case("pico-half", PICO, D(5 * 10**11), 1),  # 0.5 -> 1
    Case("pico-below-half", PICO, D(499_999_999_999), 0),
    # OVERAGE, Llama AI: first 100,000 tokens at 0, then 0.1 cents (0.001 USD) per token.
    Case("llama-100000-boundary", LLAMA_USAGE, D(100_000), 0),
    Case("llama-150000", LLAMA_USAGE, D(150_000), 5000),
    Case("llama-100001", LLAMA_USAGE, D(100_001), 0),  # 0.1 cent -> 0
    Case("llama-100005", LLAMA_USAGE, D(100_005), 1),  # 0.5 cent -> 1
    # OVERAGE with the 200 USD base folded into the first tier's flat amount (API: flat_amount is
    # for the entire tier). Zero usage is in the first tier, so the base is due (inferred).
    Case("llama-flat-zero", LLAMA_FLAT, D(0), 20_000),
    Case("llama-flat-100000", LLAMA_FLAT, D(100_000), 20_000),
    Case("llama-flat-150000", LLAMA_FLAT, D(150_000), 25_000),
    # OVERAGE, Hypernian: 0-1000 tokens free, 1000+ at 0.04 USD.
    Case("hypernian-1000", HYPERNIAN, D(1000), 0),
    Case("hypernian-1500", HYPERNIAN, D(1500), 2000),
    # Graduated, flat 4 USD for the first 100,000 tokens, then 0.000065 USD (0.0065 cents): a
    # Stripe community thread: 100,070 tokens -> 4 + 70 x 0.000065 = 4.00455 -> 4.00 USD.
    Case("tokens-flat-100070", TOKENS_FLAT, D(100_070), 400),
    Case("tokens-flat-zero", TOKENS_FLAT, D(0), 400),
    # API: graduated with a flat amount per tier, charged once a tier is entered.
    Case("graduated-flat-zero", GRAD_FLAT, D(0), 1000),
    Case("graduated-flat-5", GRAD_FLAT, D(5), 1000),
    Case("graduated-flat-6", GRAD_FLAT, D(6), 1600),  # 1000 + (500 + 1 x 100)
    Case("graduated-flat-10", GRAD_FLAT, D(10), 2000),
    Case("graduated-flat-12", GRAD_FLAT, D(12), 2100),  # 2000 + 2 x 50
    # API: volume with flat amounts; the whole quantity takes one tier's unit and flat amount.
    Case("volume-flat-zero", VOL_FLAT, D(0), 1000),
    Case("volume-flat-10", VOL_FLAT, D(10), 1000),
    Case("volume-flat-11", VOL_FLAT, D(11), 1050),  # 11 x 50 + 500
    Case("volume-flat-50", VOL_FLAT, D(50), 3000),
    Case("volume-flat-51", VOL_FLAT, D(51), 2040),  # 51 x 40: the total can drop (TIERED)
    Case("volume-flat-only", FLAT_ONLY, D(100), 5000),
    Case("volume-flat-only-101", FLAT_ONLY, D(101), 9000),
    # DECIMAL "on the line item level": a graduated price is one line, rounded once:
    # 0.4 + 0.4 = 0.8 -> 1 (rounding each tier would give 0). Inferred from the same rule.
    Case("graduated-rounded-once", HALVES, D(2), 1),
    # Large quantities: 10^6 x 0.001 + (10^9 - 10^6) x 0.0005 + (10^12 - 10^9) x 0.0001.
    Case("large-1e12", LARGE, D(10**12), 100_400_500),
    Case("large-1e9-boundary", LARGE, D(10**9), 500_500),
    Case("large-fractional", LARGE, D("1000000.5"), 1000),  # 1000 + 0.00025 -> 1000
    # CURRENCY: JPY is zero-decimal; amounts are yen, the arithmetic is unchanged.
    Case("jpy-per-unit", JPY_UNIT, D(3), 24_000),
    Case("jpy-half-yen", JPY_HALF, D(3), 2),  # 1.5 yen -> 2
    Case("jpy-volume", JPY_TIERED, D(12), 1960),  # 12 x 80 + 1000
]


def test_case_ids_and_prices_are_consistent() -> None:
    assert len({case.id for case in CASES}) == len(CASES)
    by_id: dict[str | None, Price] = {}
    for case in CASES:
        assert by_id.setdefault(case.price.price_id, case.price) == case.price


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_documented_examples(case: Case) -> None:
    rated = rate(case.price, case.quantity)
    assert rated.amount == case.amount
    assert isinstance(rated.amount, int)
    assert rated.billed_quantity == (case.quantity if case.billed is None else case.billed)
    assert abs(rated.unrounded - rated.amount) <= D("0.5")
    if rated.breakdown:
        assert sum(charge.amount for charge in rated.breakdown) == rated.unrounded


def test_breakdown_of_a_graduated_price() -> None:
    rated = rate(GRAD_FLAT, 12)
    assert [(c.tier_index, c.quantity, c.amount) for c in rated.breakdown] == [
        (1, D(5), D(1000)),
        (2, D(5), D(1000)),
        (3, D(2), D(100)),
    ]
    assert rated == Rated(2100, D(12), D(2100), rated.breakdown)


def test_breakdown_of_a_volume_price_and_per_unit() -> None:
    (charge,) = rate(VOL_FLAT, 11).breakdown
    assert (charge.tier_index, charge.quantity, charge.unit_amount_decimal) == (2, D(11), D(50))
    assert charge.flat_amount_decimal == D(500)
    assert rate(CALLS, 10).breakdown == ()


def test_int_and_decimal_quantities_agree() -> None:
    assert rate(GRADUATED, 20) == rate(GRADUATED, D("20.000"))


def test_unrounded_is_exact() -> None:
    assert rate(PICO, 3).unrounded == D("3E-12")
    assert rate(LARGE, D("1000000.5")).unrounded == D("1000.00025")


def test_minor_unit_exponent() -> None:
    assert [minor_unit_exponent(c) for c in ("USD", "jpy", "krw", "kwd", "eur")] == [2, 0, 0, 3, 2]


# -- validation ------------------------------------------------------------------------------

INVALID_PRICES = [
    (lambda: Price("usd", "tiered", None, "graduated", ()), "at least one tier"),
    (lambda: tiered("p", "volume", (5, 1, None), (10, 1, None)), "last tier must have up_to inf"),
    (lambda: tiered("p", "graduated", (None, 1, None), (10, 1, None)), "not the last tier"),
    (lambda: tiered("p", "graduated", (10, 1, None), (10, 2, None), (None, 1, None)), "increase"),
    (
        lambda: tiered("p", "graduated", (10, None, None), (None, 1, None)),
        "unit_amount_decimal or a flat",
    ),
    (lambda: tiered("p", "graduated", ("2.5", 1, None), (None, 1, None)), "whole number"),
    (lambda: tiered("p", "graduated", (0, 1, None), (None, 1, None)), "positive whole"),
    (lambda: Price("usd", "tiered", None, None, (Tier(None, D(1), None),)), "tiers_mode"),
    (lambda: Price("usd", "tiered", D(1), "volume", (Tier(None, D(1), None),)), "per tier"),
    (
        lambda: Price("usd", "tiered", None, "volume", (Tier(None, D(1)),), 5, "up"),
        "not compatible with tiered",
    ),
    (lambda: Price("usd", "per_unit", None), "needs a unit_amount_decimal"),
    (lambda: Price("usd", "per_unit", D(1), "volume"), "no tiers"),
    (lambda: Price("usd", "per_unit", D(1), tiers=(Tier(None, D(1)),)), "no tiers"),
    (lambda: per_unit("p", 1, divide_by=0, round="up"), "at least 1"),
    (lambda: per_unit("p", 1, divide_by=5, round="nearest"), "'up' or 'down'"),
    (lambda: per_unit("p", 1, divide_by=5), "both divide_by and round"),
    (lambda: per_unit("p", 1, round="up"), "both divide_by and round"),
    (lambda: per_unit("p", 1, divide_by=2.5, round="up"), "whole number"),
    (lambda: per_unit("p", "0.0000000000001"), "12 decimal places"),
    (lambda: per_unit("p", -1), "negative"),
    (lambda: Price("usd", "per_unit", 0.5), "not 0.5"),  # a float is refused
    (lambda: Price("dollars", "per_unit", D(1)), "3-letter"),
    (lambda: Price("usd", "licensed", D(1)), "billing_scheme"),
    (lambda: Tier(None, D(1), D(-5)), "negative"),
]


@pytest.mark.parametrize("build, message", INVALID_PRICES, ids=[m for _, m in INVALID_PRICES])
def test_invalid_prices_are_refused(build, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_error_names_the_price() -> None:
    with pytest.raises(ValueError, match=r"^price price_abc: a per_unit price needs"):
        Price("usd", "per_unit", None, price_id="price_abc")


@pytest.mark.parametrize(
    "quantity, error, message",
    [
        (D(-1), ValueError, "negative"),
        (-5, ValueError, "negative"),
        (D("NaN"), ValueError, "finite"),
        (D("Infinity"), ValueError, "finite"),
        (1.5, TypeError, "float"),
        ("10", TypeError, "str"),
        (True, TypeError, "bool"),
    ],
)
def test_invalid_quantities_are_refused(quantity, error, message) -> None:
    with pytest.raises(error, match=message):
        rate(CALLS, quantity)


def test_rate_needs_a_price() -> None:
    with pytest.raises(TypeError, match="Price"):
        rate({"billing_scheme": "per_unit"}, 1)  # type: ignore[arg-type]


def test_absurdly_precise_quantity_is_an_error_not_a_wrong_amount() -> None:
    with pytest.raises(ValueError, match="too precise"):
        rate(PICO, D("0." + "1" * 130))


# -- from Stripe objects -------------------------------------------------------------------


def test_price_from_stripe_reference_fixture() -> None:
    data = json.loads((REFERENCE / "price.json").read_text())
    price = price_from_stripe(data)
    assert price == Price(
        "usd", "per_unit", D(2000), None, (), 1592560163, "down", "price_1PgafmB7WZ01zgkW6dKueIc5"
    )
    assert rate(price, 3 * 1592560163 - 1).amount == 4000  # 2.99... packages, rounded down


def test_price_from_stripe_sdk_object_and_legacy_plan() -> None:
    stripe = pytest.importorskip("stripe")
    data = json.loads((REFERENCE / "price.json").read_text())
    sdk_object = stripe.Price.construct_from(data, "sk_test_x")
    assert price_from_stripe(sdk_object) == price_from_stripe(data)
    plan = json.loads((REFERENCE / "plan.json").read_text())
    assert price_from_stripe(plan) == price_from_stripe(data)


def test_price_from_stripe_tiered_json_export() -> None:
    price = price_from_stripe(
        {
            "id": "price_graduated",
            "object": "price",
            "currency": "usd",
            "billing_scheme": "tiered",
            "tiers_mode": "graduated",
            "unit_amount": None,
            "unit_amount_decimal": None,
            "transform_quantity": None,
            "tiers": [
                {"up_to": 5, "unit_amount": 0, "unit_amount_decimal": "0", "flat_amount": 1000,
                 "flat_amount_decimal": "1000"},
                {"up_to": 10, "unit_amount": 100, "unit_amount_decimal": "100",
                 "flat_amount": 500, "flat_amount_decimal": "500"},
                {"up_to": None, "unit_amount": None, "unit_amount_decimal": "50",
                 "flat_amount": None, "flat_amount_decimal": None},
            ],
        }
    )  # fmt: skip
    assert price.tiers == GRAD_FLAT.tiers
    assert rate(price, 12).amount == 2100


def test_price_from_stripe_prefers_decimal_fields_and_accepts_sdk_decimals() -> None:
    price = price_from_stripe(
        {"currency": "usd", "unit_amount": None, "unit_amount_decimal": D("0.0125")}
    )
    assert price.unit_amount_decimal == D("0.0125")
    tiered_price = price_from_stripe(
        {
            "currency": "usd",
            "billing_scheme": "tiered",
            "tiers_mode": "volume",
            "tiers": [{"up_to": "inf", "unit_amount": 3, "flat_amount_decimal": "2.5"}],
        }
    )
    assert tiered_price.tiers == (Tier(None, D(3), D("2.5")),)


def test_price_from_stripe_tiered_without_expanded_tiers() -> None:
    with pytest.raises(ValueError, match=r"Stripe price price_t: .*expand\[\]=tiers"):
        price_from_stripe(
            {"id": "price_t", "currency": "usd", "billing_scheme": "tiered", "tiers_mode": "volume"}
        )


def test_price_from_stripe_refuses_floats() -> None:
    with pytest.raises(ValueError, match="Stripe price: unit_amount"):
        price_from_stripe({"currency": "usd", "unit_amount_decimal": 0.0125})


# -- from the catalog ----------------------------------------------------------------------


def test_price_from_catalog_design_example() -> None:
    catalog = parse_catalog(
        {
            "meters": [{"code": "api_calls", "event": "api_request", "aggregation": "count"}],
            "plans": [
                {
                    "code": "growth",
                    "charges": [
                        {
                            "meter": "api_calls",
                            "included": 100000,
                            "pricing": {
                                "billing_scheme": "tiered",
                                "tiers_mode": "graduated",
                                "tiers": [
                                    {"up_to": 100000, "unit_amount_decimal": "0"},
                                    {"up_to": "inf", "unit_amount_decimal": "0.02"},
                                ],
                            },
                        }
                    ],
                }
            ],
        }
    )
    pricing = catalog.plans[0].charges[0].pricing
    price = price_from_catalog(pricing, price_id="growth:api_calls")
    assert price.price_id == "growth:api_calls"
    assert price.tiers == (Tier(D(100000), D(0)), Tier(None, D("0.02")))
    assert rate(price, 150_000).amount == 1000  # 50,000 x 0.02 cents


def test_price_from_catalog_package_pricing_dict() -> None:
    price = price_from_catalog(
        {
            "unit_amount_decimal": "1000",
            "transform_quantity": {"divide_by": 60, "round": "up"},
            "currency": "USD",
        }
    )
    assert price == Price("usd", "per_unit", D(1000), divide_by=60, round="up")
    with pytest.raises(ValueError, match="transform_quantity"):
        price_from_catalog({"unit_amount_decimal": "1", "transform_quantity": [60, "up"]})


def test_warehouse_rows() -> None:
    assert price_row(CAR_RENTAL) == {
        "price_id": "car_rental_hour",
        "currency": "usd",
        "billing_scheme": "per_unit",
        "tiers_mode": None,
        "unit_amount_decimal": D(1000),
        "divide_by": 60,
        "round_mode": "up",
    }
    assert tier_rows(VOL_FLAT)[2] == {
        "price_id": "volume_flat",
        "tier_index": 3,
        "up_to": None,
        "unit_amount_decimal": D(40),
        "flat_amount_decimal": None,
    }
    assert len(tier_rows([VOLUME, CAR_RENTAL, GRAD_FLAT])) == 6
