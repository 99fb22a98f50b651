"""Pricing ("rating"): what Stripe will invoice for a quantity under a price.

``rate(price, quantity)`` is the reference implementation; the dbt macro
``meterworks.rate_usage`` (``dbt/macros/rating.sql``) computes the same amounts in SQL, and
``tests/test_rating_sql.py`` holds the two to the cent. See :mod:`meterworks.pricing.engine` for
the Stripe rules and where they are documented.
"""

from .engine import (
    MAX_AMOUNT_PLACES,
    THREE_DECIMAL_CURRENCIES,
    ZERO_DECIMAL_CURRENCIES,
    Price,
    Rated,
    Tier,
    TierCharge,
    minor_unit_exponent,
    rate,
    transform_quantity,
)
from .sources import price_from_catalog, price_from_stripe, price_row, tier_rows

__all__ = [
    "MAX_AMOUNT_PLACES",
    "THREE_DECIMAL_CURRENCIES",
    "ZERO_DECIMAL_CURRENCIES",
    "Price",
    "Rated",
    "Tier",
    "TierCharge",
    "minor_unit_exponent",
    "price_from_catalog",
    "price_from_stripe",
    "price_row",
    "rate",
    "tier_rows",
    "transform_quantity",
]
