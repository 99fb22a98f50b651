"""Build a :class:`Price` from a Stripe price (or legacy plan) or a catalog ``pricing`` block, and
flatten prices into the rows of the warehouse's prices and tiers relations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from .engine import Price, Tier, _decimal

__all__ = ["price_from_catalog", "price_from_stripe", "price_row", "tier_rows"]


def _as_mapping(obj: Any, what: str) -> Mapping[str, Any]:
    if isinstance(obj, Mapping):
        return obj
    to_dict = getattr(obj, "to_dict", None)  # stripe>=15 objects are not dicts
    if callable(to_dict):
        return to_dict()
    raise ValueError(f"{what} must be a mapping or a Stripe object, not {type(obj).__name__}")


def _stripe_amount(data: Mapping[str, Any], decimal_key: str, int_key: str, what: str) -> Any:
    """``*_decimal`` when present (string in JSON, Decimal from the SDK), else the integer field."""
    value = data.get(decimal_key)
    if value is None:
        value = data.get(int_key)
    if value is None:
        return None
    return _decimal(value, what)


def _whole(value: Any) -> Any:
    """``divide_by`` as an int when it is written as digits; anything else is left to Price."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value


def _stripe_up_to(value: Any, index: int) -> Decimal | None:
    if value is None or value == "inf":
        return None
    return _decimal(value, f"tiers[{index}].up_to")


def price_from_stripe(price: Mapping[str, Any] | Any) -> Price:
    """A :class:`Price` from a Stripe ``price`` (or legacy ``plan``) object.

    Accepts the SDK object (``to_dict()`` is used), a JSON export, or the dict of either. Tiers
    are only in the object when it was fetched with ``expand[]=tiers``; a tiered price without
    them is an error rather than a wrong amount.
    """
    data = _as_mapping(price, "a Stripe price")
    price_id = data.get("id")
    label = f"Stripe price {price_id}" if price_id else "Stripe price"
    is_plan = data.get("object") == "plan"
    billing_scheme = data.get("billing_scheme") or "per_unit"
    transform = data.get("transform_usage" if is_plan else "transform_quantity")
    if transform is not None:
        transform = _as_mapping(transform, f"{label}: transform_quantity")
    try:
        unit = None
        tiers: tuple[Tier, ...] = ()
        if billing_scheme == "per_unit":
            if is_plan:
                unit = _stripe_amount(data, "amount_decimal", "amount", "amount_decimal")
            else:
                unit = _stripe_amount(data, "unit_amount_decimal", "unit_amount", "unit_amount")
        elif billing_scheme == "tiered":
            raw_tiers = data.get("tiers")
            if raw_tiers is None:
                raise ValueError(
                    "tiered price has no tiers: fetch it with expand[]=tiers (Stripe omits "
                    "them otherwise)"
                )
            tiers = tuple(
                _tier_from_stripe(_as_mapping(t, f"tiers[{i}]"), i) for i, t in enumerate(raw_tiers)
            )
        divide_by = transform.get("divide_by") if transform else None
        return Price(
            currency=data.get("currency") or "",
            billing_scheme=billing_scheme,
            unit_amount_decimal=unit,
            tiers_mode=data.get("tiers_mode"),
            tiers=tiers,
            divide_by=_whole(divide_by),
            round=transform.get("round") if transform else None,
            price_id=price_id,
        )
    except ValueError as exc:
        message = str(exc)
        if price_id and message.startswith(f"price {price_id}: "):
            message = message.removeprefix(f"price {price_id}: ")
        raise ValueError(f"{label}: {message}") from None


def _tier_from_stripe(tier: Mapping[str, Any], index: int) -> Tier:
    return Tier(
        up_to=_stripe_up_to(tier.get("up_to"), index),
        unit_amount_decimal=_stripe_amount(
            tier, "unit_amount_decimal", "unit_amount", f"tiers[{index}].unit_amount"
        ),
        flat_amount_decimal=_stripe_amount(
            tier, "flat_amount_decimal", "flat_amount", f"tiers[{index}].flat_amount"
        ),
    )


def _field(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def price_from_catalog(pricing: Any, *, price_id: str | None = None) -> Price:
    """A :class:`Price` from a catalog ``pricing`` block (``meterworks.catalog.Pricing``).

    The catalog is Stripe-shaped: amounts are minor units (``unit_amount_decimal: "0.02"`` is
    0.02 cents), ``up_to: inf`` is the open last tier, ``transform_quantity`` is
    ``{divide_by, round}``. A plain dict of the same shape is accepted too.
    """
    transform = _field(pricing, "transform_quantity")
    if transform is not None and not isinstance(transform, Mapping):
        raise ValueError(f"transform_quantity must be a mapping (got {transform!r})")
    divide_by = transform.get("divide_by") if transform else None
    tiers = tuple(
        Tier(
            up_to=_catalog_up_to(_field(t, "up_to"), index),
            unit_amount_decimal=_field(t, "unit_amount_decimal"),
            flat_amount_decimal=_field(t, "flat_amount_decimal"),
        )
        for index, t in enumerate(_field(pricing, "tiers") or ())
    )
    return Price(
        currency=_field(pricing, "currency", "usd"),
        billing_scheme=_field(pricing, "billing_scheme", "per_unit"),
        unit_amount_decimal=_field(pricing, "unit_amount_decimal"),
        tiers_mode=_field(pricing, "tiers_mode"),
        tiers=tiers,
        divide_by=_whole(divide_by),
        round=transform.get("round") if transform else None,
        price_id=price_id,
    )


def _catalog_up_to(value: Any, index: int) -> Any:
    if value is None or (isinstance(value, str) and value.strip().lower() == "inf"):
        return None
    return _decimal(value, f"tiers[{index}].up_to")


# -- warehouse rows --------------------------------------------------------------------------


def price_row(price: Price) -> dict[str, Any]:
    """One row of the prices relation the ``meterworks.rate_usage`` macro reads."""
    return {
        "price_id": price.price_id,
        "currency": price.currency,
        "billing_scheme": price.billing_scheme,
        "tiers_mode": price.tiers_mode,
        "unit_amount_decimal": price.unit_amount_decimal,
        "divide_by": price.divide_by,
        "round_mode": price.round,
    }


def tier_rows(prices: Price | Iterable[Price]) -> list[dict[str, Any]]:
    """Rows of the tiers relation (``tier_index`` 1-based, ascending ``up_to``; null = inf)."""
    if isinstance(prices, Price):
        prices = [prices]
    return [
        {
            "price_id": price.price_id,
            "tier_index": index,
            "up_to": tier.up_to,
            "unit_amount_decimal": tier.unit_amount_decimal,
            "flat_amount_decimal": tier.flat_amount_decimal,
        }
        for price in prices
        for index, tier in enumerate(price.tiers, start=1)
    ]
