"""Rate a quantity against a Stripe-shaped price, the way Stripe computes the invoice line.

Rules, as Stripe documents them (the tests cite the worked examples):

- **Amounts are in the currency's minor unit** (cents; yen for zero-decimal currencies such as
  JPY, where "to charge 500 JPY, provide an amount value of 500"), so the arithmetic is the same
  for every currency. ``unit_amount_decimal`` / ``flat_amount_decimal`` carry "at most 12 decimal
  places" of that minor unit. (docs.stripe.com/currencies; API reference, Price object.)
- **per_unit**: amount = billed quantity x ``unit_amount_decimal``.
- **transform_quantity** (package pricing): "divide the reported usage by a specific number and
  round the result up or down" *before* the unit amount applies; "quantity transformation isn't
  compatible with tiered pricing" (docs.stripe.com/billing/subscriptions/usage-based/
  transform-quantities; the 150 min / 60 -> 3 hours example).
- **tiered, volume**: "the entire quantity is multiplied by the unit cost of the tier" the
  quantity falls in, plus that tier's flat amount (docs.stripe.com/subscriptions/pricing-models/
  tiered-pricing, Typographic example).
- **tiered, graduated**: "the quantity is multiplied by the amount for each tier and the totals
  for each tier are summed"; a tier covers "up to and including" ``up_to`` and starts after the
  previous tier's ``up_to``; ``flat_amount`` is "the flat billing amount for an entire tier,
  regardless of the number of units in the tier" (same page; API reference, ``tiers``).
- **Rounding**: "Rounding occurs on the line item level of your invoices ... after the quantity
  is multiplied by the decimal amount": 0.05 cents x 30 = 1.5 "is then rounded up to 2 cents"
  (docs.stripe.com/billing/subscriptions/decimal-amounts). We therefore keep every tier exact and
  round the line's total once, half-up (Stripe's fee and tax-rate rounding is also half-up:
  0.025 -> 0.03), to an integer number of minor units.

Inferred, not stated by Stripe in so many words:

- a quantity of 0 falls in the first tier (tiers start at 0), so that tier's flat amount is
  charged at zero usage, in both modes;
- a graduated price is one invoice line, so it is rounded once (not tier by tier).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import (
    ROUND_HALF_UP,
    Decimal,
    Inexact,
    InvalidOperation,
    localcontext,
)
from typing import Literal

BillingScheme = Literal["per_unit", "tiered"]
TiersMode = Literal["graduated", "volume"]
RoundMode = Literal["up", "down"]

#: Stripe's documented maximum precision of ``*_decimal`` amounts.
MAX_AMOUNT_PLACES = 12

#: Zero-decimal currencies (docs.stripe.com/currencies): amounts are whole units already.
ZERO_DECIMAL_CURRENCIES = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga"}
    | {"pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}
)
#: Three-decimal currencies (docs.stripe.com/currencies).
THREE_DECIMAL_CURRENCIES = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})

# Wide enough that no product of a 12-place amount and a realistic quantity is ever rounded;
# the Inexact trap turns any lost digit into an error instead of a silently wrong amount.
_PRECISION = 120


def minor_unit_exponent(currency: str) -> int:
    """Decimal places of the minor unit Stripe uses in API amounts (``jpy`` -> 0, ``usd`` -> 2).

    Rating does not need it (Stripe amounts are already minor units); it is for display.
    """
    code = currency.lower()
    if code in ZERO_DECIMAL_CURRENCIES:
        return 0
    if code in THREE_DECIMAL_CURRENCIES:
        return 3
    return 2


def _decimal(value: object, what: str, *, optional: bool = False) -> Decimal | None:
    """An exact Decimal from Decimal, int or a numeric string; never from a float."""
    if value is None:
        if optional:
            return None
        raise ValueError(f"{what} is required")
    if isinstance(value, (bool, float)):
        raise ValueError(f"{what} must be a Decimal, int or decimal string, not {value!r}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{what} is not a decimal number: {value!r}") from None
    else:
        raise ValueError(f"{what} must be a Decimal, int or decimal string, not {value!r}")
    if not result.is_finite():
        raise ValueError(f"{what} must be a finite number, not {value!r}")
    return result


def _amount(value: object, what: str) -> Decimal | None:
    """A non-negative minor-unit amount with at most 12 decimal places (or None)."""
    result = _decimal(value, what, optional=True)
    if result is None:
        return None
    if result < 0:
        raise ValueError(f"{what} must not be negative (got {result})")
    exponent = result.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_AMOUNT_PLACES:
        raise ValueError(
            f"{what} has more than {MAX_AMOUNT_PLACES} decimal places (got {result}); "
            "Stripe allows at most 12"
        )
    return result


@dataclass(frozen=True)
class Tier:
    """One tier. ``up_to`` is inclusive; ``None`` is Stripe's ``inf`` (``up_to: null``)."""

    up_to: Decimal | None
    unit_amount_decimal: Decimal | None = None
    flat_amount_decimal: Decimal | None = None

    def __post_init__(self) -> None:
        up_to = _decimal(self.up_to, "tier up_to", optional=True)
        if up_to is not None and (up_to <= 0 or up_to != up_to.to_integral_value()):
            raise ValueError(f"tier up_to must be a positive whole number or inf (got {up_to})")
        unit = _amount(self.unit_amount_decimal, "tier unit_amount_decimal")
        flat = _amount(self.flat_amount_decimal, "tier flat_amount_decimal")
        if unit is None and flat is None:
            # Stripe: "An entry in the tiers array is missing an amount."
            raise ValueError("a tier needs a unit_amount_decimal or a flat_amount_decimal")
        object.__setattr__(self, "up_to", up_to)
        object.__setattr__(self, "unit_amount_decimal", unit)
        object.__setattr__(self, "flat_amount_decimal", flat)


