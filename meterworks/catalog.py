"""The catalog: the one YAML file a user edits (meters, plans, customers).

``load_catalog`` validates the whole file and raises ``CatalogError`` whose message names the
file, the entry and the problem, e.g. ``catalog.yml: meters[1] (tokens): property: a 'sum'
meter needs a property``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Aggregation = Literal["count", "sum", "max", "unique_count", "latest"]
VALUE_AGGREGATIONS = {"sum", "max", "latest"}  # need a numeric property
#: Columns of a flattened price (see ``meterworks.pricing.price_row``).
PRICE_COLUMNS = (
    "price_id",
    "currency",
    "billing_scheme",
    "tiers_mode",
    "unit_amount_decimal",
    "divide_by",
    "round_mode",
)
IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_\-\.]*$"


class CatalogError(ValueError):
    """An invalid catalog; the message is meant for the person who wrote the file."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Meter(_Strict):
    """Aggregates one event name into a billable quantity."""

    code: str = Field(pattern=IDENTIFIER)
    event: str = Field(min_length=1)
    aggregation: Aggregation
    property: str | None = None
    filters: dict[str, list[str]] = Field(default_factory=dict)
    group_by: list[str] = Field(default_factory=list)
    unit: str | None = None
    description: str | None = None

    @field_validator("filters", mode="before")
    @classmethod
    def _filters_as_lists(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                key: [str(v) for v in (vals if isinstance(vals, list) else [vals])]
                for key, vals in value.items()
            }
        return value

    @model_validator(mode="after")
    def _property_matches_aggregation(self) -> Meter:
        if self.aggregation == "count" and self.property:
            raise ValueError("a 'count' meter counts events and takes no property")
        if self.aggregation != "count" and not self.property:
            raise ValueError(f"a '{self.aggregation}' meter needs a property")
        if len(set(self.group_by)) != len(self.group_by):
            raise ValueError("group_by lists a property twice")
        return self


class Tier(_Strict):
    up_to: int | Literal["inf"]
    unit_amount_decimal: str | None = None
    flat_amount_decimal: str | None = None


class Pricing(_Strict):
    """A Stripe-shaped price (rated by a later issue; validated for shape now)."""

    billing_scheme: Literal["per_unit", "tiered"] = "per_unit"
    unit_amount_decimal: str | None = None
    tiers_mode: Literal["graduated", "volume"] | None = None
    tiers: list[Tier] = Field(default_factory=list)
    transform_quantity: dict[str, Any] | None = None
    currency: str = "usd"


class Charge(_Strict):
    meter: str
    included: float | None = Field(default=None, ge=0)
    pricing: Pricing | None = None


class Plan(_Strict):
    code: str = Field(pattern=IDENTIFIER)
    name: str | None = None
    charges: list[Charge] = Field(default_factory=list)


