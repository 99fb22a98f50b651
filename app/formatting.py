"""Display helpers: money with its currency everywhere (amounts are integer minor units, or
exact decimals of minor units for MRR), quantities, percentages."""

from __future__ import annotations

import math
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pandas as pd

from meterworks.pricing import minor_unit_exponent


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    try:
        return isinstance(value, float) and math.isnan(value)
    except TypeError:
        return False


def to_minor(value: Any) -> int | None:
    """An exact (decimal) minor-unit amount rounded half-up to a whole minor unit."""
    if _is_missing(value):
        return None
    return int(Decimal(str(value)).to_integral_value(rounding=ROUND_HALF_UP))


def money(minor: Any, currency: str | None) -> str:
    """``12345, 'usd'`` -> ``'USD 123.45'`` (half-up to the minor unit; '-' when missing)."""
    value = to_minor(minor)
    if value is None:
        return "-"
    code = (currency or "usd").lower()
    exponent = minor_unit_exponent(code)
    return f"{code.upper()} {Decimal(value).scaleb(-exponent):,.{exponent}f}"


def signed_money(minor: Any, currency: str | None) -> str:
    value = to_minor(minor)
    if value is None:
        return "-"
    text = money(abs(value), currency)
    return f"+{text}" if value > 0 else (f"-{text}" if value < 0 else text)


def quantity(value: Any, places: int | None = None) -> str:
    """A quantity with thousands separators, exact unless ``places`` rounds it (half-up)."""
    if _is_missing(value):
        return "-"
    d = Decimal(str(value))
    if places is not None:
        d = d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    if d == d.to_integral_value():
        return f"{int(d):,}"
    return f"{d.normalize():,f}"


def percent(value: Any, digits: int = 1) -> str:
    if _is_missing(value):
        return "-"
    return f"{float(value) * 100:.{digits}f}%"


def points(value: Any, digits: int = 1) -> str | None:
    """A change of a ratio in percentage points (``0.012`` -> ``'+1.2 pp'``)."""
    if _is_missing(value):
        return None
    return f"{float(value) * 100:+.{digits}f} pp"


def when(value: Any) -> str:
    if _is_missing(value):
        return "-"
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M} UTC"
    return str(value)


def period(start: Any, end: Any) -> str:
    if _is_missing(start):
        return "-"
    return f"{start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC"


def major(minor: Any, currency: str | None) -> float:
    """For chart axes only (never for a displayed amount): minor units as a float of major."""
    if _is_missing(minor):
        return float("nan")
    return float(minor) / 10 ** minor_unit_exponent((currency or "usd").lower())


def money_major(value: Any, currency: str | None) -> str:
    """A major-unit amount (a spend threshold of ``500`` dollars) with its currency."""
    if _is_missing(value):
        return "-"
    exponent = minor_unit_exponent((currency or "usd").lower())
    return money(Decimal(str(value)).scaleb(exponent), currency)