@dataclass(frozen=True)
class Price:
    """A Stripe price, reduced to what rating needs. Amounts are minor units (cents, yen)."""

    currency: str
    billing_scheme: BillingScheme
    unit_amount_decimal: Decimal | None = None
    tiers_mode: TiersMode | None = None
    tiers: tuple[Tier, ...] = ()
    divide_by: int | None = None
    round: RoundMode | None = None
    price_id: str | None = None

    def __post_init__(self) -> None:
        label = f"price {self.price_id}: " if self.price_id else "price: "
        try:
            self._validate()
        except ValueError as exc:
            raise ValueError(label + str(exc)) from None

    def _validate(self) -> None:
        if not isinstance(self.currency, str) or len(self.currency.strip()) != 3:
            raise ValueError(f"currency must be a 3-letter ISO code (got {self.currency!r})")
        object.__setattr__(self, "currency", self.currency.strip().lower())
        object.__setattr__(self, "tiers", tuple(self.tiers or ()))
        for tier in self.tiers:
            if not isinstance(tier, Tier):
                raise ValueError(f"tiers must be Tier objects (got {tier!r})")
        self._validate_transform()
        if self.billing_scheme == "per_unit":
            unit = _amount(self.unit_amount_decimal, "unit_amount_decimal")
            if unit is None:
                raise ValueError("a per_unit price needs a unit_amount_decimal")
            object.__setattr__(self, "unit_amount_decimal", unit)
            if self.tiers or self.tiers_mode is not None:
                raise ValueError("a per_unit price takes no tiers or tiers_mode")
        elif self.billing_scheme == "tiered":
            if self.unit_amount_decimal is not None:
                raise ValueError("a tiered price takes no unit_amount_decimal (set it per tier)")
            if self.tiers_mode not in ("graduated", "volume"):
                raise ValueError(
                    f"a tiered price needs tiers_mode 'graduated' or 'volume' "
                    f"(got {self.tiers_mode!r})"
                )
            if not self.tiers:
                raise ValueError("a tiered price needs at least one tier")
            if self.divide_by is not None:
                raise ValueError(
                    "transform_quantity is not compatible with tiered pricing (Stripe refuses it)"
                )
            _check_tier_order(self.tiers)
        else:
            raise ValueError(
                f"billing_scheme must be 'per_unit' or 'tiered' (got {self.billing_scheme!r})"
            )

    def _validate_transform(self) -> None:
        if self.divide_by is None and self.round is None:
            return
        if self.divide_by is None or self.round is None:
            raise ValueError("transform_quantity needs both divide_by and round")
        if isinstance(self.divide_by, bool) or not isinstance(self.divide_by, int):
            raise ValueError(f"divide_by must be a whole number (got {self.divide_by!r})")
        if self.divide_by < 1:
            raise ValueError(f"divide_by must be at least 1 (got {self.divide_by})")
        if self.round not in ("up", "down"):
            raise ValueError(f"round must be 'up' or 'down' (got {self.round!r})")