class Customer(_Strict):
    id: str = Field(min_length=1)
    name: str | None = None
    timezone: str = "UTC"
    plan: str | None = None
    thresholds: list[float] | None = None
    spend_thresholds: list[float] | None = None
    webhook_url: str | None = None

    @field_validator("thresholds", "spend_thresholds")
    @classmethod
    def _positive(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and any(v <= 0 for v in value):
            raise ValueError("thresholds must be positive numbers")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from exc
        return value


class AnomalySettings(_Strict):
    """Knobs of the usage anomaly model (``alerts.anomaly.AnomalyParams``); unset = default.

    Volumes are per day. ``hourly: false`` scores a meter by day only (the default for gauges
    and unique counts, whose hourly buckets are not additive); ``enabled: false`` silences it.
    """

    enabled: bool | None = None
    hourly: bool | None = None
    min_volume: float | None = Field(default=None, ge=0)
    min_ratio: float | None = Field(default=None, gt=1)
    min_ratio_hourly: float | None = Field(default=None, gt=1)
    threshold: float | None = Field(default=None, gt=0, lt=1)
    band_z: float | None = Field(default=None, gt=0)
    cooldown_buckets: int | None = Field(default=None, ge=0)
    cold_start_days: int | None = Field(default=None, ge=1)
    cold_ratio: float | None = Field(default=None, gt=1)

    def overrides(self) -> dict[str, Any]:
        """The model parameters set here (not ``enabled``/``hourly``)."""
        skip = {"enabled", "hourly", "meters"}
        return {k: v for k, v in self.model_dump().items() if v is not None and k not in skip}


class AnomalyConfig(AnomalySettings):
    """Catalog-wide anomaly settings, with per-meter overrides under ``meters``."""

    meters: dict[str, AnomalySettings] = Field(default_factory=dict)


class Catalog(_Strict):
    reporting_currency: str = "usd"
    backdating_days: int = Field(default=35, ge=0, le=3650)
    future_tolerance_minutes: int = Field(default=5, ge=0)
    meters: list[Meter] = Field(min_length=1)
    plans: list[Plan] = Field(default_factory=list)
    customers: list[Customer] = Field(default_factory=list)
    anomaly: AnomalyConfig = Field(default_factory=AnomalyConfig)

    @model_validator(mode="after")
    def _references_resolve(self) -> Catalog:
        _unique("meters", (m.code for m in self.meters))
        _unique("plans", (p.code for p in self.plans))
        _unique("customers", (c.id for c in self.customers))
        meter_codes = {m.code for m in self.meters}
        plan_codes = {p.code for p in self.plans}
        for index, plan in enumerate(self.plans):
            for charge in plan.charges:
                if charge.meter not in meter_codes:
                    raise ValueError(
                        f"plans[{index}] ({plan.code}): charge refers to unknown meter "
                        f"{charge.meter!r}"
                    )
        for code in self.anomaly.meters:
            if code not in meter_codes:
                raise ValueError(f"anomaly.meters: unknown meter {code!r}")
        for index, customer in enumerate(self.customers):
            if customer.plan and customer.plan not in plan_codes:
                raise ValueError(
                    f"customers[{index}] ({customer.id}): unknown plan {customer.plan!r}"
                )
        return self

    # -- lookups used by ingestion and the warehouse ------------------------------------
    def meters_for_event(self, event_name: str) -> list[Meter]:
        return [m for m in self.meters if m.event == event_name]

    @property
    def event_names(self) -> set[str]:
        return {m.event for m in self.meters}

    def meter_rows(self) -> list[dict[str, Any]]:
        """Rows for ``raw.catalog_meters``."""
        return [
            {
                "meter_code": m.code,
                "event_name": m.event,
                "aggregation": m.aggregation,
                "property": m.property,
                "group_by": json.dumps(m.group_by),
                "filters": json.dumps(m.filters, sort_keys=True),
                "unit": m.unit,
                "description": m.description,
            }
            for m in self.meters
        ]

    def plan_charge_rows(self) -> list[dict[str, Any]]:
        """Rows for ``raw.catalog_plan_charges``: each plan charge with its price flattened into
        the columns the ``rate_usage`` macro reads (price id ``catalog:<plan>:<meter>``)."""
        from meterworks.pricing import price_from_catalog, price_row

        rows = []
        for plan in self.plans:
            for charge in plan.charges:
                price_id = f"catalog:{plan.code}:{charge.meter}"
                price = (
                    price_row(price_from_catalog(charge.pricing, price_id=price_id))
                    if charge.pricing
                    else dict.fromkeys(PRICE_COLUMNS)
                )
                rows.append(
                    {
                        "plan_code": plan.code,
                        "meter_code": charge.meter,
                        "included": None if charge.included is None else str(charge.included),
                        **price,
                    }
                )
        return rows

    def price_tier_rows(self) -> list[dict[str, Any]]:
        """Rows for ``raw.catalog_price_tiers`` (the tiers of the catalog's tiered prices)."""
        from meterworks.pricing import price_from_catalog, tier_rows

        return tier_rows(
            price_from_catalog(charge.pricing, price_id=f"catalog:{plan.code}:{charge.meter}")
            for plan in self.plans
            for charge in plan.charges
            if charge.pricing
        )

    def customer_rows(self) -> list[dict[str, Any]]:
        """Rows for ``raw.catalog_customers``."""
        return [
            {"customer_id": c.id, "name": c.name, "timezone": c.timezone, "plan_code": c.plan}
            for c in self.customers
        ]


def _unique(section: str, keys: Iterable[str]) -> None:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            raise ValueError(f"{section}: {key!r} is defined twice")
        seen.add(key)


def _describe(data: Any, loc: tuple[Any, ...]) -> str:
    """``meters[1] (tokens).property`` from a pydantic location."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            if isinstance(node, list) and item < len(node):
                node = node[item]
                name = node.get("code") or node.get("id") if isinstance(node, dict) else None
                if name:
                    label += f" ({name})"
            parts.append(label)
        else:
            parts.append(("." if parts else "") + str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts) or "(top level)"


def parse_catalog(data: Any, source: str = "<catalog>") -> Catalog:
    if not isinstance(data, dict):
        raise CatalogError(f"{source}: the catalog must be a YAML mapping")
    try:
        return Catalog.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = _describe(data, tuple(error["loc"]))
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{source}: {where}: {message}")
        raise CatalogError("\n".join(problems)) from None


#: libyaml's safe loader when PyYAML was built with it (~6x faster on a 2,000-customer
#: catalog, which every build and sensor tick loads), else the pure-Python one.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_catalog(path: str | Path) -> Catalog:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CatalogError(f"{path}: catalog file not found") from None
    try:
        data = yaml.load(text, Loader=_SafeLoader)
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML: {exc}") from None
    return parse_catalog(data, source=str(path))