def _check_tier_order(tiers: Iterable[Tier]) -> None:
    tiers = tuple(tiers)
    previous: Decimal | None = None
    for index, tier in enumerate(tiers, start=1):
        last = index == len(tiers)
        if tier.up_to is None and not last:
            raise ValueError(f"tier {index} has up_to inf but is not the last tier")
        if tier.up_to is not None and last:
            raise ValueError(
                f"the last tier must have up_to inf (got {tier.up_to}); otherwise a larger "
                "quantity has no price"
            )
        if tier.up_to is not None and previous is not None and tier.up_to <= previous:
            raise ValueError(
                f"tier up_to values must increase: tier {index} ({tier.up_to}) follows {previous}"
            )
        previous = tier.up_to


@dataclass(frozen=True)
class TierCharge:
    """What one tier contributed: ``amount = quantity x unit_amount + flat_amount`` (exact)."""

    tier_index: int  # 1-based, in ascending up_to order
    quantity: Decimal
    unit_amount_decimal: Decimal
    flat_amount_decimal: Decimal
    amount: Decimal


@dataclass(frozen=True)
class Rated:
    """A rated line. ``amount`` is what Stripe invoices, in integer minor units."""

    amount: int
    billed_quantity: Decimal  # after transform_quantity
    unrounded: Decimal  # exact, before the line-level half-up rounding
    breakdown: tuple[TierCharge, ...] = field(default=())  # empty for per_unit prices


def _quantity(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise TypeError(f"quantity must be a Decimal or an int, not {type(value).__name__}")
    quantity = Decimal(value)
    if not quantity.is_finite():
        raise ValueError(f"quantity must be a finite number (got {value})")
    if quantity < 0:
        raise ValueError(f"quantity must not be negative (got {value})")
    return quantity


def transform_quantity(price: Price, quantity: Decimal) -> Decimal:
    """Stripe's package transform: divide by ``divide_by``, then round up or down to a whole."""
    if price.divide_by is None:
        return quantity
    whole, remainder = divmod(quantity, Decimal(price.divide_by))
    if price.round == "up" and remainder:
        whole += 1
    return whole


def rate(price: Price, quantity: Decimal | int) -> Rated:
    """Rate ``quantity`` (as measured, before ``transform_quantity``) against ``price``."""
    if not isinstance(price, Price):
        raise TypeError(f"price must be a Price, not {type(price).__name__}")
    measured = _quantity(quantity)
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        ctx.traps[Inexact] = True
        try:
            billed = transform_quantity(price, measured)
            if price.billing_scheme == "per_unit":
                assert price.unit_amount_decimal is not None
                breakdown: tuple[TierCharge, ...] = ()
                unrounded = billed * price.unit_amount_decimal
            elif price.tiers_mode == "volume":
                breakdown = (_volume(price.tiers, billed),)
                unrounded = breakdown[0].amount
            else:
                breakdown = _graduated(price.tiers, billed)
                unrounded = sum((charge.amount for charge in breakdown), Decimal(0))
            amount = int(unrounded.to_integral_value(rounding=ROUND_HALF_UP))
        except Inexact:
            raise ValueError(
                f"quantity {quantity} is too precise to rate exactly against this price"
            ) from None
    return Rated(amount=amount, billed_quantity=billed, unrounded=unrounded, breakdown=breakdown)


def _charge(index: int, tier: Tier, units: Decimal) -> TierCharge:
    unit = tier.unit_amount_decimal or Decimal(0)
    flat = tier.flat_amount_decimal or Decimal(0)
    return TierCharge(
        tier_index=index,
        quantity=units,
        unit_amount_decimal=unit,
        flat_amount_decimal=flat,
        amount=units * unit + flat,
    )


def _volume(tiers: tuple[Tier, ...], billed: Decimal) -> TierCharge:
    """The first tier whose ``up_to`` is at least the quantity prices every unit."""
    for index, tier in enumerate(tiers, start=1):
        if tier.up_to is None or billed <= tier.up_to:
            return _charge(index, tier, billed)
    raise AssertionError("validated tiers end with up_to inf")  # pragma: no cover


def _graduated(tiers: tuple[Tier, ...], billed: Decimal) -> tuple[TierCharge, ...]:
    """Each tier prices the units between the previous ``up_to`` and its own.

    The first tier is always entered (its flat amount is due even at zero usage); a later tier
    only once the quantity exceeds the previous tier's ``up_to``.
    """
    charges: list[TierCharge] = []
    lower = Decimal(0)
    for index, tier in enumerate(tiers, start=1):
        if index > 1 and billed <= lower:
            break
        upper = billed if tier.up_to is None else min(billed, tier.up_to)
        charges.append(_charge(index, tier, upper - lower))
        if tier.up_to is None:
            break
        lower = tier.up_to
    return tuple(charges)
