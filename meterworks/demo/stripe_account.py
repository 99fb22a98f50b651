"""The demo business's Stripe account, consistent with the simulated usage, and the exact
reconciliation outcome it must give.

Written into ``out_dir/stripe/`` as Stripe list exports, one object per line, in the shapes of
API ``2026-10-28.endive`` (a line's price at ``pricing.price_details.price``, its subscription
at ``parent.subscription_item_details``, the invoice's at ``parent.subscription_details``,
``current_period_start/end`` on subscription items)::

    customers.jsonl          ~90 % of the demo customers (id = the demo customer id); the rest
                             are catalog-only
    billing_meters.jsonl     a meter per Meterworks meter Stripe can aggregate (sum/count/last),
                             event_name = the meter code
    products.jsonl           a product per plan (base fee) and per meter (usage)
    prices.jsonl             per plan a licensed base fee (monthly; scale also annual, enterprise
                             annual only) and a metered price per priced catalog charge, mirroring
                             the catalog exactly (lookup_key ``<plan>_<meter>``); ``tiers``
                             included as with ``expand[]=data.tiers``; one customer's custom price
    subscriptions.jsonl      one per Stripe customer (items embedded, prices without ``tiers``)
    invoices.jsonl           every invoice of the export window, all lines embedded
    credit_notes.jsonl       credit notes, lines embedded
    expected_reconciliation.csv   the rows reconciliation must flag (everything else: matched)

Definitions the oracle rests on:

* **Billing periods** are exact instants. A subscription's metered periods run from its
  ``start_date`` to the first boundary after it, then boundary to boundary, where the boundaries
  are the ``billing_cycle_anchor`` plus whole months *in the customer's time zone* (same local
  day-of-month, clamped to the month's last day, and the same local wall-clock time): for
  calendar billing the local midnights of the 1st, for anniversary billing the signup instant's
  local day and time. A canceled subscription's last period ends at ``canceled_at``. A trial is
  one period ``[trial_start, trial_end)`` that bills no usage. (Stripe itself recurs the anchor
  in UTC; the demo follows the design's rule, so across a DST change the UTC instants move and
  the local ones do not. Subscription metadata carries ``meterworks_timezone`` and
  ``meterworks_billing_cycle``.)
* **Invoices** exist for every metered period ``[start, end)`` with ``demo start < end <= demo
  end`` (the export window), created at ``end`` and finalized an hour later; the invoice holds one
  metered line per metered subscription item with ``period = {start, end}`` and, except on a
  cancellation's final invoice, the licensed base fee for the *next* period (billed in advance).
  A subscription created inside the window also has its ``subscription_create`` invoice
  (prorated first base fee, or the $0 trial line); a free plan's cancellation bills nothing.
  Line ``quantity_decimal`` is exact; ``quantity`` is null when not whole (storage GB). Status:
  paid, open (enterprise ``send_invoice`` not yet paid at the demo end, the past-due ones) or
  void. The account is as of the demo end (``usage_until_utc``).
* **Measured quantity** of (customer, period, meter): the meter's aggregation over the
  simulation's *effective* events (after dedup and corrections: the same truth as
  ``expected_meter_totals.csv``) of that customer with ``start <= timestamp < end``: count, sum,
  max, distinct count (``unique_count``) or the value of the last event (``latest``); the
  ``tokens`` meter over all models. There is no usage before the demo start.
* **Reconciliation scope**: every (customer, metered period in the window, meter with a metered
  price on the customer's subscription) that has an invoice line or measured usage. Invoiced
  quantity and amount are taken from non-void invoices, net of credit-note lines (quantity and
  amount) pointing at the line. Expected amount = the *catalog* pricing of the customer's plan
  rated on the measured quantity. Status, first match wins: no line -> ``missing_invoice``;
  measured 0 and invoiced > 0 -> ``invoice_without_usage``; invoiced < measured ->
  ``unbilled_usage``; invoiced > measured -> ``quantity_mismatch``; amounts differ ->
  ``amount_mismatch``; else ``matched`` (exact, no tolerance).
"""

from __future__ import annotations

import calendar
import csv
import io
import itertools
import json
import shutil
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from meterworks.catalog import Catalog, Pricing
from meterworks.demo.catalog_yaml import PLANS
from meterworks.demo.deliver import Delivery, Outcome
from meterworks.demo.simulate import (
    API,
    COMPLETION,
    DAY,
    EVENT_TYPES,
    MODELS,
    SEATS,
    SESSION,
    STORAGE,
    TIMEZONES,
    Truth,
)

API_VERSION = "2026-10-28.endive"
STRIPE_DIR = "stripe"
RECONCILIATION_FILE = "expected_reconciliation.csv"
FILES = (
    "customers.jsonl",
    "billing_meters.jsonl",
    "products.jsonl",
    "prices.jsonl",
    "subscriptions.jsonl",
    "invoices.jsonl",
    "credit_notes.jsonl",
)
RECONCILIATION_COLUMNS = (
    "customer_id",
    "subscription_id",
    "period_start_utc",
    "period_end_utc",
    "meter_code",
    "status",
    "measured_quantity",
    "invoiced_quantity",
    "expected_amount",
    "invoiced_amount",
    "currency",
    "invoice_id",
    "price_id",
)
DEFECT_KINDS = (
    "missing_invoice",
    "unbilled_usage",
    "amount_mismatch",
    "voided_and_reissued",
    "credit_note",
    "quantity_mismatch",
    "invoice_without_usage",
)
STATUSES = (
    "matched",
    "quantity_mismatch",
    "amount_mismatch",
    "unbilled_usage",
    "invoice_without_usage",
    "missing_invoice",
)

CURRENCY = "usd"
ACCOUNT_NAME = "Meterworks Demo Inc."
CATALOG_ONLY_SHARE = 0.10
ANNIVERSARY_SHARE = 0.10
SCALE_ANNUAL_SHARE = 0.40
TRIALING = 2
PAST_DUE = 2
TRIAL_DAYS = (14, 30, 60, 90)
FINALIZE_AFTER = 3600  # a subscription invoice is finalized about an hour after its creation

# plan -> (monthly base fee, annual base fee) in cents; None = no such price
BASE_FEES: dict[str, tuple[int | None, int | None]] = {
    "free": (0, None),
    "starter": (2900, None),
    "growth": (9900, None),
    "scale": (49900, 499000),
    "enterprise": (None, 2400000),
}

# meter code -> (event type, value column, decimal scale, model filter, display name)
METER_SPECS: dict[str, tuple[int, str | None, int, int | None, str]] = {
    "api_calls": (API, None, 0, None, "API calls"),
    "tokens": (COMPLETION, "b", 0, None, "Tokens"),
    "premium_tokens": (COMPLETION, "b", 0, MODELS.index("orion-large"), "Premium tokens"),
    "storage_gb": (STORAGE, "b", 2, None, "Storage (GB)"),
    "active_users": (SESSION, "a", 0, None, "Active users"),
    "seats": (SEATS, "b", 0, None, "Seats"),
}
STRIPE_FORMULA = {"count": "count", "sum": "sum", "latest": "last"}  # max, unique_count: none


# -- small helpers -------------------------------------------------------------------------------


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dec(value: Decimal) -> str:
    """A Stripe decimal string: exact, no exponent, no trailing zeros."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def _quantity(units: int, scale: int) -> Decimal:
    return Decimal(units).scaleb(-scale) if scale else Decimal(units)


def _int_or_none(value: Decimal) -> int | None:
    return int(value) if value == value.to_integral_value() else None


def _add_months(anchor: datetime, months: int) -> int:
    """``anchor`` (aware, local) plus whole months, same local day (clamped) and time."""
    y, m = divmod(anchor.month - 1 + months, 12)
    year, month = anchor.year + y, m + 1
    day = min(anchor.day, calendar.monthrange(year, month)[1])
    return int(anchor.replace(year=year, month=month, day=day).timestamp())


def _boundaries(start: int, anchor: datetime, step: int, until: int) -> list[int]:
    """``[start, b0, b1, ...]``: the anchor recurrences after ``start``, up to the first one
    after ``until``."""
    out = [start]
    k = 0
    while True:
        b = _add_months(anchor, k * step)
        if b > start:
            out.append(b)
            if b > until:
                return out
        k += 1


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _pricing_engine():
    from meterworks import pricing

    return pricing


# -- the model of the account ------------------------------------------------------------------


@dataclass
class Item:
    id: str
    price_id: str
    meter: str | None  # None: the licensed base fee
    interval: str  # month | year


@dataclass
class Sub:
    cust: int
    id: str
    customer_id: str
    plan: str
    tz: str
    cycle: str  # calendar | anniversary | trial
    start: int
    anchor: int
    months: list[int]  # metered (and monthly base) boundaries, uncut
    years: list[int]  # annual base boundaries, uncut ([] without an annual base fee)
    canceled_at: int | None
    trial_end: int | None
    collection: str
    items: list[Item] = field(default_factory=list)
    status: str = "active"

    @property
    def metered(self) -> list[Item]:
        return [i for i in self.items if i.meter]

    def cut(self) -> list[int]:
        """Metered boundaries, the last period ending at the cancellation."""
        if self.canceled_at is None:
            return self.months
        return [b for b in self.months if b < self.canceled_at] + [self.canceled_at]


@dataclass(eq=False)
class Period:
    sub: Sub
    start: int
    end: int
    final: bool  # the cancellation's final invoice
    k: int = -1  # index in Account.periods


@dataclass
class Defect:
    kind: str
    period: Period
    meter: str | None = None
    invoiced: Decimal | None = None  # the quantity put on the invoice line (if changed)
    note: str = ""
    ids: dict[str, str] = field(default_factory=dict)


class Account:
    """Builds every object; ``files`` and ``rows`` hold the result."""

    def __init__(
        self,
        truth: Truth,
        delivery: Delivery,
        outcome: Outcome,
        plan: np.ndarray,
        catalog: Catalog,
        seed: int,
    ) -> None:
        self.truth, self.d, self.outcome, self.catalog = truth, delivery, outcome, catalog
        self.plan = [PLANS[int(p)] for p in plan]
        self.rng = np.random.default_rng(np.random.SeedSequence([seed, 0x73747269]))
        self.pricing = _pricing_engine()
        self.t0, self.t1 = truth.t0, truth.t1
        self.catalog_time = truth.t0 - 600 * DAY
        self._check_meters()
        self.charges = {
            p.code: {c.meter: c.pricing for c in p.charges if c.pricing} for p in catalog.plans
        }
        self._rated: dict[tuple[str, str], int] = {}
        self._catalog_rated: dict[tuple[str, str, str], int] = {}

    def _check_meters(self) -> None:
        meters = {m.code: m for m in self.catalog.meters}
        assert set(meters) == set(METER_SPECS), sorted(meters)
        for code, (etype, _, _, model, _) in METER_SPECS.items():
            assert meters[code].event == EVENT_TYPES[etype], code
            if model is not None:
                assert meters[code].filters == {"model": [MODELS[model]]}, code
        self.aggregation = {code: meters[code].aggregation for code in METER_SPECS}

    # -- rating ---------------------------------------------------------------------------------
    def rate(self, price: dict[str, Any], quantity: Decimal) -> int:
        key = (price["id"], _dec(quantity))
        if key not in self._rated:
            engine = self.pricing
            self._rated[key] = int(engine.rate(engine.price_from_stripe(price), quantity).amount)
        return self._rated[key]

    def rate_catalog(self, plan: str, meter: str, quantity: Decimal) -> int:
        key = (plan, meter, _dec(quantity))
        if key not in self._catalog_rated:
            engine = self.pricing
            price = engine.price_from_catalog(self.charges[plan][meter])
            self._catalog_rated[key] = int(engine.rate(price, quantity).amount)
        return self._catalog_rated[key]

    # -- build ------------------------------------------------------------------------------------
    def build(self) -> None:
        self._subscriptions()
        self._periods()
        self._measure()
        self.prices = self._catalog_prices()
        self._choose_defects()
        self._invoices()
        self.rows, self.scope = self._reconcile()
        self._check_oracle()
        self._finish()

    def _subscriptions(self) -> None:
        truth, rng = self.truth, self.rng
        cust = truth.customers
        n = cust.n
        ev = truth.events
        first = np.full(n, self.t1, dtype=np.int64)
        last = np.full(n, self.t0, dtype=np.int64)
        np.minimum.at(first, ev["cust"], ev["ts"])
        np.maximum.at(last, ev["cust"], ev["ts"])
        draw = rng.random((n, 8))
        on_stripe = draw[:, 0] >= CATALOG_ONLY_SHARE
        on_stripe[int(np.argmin(draw[:, 0]))] = False  # at least one catalog-only customer
        self.on_stripe = on_stripe
        days = (truth.end - truth.start).days + 1
        churned = cust.stop_day < days
        signup = cust.start_day > 0

        # trials: the newest paid signups whose trial still runs at the demo end
        trial_end: dict[int, int] = {}
        newest = sorted(
            (
                i
                for i in range(n)
                if on_stripe[i] and signup[i] and not churned[i] and self.plan[i] != "free"
            ),
            key=lambda i: (-int(first[i]), i),
        )
        for i in newest:
            if len(trial_end) == TRIALING:
                break
            start = int(first[i]) - 600 - int(draw[i, 1] * 3 * 3600)
            for trial_days in TRIAL_DAYS:
                if start + trial_days * DAY > self.t1:
                    trial_end[i] = start + trial_days * DAY
                    break

        self.subs: list[Sub] = []
        for i in range(n):
            if not on_stripe[i]:
                continue
            tz_name = TIMEZONES[int(cust.tz[i])]
            tz = ZoneInfo(tz_name)
            if signup[i]:  # signed up inside the window, shortly before its first event
                start = int(first[i]) - 600 - int(draw[i, 1] * 3 * 3600)
            else:  # a customer since before the window (and its usage history)
                start = self.t0 - (20 + int(draw[i, 1] * 520)) * DAY - int(draw[i, 2] * DAY)
            plan = self.plan[i]
            local = datetime.fromtimestamp(start, tz)
            if i in trial_end:
                cycle = "trial"
                anchor_dt = datetime.fromtimestamp(trial_end[i], tz)
            elif draw[i, 3] < ANNIVERSARY_SHARE:
                cycle = "anniversary"
                anchor_dt = local
            else:
                cycle = "calendar"
                first_of_month = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
                if int(first_of_month.timestamp()) == start:
                    anchor_dt = first_of_month
                else:
                    anchor_dt = datetime.fromtimestamp(_add_months(first_of_month, 1), tz)
            anchor = int(anchor_dt.timestamp())
            months = _boundaries(start, anchor_dt, 1, self.t1)
            monthly_fee, annual_fee = BASE_FEES[plan]
            annual = annual_fee is not None and (
                monthly_fee is None or draw[i, 4] < SCALE_ANNUAL_SHARE
            )
            years = _boundaries(start, anchor_dt, 12, self.t1) if annual else []
            canceled = None
            if churned[i] and i not in trial_end:
                stop_local = datetime.combine(
                    truth.start + timedelta(days=int(cust.stop_day[i])), datetime.min.time()
                ).replace(tzinfo=tz)
                canceled = max(int(stop_local.timestamp()), int(last[i]) + 600)
                canceled += 3600 + int(draw[i, 5] * 16 * 3600)
            sub = Sub(
                cust=i,
                id=f"sub_demo_{i + 1:04d}",
                customer_id=cust.ids[i],
                plan=plan,
                tz=tz_name,
                cycle=cycle,
                start=start,
                anchor=anchor,
                months=months,
                years=years,
                canceled_at=canceled,
                trial_end=trial_end.get(i),
                collection="send_invoice" if plan == "enterprise" else "charge_automatically",
            )
            n_base = "year" if annual else "month"
            sub.items.append(
                Item(f"si_demo_{i + 1:04d}_base", _base_price_id(plan, n_base), None, n_base)
            )
            for meter in self.charges[plan]:
                sub.items.append(
                    Item(f"si_demo_{i + 1:04d}_{meter}", _price_id(plan, meter), meter, "month")
                )
            if canceled is not None:
                sub.status = "canceled"
            elif cycle == "trial":
                sub.status = "trialing"
            self.subs.append(sub)
        self.sub_of = {s.cust: s for s in self.subs}

    def _periods(self) -> None:
        """The metered periods that must have been invoiced (they end inside the window)."""
        self.periods: list[Period] = []
        for sub in self.subs:
            if sub.cycle == "trial":
                continue
            cut = sub.cut()
            for start, end in itertools.pairwise(cut):
                if self.t0 < end <= self.t1:
                    k = len(self.periods)
                    self.periods.append(Period(sub, start, end, end == sub.canceled_at, k))

    def _measure(self) -> None:
        """Measured units per (period index, meter) from the effective events."""
        v = {k: col[self.outcome.effective] for k, col in self.d.versions.items()}
        order = np.argsort(v["ts"], kind="stable")
        v = {k: col[order] for k, col in v.items()}
        shift = np.int64(1 << 36)
        p_cust = np.array([p.sub.cust for p in self.periods], dtype=np.int64)
        p_start = np.array([p.start for p in self.periods], dtype=np.int64)
        p_end = np.array([p.end for p in self.periods], dtype=np.int64)
        keys = p_cust * shift + p_start
        order_p = np.argsort(keys, kind="stable")
        assert np.all(np.diff(keys[order_p]) > 0)
        ev_key = v["cust"] * shift + v["ts"]
        if len(self.periods):
            pos = np.searchsorted(keys[order_p], ev_key, side="right") - 1
            pid = order_p[np.clip(pos, 0, None)]
            ok = (pos >= 0) & (p_cust[pid] == v["cust"]) & (v["ts"] < p_end[pid])
        else:
            pid = np.full(len(ev_key), -1, dtype=np.int64)
            ok = np.zeros(len(ev_key), dtype=bool)
        self.measured: dict[tuple[int, str], int] = {}
        self.event_count: dict[tuple[int, str], int] = {}
        self._ev = v
        self._ev_pid = np.where(ok, pid, -1)
        for code, (etype, _, _, model, _) in METER_SPECS.items():
            mask = ok & (v["etype"] == etype)
            if model is not None:
                mask &= v["a"] == model
            frame = pd.DataFrame({"pid": pid[mask], "a": v["a"][mask], "b": v["b"][mask]})
            g = frame.groupby("pid", sort=True)
            aggregation = self.aggregation[code]
            if aggregation == "count":
                q = g.size()
            elif aggregation == "sum":
                q = g["b"].sum()
            elif aggregation == "max":
                q = g["b"].max()
            elif aggregation == "unique_count":
                q = g["a"].nunique()
            else:  # latest: events are in timestamp order
                q = g["b"].last()
            counts = g.size()
            for p, value in zip(q.index.tolist(), q.to_numpy().tolist(), strict=True):
                self.measured[(int(p), code)] = int(value)
            for p, value in zip(counts.index.tolist(), counts.to_numpy().tolist(), strict=True):
                self.event_count[(int(p), code)] = int(value)

    def measured_quantity(self, p: int, meter: str) -> Decimal:
        return _quantity(self.measured.get((p, meter), 0), METER_SPECS[meter][2])

    def _meter_events(self, p: int, meter: str) -> np.ndarray:
        """Indices (into the timestamp-ordered effective events) of a period's meter events."""
        etype, _, _, model, _ = METER_SPECS[meter]
        mask = (self._ev_pid == p) & (self._ev["etype"] == etype)
        if model is not None:
            mask &= self._ev["a"] == model
        return np.flatnonzero(mask)

    # -- prices -------------------------------------------------------------------------------
    def _catalog_prices(self) -> dict[str, dict[str, Any]]:
        prices: dict[str, dict[str, Any]] = {}
        for plan in PLANS:
            monthly, annual = BASE_FEES[plan]
            for interval, fee in (("month", monthly), ("year", annual)):
                if fee is None:
                    continue
                pid = _base_price_id(plan, interval)
                prices[pid] = _price(
                    pid,
                    self.catalog_time,
                    f"prod_demo_plan_{plan}",
                    interval=interval,
                    usage_type="licensed",
                    meter=None,
                    lookup_key=f"{plan}_base_{'monthly' if interval == 'month' else 'annual'}",
                    nickname=f"{_plan_name(plan)} base fee ({interval}ly)",
                    metadata={"meterworks_plan": plan, "meterworks_component": "base_fee"},
                    unit_amount_decimal=str(fee),
                )
            for meter, pricing in self.charges[plan].items():
                pid = _price_id(plan, meter)
                prices[pid] = self._metered_price(pid, plan, meter, pricing)
        return prices

    def _metered_price(
        self, pid: str, plan: str, meter: str, pricing: Pricing, **extra: Any
    ) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if pricing.billing_scheme == "tiered":
            fields["tiers"] = [
                {
                    "flat_amount": _int_or_none(Decimal(t.flat_amount_decimal))
                    if t.flat_amount_decimal is not None
                    else None,
                    "flat_amount_decimal": t.flat_amount_decimal,
                    "unit_amount": _int_or_none(Decimal(t.unit_amount_decimal))
                    if t.unit_amount_decimal is not None
                    else None,
                    "unit_amount_decimal": t.unit_amount_decimal,
                    "up_to": None if t.up_to == "inf" else int(t.up_to),
                }
                for t in pricing.tiers
            ]
        return _price(
            pid,
            extra.pop("created", self.catalog_time),
            f"prod_demo_meter_{meter}",
            interval="month",
            usage_type="metered",
            meter=f"mtr_demo_{meter}" if self.aggregation[meter] in STRIPE_FORMULA else None,
            lookup_key=extra.pop("lookup_key", f"{plan}_{meter}"),
            nickname=extra.pop("nickname", f"{_plan_name(plan)} {METER_SPECS[meter][4]}"),
            metadata={
                "meterworks_plan": plan,
                "meterworks_meter": meter,
                **extra.pop("metadata", {}),
            },
            billing_scheme=pricing.billing_scheme,
            tiers_mode=pricing.tiers_mode,
            transform_quantity=dict(pricing.transform_quantity)
            if pricing.transform_quantity
            else None,
            unit_amount_decimal=pricing.unit_amount_decimal,
            currency=pricing.currency,
            **fields,
        )

    # -- defects --------------------------------------------------------------------------------
    def _choose_defects(self) -> None:
        rng = np.random.default_rng(np.random.SeedSequence([self.rng.integers(1 << 32), 0x64]))
        self.defects: list[Defect] = []
        self.skipped: list[str] = []
        self.custom_price: dict[int, tuple[str, str]] = {}  # cust -> (meter, price id)
        used: set[int] = set()
        paid = [p for p in self.periods if not p.final and p.sub.metered]
        # full periods inside the window first (a cleaner story), in a seeded random order
        order = rng.permutation(len(paid))
        pool = sorted(
            (paid[k] for k in order.tolist()),
            key=lambda p: p.start < self.t0 or p.end > self.t1 - 4 * DAY,
        )
        strict = True  # first pass: only defects that also change the money

        def costs(p: Period, meter: str, billed: Decimal) -> bool:
            price = self.prices[_price_id(p.sub.plan, meter)]
            return not strict or self.rate(price, billed) != self.rate(
                price, self.measured_quantity(p.k, meter)
            )

        def take(kind: str, test) -> Defect | None:
            nonlocal strict
            for mode in (True, False):
                strict = mode
                for p in pool:
                    if p.sub.cust in used:
                        continue
                    found = test(p.k, p)
                    if found is not None:
                        used.add(p.sub.cust)
                        found.period = p
                        self.defects.append(found)
                        return found
            self.skipped.append(kind)
            return None

        typical: dict[str, list[int]] = defaultdict(list)
        for (_, meter), units in sorted(self.measured.items()):
            if units > 0:
                typical[meter].append(units)

        def summable(p: int, meter: str, at_least: int) -> bool:
            return self.aggregation[meter] in ("count", "sum") and (
                self.event_count.get((p, meter), 0) >= at_least
            )

        self._choose_amount_mismatch(rng, used)

        def missing(k: int, p: Period) -> Defect | None:
            if any(self.measured.get((k, i.meter), 0) > 0 for i in p.sub.metered):
                return Defect("missing_invoice", p)
            return None

        def unbilled(k: int, p: Period) -> Defect | None:
            for item in p.sub.metered:
                if summable(k, item.meter, 20):
                    events = self._meter_events(k, item.meter)
                    late = events[-max(1, round(len(events) * 0.05)) :]
                    if self.aggregation[item.meter] == "count":
                        missing_units = len(late)
                    else:
                        missing_units = int(self._ev["b"][late].sum())
                    billed = self.measured[(k, item.meter)] - missing_units
                    if not costs(p, item.meter, _quantity(billed, 0)):
                        continue
                    return Defect(
                        "unbilled_usage",
                        p,
                        item.meter,
                        _quantity(billed, 0),
                        note=f"the last {len(late)} events of the period reached Stripe after "
                        "the invoice was finalized",
                    )
            return None

        def over(kind: str, needs_money: bool):
            def test(k: int, p: Period) -> Defect | None:
                for item in p.sub.metered:
                    if not summable(k, item.meter, 10):
                        continue
                    q = self.measured[(k, item.meter)]
                    billed = q + max(1, round(q * 0.08))
                    price = self.prices[item.price_id]
                    if needs_money and self.rate(price, Decimal(billed)) <= self.rate(
                        price, Decimal(q)
                    ):
                        continue
                    if not costs(p, item.meter, Decimal(billed)):
                        continue
                    return Defect(kind, p, item.meter, Decimal(billed))
                return None

            return test

        def no_usage(k: int, p: Period) -> Defect | None:
            for item in p.sub.metered:
                if self.measured.get((k, item.meter), 0) == 0:
                    scale = METER_SPECS[item.meter][2]
                    seen = typical.get(item.meter) or [1000 * 10**scale]
                    units = int(np.median(seen))
                    if not costs(p, item.meter, _quantity(units, scale)):
                        continue
                    return Defect(
                        "invoice_without_usage",
                        p,
                        item.meter,
                        _quantity(units, scale),
                        note="meter events reported under the wrong customer",
                    )
            return None

        def void(k: int, p: Period) -> Defect | None:
            if p.end > self.t1 - 3 * DAY or p.sub.collection != "charge_automatically":
                return None
            for item in p.sub.metered:
                q = self.measured.get((k, item.meter), 0)
                if q > 0 and self.aggregation[item.meter] in ("count", "sum"):
                    return Defect(
                        "voided_and_reissued",
                        p,
                        item.meter,
                        _quantity(2 * q, 0),
                        note="the voided original billed the meter twice; its revision is right",
                    )
            return None

        def credit(k: int, p: Period) -> Defect | None:
            if p.end > self.t1 - 3 * DAY:
                return None
            found = over("credit_note", True)(k, p)
            if found is not None:
                found.note = "over-billed, then corrected by a credit note for the excess"
            return found

        take("invoice_without_usage", no_usage)  # the rarest candidates first
        take("missing_invoice", missing)
        take("unbilled_usage", unbilled)
        take("voided_and_reissued", void)
        take("credit_note", credit)
        take("quantity_mismatch", over("quantity_mismatch", False))
        self.defect_at = {(id(x.period), x.meter): x for x in self.defects}
        self.missing = {id(x.period) for x in self.defects if x.kind == "missing_invoice"}

        # a couple of customers whose last payment failed (never a defect's customer)
        candidates = sorted(
            {
                p.sub.cust
                for p in self.periods
                if p.sub.status == "active"
                and p.sub.collection == "charge_automatically"
                and p.sub.plan != "free"
                and p.sub.cust not in used
                and p.sub.cust not in self.custom_price
            }
        )
        chosen = rng.permutation(len(candidates))[:PAST_DUE].tolist()
        for k in sorted(chosen):
            self.sub_of[candidates[k]].status = "past_due"

    def _choose_amount_mismatch(self, rng: np.random.Generator, used: set[int]) -> None:
        """One customer gets a custom Stripe price that drifted from the catalog (one tier's
        unit amount changed); its invoices are rated with it."""
        preference = {"scale": 0, "enterprise": 1, "growth": 2, "starter": 3}
        periods_of: dict[int, list[int]] = defaultdict(list)
        for k, p in enumerate(self.periods):
            periods_of[p.sub.cust].append(k)
        subs = [
            s
            for s in self.subs
            if s.plan in preference and s.status == "active" and periods_of[s.cust]
        ]
        order = rng.permutation(len(subs)).tolist()
        subs = sorted((subs[k] for k in order), key=lambda s: preference[s.plan])
        for sub in subs:
            for meter in ("api_calls", *[m for m in self.charges[sub.plan] if m != "api_calls"]):
                if meter not in self.charges[sub.plan]:
                    continue
                pricing = self.charges[sub.plan][meter]
                quantities = [self.measured_quantity(k, meter) for k in periods_of[sub.cust]]
                drifted = _drift(pricing, max(quantities))
                pid = f"price_demo_{sub.customer_id}_{meter}"
                price = self._metered_price(
                    pid,
                    sub.plan,
                    meter,
                    drifted,
                    created=sub.start - 3600,
                    lookup_key=None,
                    nickname=f"{_plan_name(sub.plan)} {METER_SPECS[meter][4]} "
                    f"(custom, {sub.customer_id})",
                    metadata={"meterworks_custom_for": sub.customer_id},
                )
                differs = [
                    q
                    for q in quantities
                    if self.rate(price, q) != self.rate_catalog(sub.plan, meter, q)
                ]
                if not differs:
                    continue
                self.prices[pid] = price
                for item in sub.items:
                    if item.meter == meter:
                        item.price_id = pid
                self.custom_price[sub.cust] = (meter, pid)
                used.add(sub.cust)
                self.amount_mismatch = Defect(
                    "amount_mismatch",
                    Period(sub, sub.start, sub.start, False),
                    meter,
                    note="the customer's Stripe price differs from the catalog pricing",
                    ids={"price": pid, "catalog_price": _price_id(sub.plan, meter)},
                )
                return
        self.skipped.append("amount_mismatch")
        self.amount_mismatch = None

    # -- invoices ---------------------------------------------------------------------------------
    def _invoices(self) -> None:
        rng = np.random.default_rng(np.random.SeedSequence([self.rng.integers(1 << 32), 0x69]))
        specs: list[tuple[int, int, int, str, Period | None]] = []  # created, cust, order, kind
        for sub in self.subs:
            if self.t0 <= sub.start <= self.t1:
                specs.append((sub.start, sub.cust, 0, "subscription_create", None))
        for p in self.periods:
            if id(p) in self.missing:
                continue
            kind = "subscription_update" if p.final else "subscription_cycle"
            specs.append((p.end, p.sub.cust, 1, kind, p))
        specs.sort(key=lambda s: (s[0], s[1], s[2]))
        self.invoices: list[dict[str, Any]] = []
        self.credit_notes: list[dict[str, Any]] = []
        self.sequence: Counter[int] = Counter()
        jitter = rng.integers(0, 600, size=len(specs) + 1)
        late_pay = rng.uniform(2, 25, size=len(specs) + 1)
        for n, (created, cust, _, reason, p) in enumerate(specs):
            sub = self.sub_of[cust]
            lines = self._lines(sub, created, p)
            if not lines:  # a free plan's cancellation bills nothing: no invoice
                continue
            finalized = created + FINALIZE_AFTER + int(jitter[n])
            defect = None
            if p is not None:
                defect = next(
                    (x for x in self.defects if x.period is p and x.kind != "missing_invoice"),
                    None,
                )
            if defect is not None and defect.kind == "voided_and_reissued":
                wrong = self._lines(sub, created, p, override=defect)
                original = self._invoice(sub, created, reason, wrong, finalized, "void", p)
                voided = finalized + DAY
                revision = self._invoice(
                    sub, voided, reason, lines, voided + 300, "paid", p, voided + 302, original
                )
                defect.ids = {"voided_invoice": original["id"], "invoice": revision["id"]}
                continue
            if defect is not None and defect.kind in (
                "unbilled_usage",
                "quantity_mismatch",
                "invoice_without_usage",
                "credit_note",
            ):
                lines = self._lines(sub, created, p, override=defect)
            status = "paid"
            paid_at = finalized + 2
            if sub.collection == "send_invoice":
                paid_at = finalized + int(late_pay[n] * DAY)
                status = "paid" if paid_at <= self.t1 else "open"
            invoice = self._invoice(sub, created, reason, lines, finalized, status, p, paid_at)
            if defect is not None:
                defect.ids = {"invoice": invoice["id"]}
                line = next(
                    ln
                    for ln in invoice["lines"]["data"]
                    if ln["parent"]["subscription_item_details"]["subscription_item"]
                    == f"si_demo_{sub.cust + 1:04d}_{defect.meter}"
                )
                defect.ids["invoice_line"] = line["id"]
                if defect.kind == "credit_note":
                    cn = self._credit_note(sub, invoice, line, p, defect)
                    defect.ids["credit_note"] = cn["id"]
        # past due: the latest invoice of the chosen subscriptions failed to collect
        for sub in self.subs:
            if sub.status != "past_due":
                continue
            mine = [i for i in self.invoices if i["customer"] == sub.customer_id]
            inv = mine[-1]
            inv.update(
                status="open",
                amount_paid=0,
                amount_remaining=inv["amount_due"],
                attempt_count=2,
                attempted=True,
                next_payment_attempt=inv["status_transitions"]["finalized_at"] + 5 * DAY,
            )
            inv["status_transitions"]["paid_at"] = None
        self.invoices.sort(key=lambda i: (i["created"], i["id"]))

    def _lines(
        self,
        sub: Sub,
        created: int,
        p: Period | None,
        override: Defect | None = None,
    ) -> list[dict[str, Any]]:
        """(item, period start, end, quantity, amount, proration) of an invoice's lines."""
        out: list[dict[str, Any]] = []
        if p is not None:
            for item in sub.metered:
                price = self.prices[item.price_id]
                q = self.measured_quantity(p.k, item.meter)
                if override is not None and override.meter == item.meter:
                    q = override.invoiced
                out.append(
                    {
                        "item": item,
                        "start": p.start,
                        "end": p.end,
                        "quantity": q,
                        "amount": self.rate(price, q),
                        "proration": False,
                    }
                )
            if p.final:
                return out
        base = sub.items[0]
        price = self.prices[base.price_id]
        bounds = sub.years if base.interval == "year" else sub.months
        if p is None:  # subscription_create: the first (maybe partial) period, in advance
            if sub.cycle == "trial":
                out.append(_licensed(base, sub.start, sub.trial_end, 0, False))
                return out
            end = bounds[1]
            full_start = _add_months(
                datetime.fromtimestamp(end, ZoneInfo(sub.tz)),
                -12 if base.interval == "year" else -1,
            )
            unit = int(price["unit_amount"])
            if sub.start < sub.anchor:  # calendar billing: prorated up to the anchor
                amount = int(
                    (Decimal(unit) * (end - sub.start) / (end - full_start)).quantize(
                        Decimal(1), ROUND_HALF_UP
                    )
                )
                out.append(_licensed(base, sub.start, end, amount, True))
            else:
                out.append(_licensed(base, sub.start, end, self.rate(price, Decimal(1)), False))
            return out
        if p.end in bounds:
            j = bounds.index(p.end)
            out.append(_licensed(base, p.end, bounds[j + 1], self.rate(price, Decimal(1)), False))
        return out

    def _invoice(
        self,
        sub: Sub,
        created: int,
        reason: str,
        lines: list[dict[str, Any]],
        finalized: int,
        status: str,
        p: Period | None,
        paid_at: int | None = None,
        revision_of: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        n = len(self.invoices) + 1
        inv_id = f"in_demo_{n:06d}"
        self.sequence[sub.cust] += 1
        number = f"MWD{sub.cust + 1:04d}-{self.sequence[sub.cust]:04d}"
        data = []
        for line in lines:
            item: Item = line["item"]
            price = self.prices[item.price_id]
            q: Decimal = line["quantity"]
            suffix = item.meter or "base"
            data.append(
                {
                    "amount": line["amount"],
                    "currency": CURRENCY,
                    "description": _description(sub, item, price, line),
                    "discount_amounts": [],
                    "discountable": True,
                    "discounts": [],
                    "id": f"il_demo_{n:06d}_{suffix}",
                    "invoice": inv_id,
                    "livemode": False,
                    "metadata": {},
                    "object": "line_item",
                    "parent": {
                        "invoice_item_details": None,
                        "subscription_item_details": {
                            "invoice_item": None,
                            "proration": line["proration"],
                            "proration_details": {"credited_items": None},
                            "subscription": sub.id,
                            "subscription_item": item.id,
                        },
                        "type": "subscription_item_details",
                    },
                    "period": {"end": line["end"], "start": line["start"]},
                    "pretax_credit_amounts": [],
                    "pricing": {
                        "price_details": {"price": price["id"], "product": price["product"]},
                        "type": "price_details",
                        "unit_amount_decimal": price["unit_amount_decimal"],
                    },
                    "quantity": _int_or_none(q),
                    "quantity_decimal": _dec(q),
                    "subtotal": line["amount"],
                    "taxes": [],
                }
            )
        total = sum(line["amount"] for line in lines)
        if total == 0 and status != "void":
            status, paid_at = "paid", finalized
        transitions = {
            "finalized_at": finalized,
            "marked_uncollectible_at": None,
            "paid_at": paid_at if status == "paid" else None,
            "voided_at": finalized + DAY if status == "void" else None,
        }
        period_start = p.start if p is not None else created
        period_end = p.end if p is not None else created
        invoice = {
            "account_country": "US",
            "account_name": ACCOUNT_NAME,
            "account_tax_ids": None,
            "amount_due": total,
            "amount_overpaid": 0,
            "amount_paid": total if status == "paid" else 0,
            "amount_remaining": total if status == "open" else 0,
            "amount_shipping": 0,
            "application": None,
            "attempt_count": 1 if total and sub.collection == "charge_automatically" else 0,
            "attempted": bool(total) and sub.collection == "charge_automatically",
            "auto_advance": status == "open",
            "automatic_tax": {
                "disabled_reason": None,
                "enabled": False,
                "liability": None,
                "provider": None,
                "status": None,
            },
            "automatically_finalizes_at": None,
            "billing_reason": reason,
            "collection_method": sub.collection,
            "created": created,
            "currency": CURRENCY,
            "custom_fields": None,
            "customer": sub.customer_id,
            "customer_account": None,
            "customer_address": None,
            "customer_email": _email(self.truth.customers.names[sub.cust]),
            "customer_name": self.truth.customers.names[sub.cust],
            "customer_phone": None,
            "customer_shipping": None,
            "customer_tax_exempt": "none",
            "customer_tax_ids": [],
            "default_payment_method": None,
            "default_source": None,
            "default_tax_rates": [],
            "description": None,
            "discounts": [],
            "due_date": finalized + 30 * DAY if sub.collection == "send_invoice" else None,
            "effective_at": finalized,
            "ending_balance": 0,
            "footer": None,
            "from_invoice": {"action": "revision", "invoice": revision_of["id"]}
            if revision_of
            else None,
            "hosted_invoice_url": None,
            "id": inv_id,
            "invoice_pdf": None,
            "issuer": {"type": "self"},
            "last_finalization_error": None,
            "latest_revision": None,
            "lines": {
                "data": data,
                "has_more": False,
                "object": "list",
                "total_count": len(data),
                "url": f"/v1/invoices/{inv_id}/lines",
            },
            "livemode": False,
            "metadata": {},
            "next_payment_attempt": None,
            "number": number,
            "object": "invoice",
            "on_behalf_of": None,
            "parent": {
                "quote_details": None,
                "subscription_details": {"metadata": {}, "subscription": sub.id},
                "type": "subscription_details",
            },
            "payment_settings": {
                "default_mandate": None,
                "payment_method_options": None,
                "payment_method_types": None,
            },
            "period_end": period_end,
            "period_start": period_start,
            "post_payment_credit_notes_amount": 0,
            "pre_payment_credit_notes_amount": 0,
            "receipt_number": None,
            "rendering": None,
            "shipping_cost": None,
            "shipping_details": None,
            "starting_balance": 0,
            "statement_descriptor": None,
            "status": status,
            "status_transitions": transitions,
            "subtotal": total,
            "subtotal_excluding_tax": total,
            "test_clock": None,
            "total": total,
            "total_discount_amounts": [],
            "total_excluding_tax": total,
            "total_pretax_credit_amounts": [],
            "total_taxes": [],
            "webhooks_delivered_at": created,
        }
        if revision_of is not None:
            revision_of["latest_revision"] = inv_id
        self.invoices.append(invoice)
        return invoice

    def _credit_note(
        self,
        sub: Sub,
        invoice: dict[str, Any],
        line: dict[str, Any],
        p: Period,
        defect: Defect,
    ) -> dict[str, Any]:
        price = self.prices[line["pricing"]["price_details"]["price"]]
        measured = self.measured_quantity(p.k, defect.meter)
        excess = defect.invoiced - measured
        amount = line["amount"] - self.rate(price, measured)
        n = len(self.credit_notes) + 1
        cn_id = f"cn_demo_{n:06d}"
        created = invoice["status_transitions"]["finalized_at"] + 2 * DAY
        cn = {
            "amount": amount,
            "amount_shipping": 0,
            "created": created,
            "currency": CURRENCY,
            "customer": sub.customer_id,
            "customer_account": None,
            "customer_balance_transaction": None,
            "discount_amount": 0,
            "discount_amounts": [],
            "effective_at": created,
            "id": cn_id,
            "invoice": invoice["id"],
            "lines": {
                "data": [
                    {
                        "amount": amount,
                        "description": f"Credit for {_dec(excess)} over-counted "
                        f"{METER_SPECS[defect.meter][4].lower()}",
                        "discount_amount": 0,
                        "discount_amounts": [],
                        "id": f"cnli_demo_{n:06d}_{defect.meter}",
                        "invoice_line_item": line["id"],
                        "livemode": False,
                        "metadata": {},
                        "object": "credit_note_line_item",
                        "pretax_credit_amounts": [],
                        "quantity": _int_or_none(excess),
                        "tax_rates": [],
                        "taxes": [],
                        "type": "invoice_line_item",
                        "unit_amount": None,
                        "unit_amount_decimal": None,
                    }
                ],
                "has_more": False,
                "object": "list",
                "total_count": 1,
                "url": f"/v1/credit_notes/{cn_id}/lines",
            },
            "livemode": False,
            "memo": "Usage events were double-counted; refunding the excess.",
            "metadata": {},
            "number": f"{invoice['number']}-CN-01",
            "object": "credit_note",
            "out_of_band_amount": None,
            "pdf": None,
            "post_payment_amount": amount,
            "pre_payment_amount": 0,
            "pretax_credit_amounts": [],
            "reason": "duplicate",
            "refunds": [
                {
                    "amount_refunded": amount,
                    "payment_record_refund": None,
                    "refund": f"re_demo_{n:06d}",
                    "type": "refund",
                }
            ],
            "shipping_cost": None,
            "status": "issued",
            "subtotal": amount,
            "subtotal_excluding_tax": amount,
            "total": amount,
            "total_excluding_tax": amount,
            "total_taxes": [],
            "type": "post_payment",
            "voided_at": None,
        }
        invoice["post_payment_credit_notes_amount"] = amount
        self.credit_notes.append(cn)
        return cn

    # -- the oracle ----------------------------------------------------------------------------
    def _reconcile(self) -> tuple[list[dict[str, Any]], Counter[str]]:
        """Every in-scope (customer, period, meter) reconciled from the objects built."""
        invoiced: dict[tuple[str, int, int], list] = {}
        line_of: dict[str, tuple[str, int, int]] = {}
        for inv in self.invoices:
            if inv["status"] == "void":
                continue
            for line in inv["lines"]["data"]:
                price = self.prices[line["pricing"]["price_details"]["price"]]
                if price["recurring"]["usage_type"] != "metered":
                    continue
                item = line["parent"]["subscription_item_details"]["subscription_item"]
                key = (item, line["period"]["start"], line["period"]["end"])
                assert key not in invoiced, key
                invoiced[key] = [Decimal(line["quantity_decimal"]), line["amount"], inv["id"]]
                line_of[line["id"]] = key
        for cn in self.credit_notes:
            for cl in cn["lines"]["data"]:
                entry = invoiced[line_of[cl["invoice_line_item"]]]
                entry[0] -= Decimal(cl["quantity"])
                entry[1] -= cl["amount"]
        rows: list[dict[str, Any]] = []
        scope: Counter[str] = Counter()
        seen: set[tuple[str, int, int]] = set()
        for k, p in enumerate(self.periods):
            for item in p.sub.metered:
                key = (item.id, p.start, p.end)
                seen.add(key)
                measured = self.measured_quantity(k, item.meter)
                expected = self.rate_catalog(p.sub.plan, item.meter, measured)
                got = invoiced.get(key)
                if got is None:
                    if measured == 0:
                        continue
                    status = "missing_invoice"
                else:
                    quantity, amount, _ = got
                    if measured == 0 and quantity > 0:
                        status = "invoice_without_usage"
                    elif quantity < measured:
                        status = "unbilled_usage"
                    elif quantity > measured:
                        status = "quantity_mismatch"
                    elif amount != expected:
                        status = "amount_mismatch"
                    else:
                        status = "matched"
                scope[status] += 1
                if status == "matched":
                    continue
                rows.append(
                    {
                        "customer_id": p.sub.customer_id,
                        "subscription_id": p.sub.id,
                        "period_start_utc": _iso(p.start),
                        "period_end_utc": _iso(p.end),
                        "meter_code": item.meter,
                        "status": status,
                        "measured_quantity": _dec(measured),
                        "invoiced_quantity": "" if got is None else _dec(got[0]),
                        "expected_amount": expected,
                        "invoiced_amount": "" if got is None else got[1],
                        "currency": CURRENCY,
                        "invoice_id": "" if got is None else got[2],
                        "price_id": item.price_id,
                        "_period": p,
                    }
                )
        assert set(invoiced) <= seen, sorted(set(invoiced) - seen)[:3]
        rows.sort(key=lambda r: (r["customer_id"], r["period_start_utc"], r["meter_code"]))
        return rows, scope

    def _check_oracle(self) -> None:
        """The flagged rows are exactly the planned defects (an internal consistency check)."""
        planned: Counter[tuple] = Counter()
        for x in self.defects:
            if x.kind == "missing_invoice":
                for item in x.period.sub.metered:
                    if self.measured.get((x.period.k, item.meter), 0) > 0:
                        planned[(id(x.period), item.meter, "missing_invoice")] += 1
            elif x.kind in ("unbilled_usage", "quantity_mismatch", "invoice_without_usage"):
                planned[(id(x.period), x.meter, x.kind)] += 1
        found: Counter[tuple] = Counter()
        custom_rows = []
        for r in self.rows:
            p = r["_period"]
            if r["status"] == "amount_mismatch" and p.sub.cust in self.custom_price:
                custom_rows.append(r)
                continue
            found[(id(p), r["meter_code"], r["status"])] += 1
        assert found == planned, (found, planned)
        if self.amount_mismatch is not None:
            assert custom_rows
            self.amount_mismatch_rows = len(custom_rows)
            self.defects.append(self.amount_mismatch)

    # -- the remaining objects --------------------------------------------------------------------
    def _finish(self) -> None:
        cust = self.truth.customers
        latest: dict[str, str] = {}
        for inv in self.invoices:
            latest[inv["parent"]["subscription_details"]["subscription"]] = inv["id"]
        self.customers = []
        for sub in self.subs:
            name = cust.names[sub.cust]
            self.customers.append(
                {
                    "address": None,
                    "balance": 0,
                    "created": sub.start - 60 - (sub.cust * 97) % 3600,
                    "currency": CURRENCY,
                    "default_source": None,
                    "delinquent": sub.status == "past_due",
                    "description": None,
                    "discount": None,
                    "email": _email(name),
                    "id": sub.customer_id,
                    "invoice_prefix": f"MWD{sub.cust + 1:04d}",
                    "invoice_settings": {
                        "custom_fields": None,
                        "default_payment_method": None,
                        "footer": None,
                        "rendering_options": None,
                    },
                    "livemode": False,
                    "metadata": {"meterworks_customer_id": sub.customer_id},
                    "name": name,
                    "next_invoice_sequence": self.sequence[sub.cust] + 1,
                    "object": "customer",
                    "phone": None,
                    "preferred_locales": [],
                    "shipping": None,
                    "tax_exempt": "none",
                    "test_clock": None,
                }
            )
        self.subscriptions = [self._subscription(s, latest.get(s.id)) for s in self.subs]
        self.meters = [
            {
                "created": self.catalog_time,
                "customer_mapping": {"event_payload_key": "stripe_customer_id", "type": "by_id"},
                "default_aggregation": {"formula": STRIPE_FORMULA[self.aggregation[code]]},
                "display_name": METER_SPECS[code][4],
                "event_name": code,
                "event_time_window": None,
                "id": f"mtr_demo_{code}",
                "livemode": False,
                "object": "billing.meter",
                "status": "active",
                "status_transitions": {"deactivated_at": None},
                "updated": self.catalog_time,
                "value_settings": {"event_payload_key": "value"},
            }
            for code in METER_SPECS
            if self.aggregation[code] in STRIPE_FORMULA
        ]
        self.products = [
            _product(
                f"prod_demo_plan_{plan}",
                self.catalog_time,
                f"Meterworks Demo {_plan_name(plan)}",
                _base_price_id(plan, "month" if BASE_FEES[plan][0] is not None else "year"),
                {"meterworks_plan": plan},
            )
            for plan in PLANS
        ] + [
            _product(
                f"prod_demo_meter_{code}",
                self.catalog_time,
                METER_SPECS[code][4],
                None,
                {"meterworks_meter": code},
                unit_label=self.catalog_unit(code),
            )
            for code in METER_SPECS
        ]

    def catalog_unit(self, code: str) -> str | None:
        return next(m.unit for m in self.catalog.meters if m.code == code)

    def _subscription(self, sub: Sub, latest_invoice: str | None) -> dict[str, Any]:
        as_of = sub.canceled_at if sub.canceled_at is not None else self.t1
        items = []
        for item in sub.items:
            bounds = sub.years if item.interval == "year" else sub.months
            if sub.cycle == "trial":
                period = (sub.start, sub.trial_end)
            else:
                j = max(k for k, b in enumerate(bounds) if b <= as_of)
                period = (bounds[j], bounds[j + 1])
            price = {k: v for k, v in self.prices[item.price_id].items() if k != "tiers"}
            entry = {
                "billing_thresholds": None,
                "created": sub.start,
                "current_period_end": period[1],
                "current_period_start": period[0],
                "discounts": [],
                "id": item.id,
                "metadata": {},
                "object": "subscription_item",
                "price": price,
                "subscription": sub.id,
                "tax_rates": [],
            }
            if item.meter is None:
                entry["quantity"] = 1
            items.append(entry)
        mixed = len({i.interval for i in sub.items}) > 1
        return {
            "application": None,
            "application_fee_percent": None,
            "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
            "billing_cycle_anchor": sub.anchor,
            "billing_cycle_anchor_config": None,
            "billing_mode": {"flexible": {"proration_discounts": "included"}, "type": "flexible"}
            if mixed
            else {"flexible": None, "type": "classic"},
            "billing_thresholds": None,
            "cancel_at": None,
            "cancel_at_period_end": False,
            "canceled_at": sub.canceled_at,
            "cancellation_details": {
                "comment": None,
                "feedback": None,
                "reason": "cancellation_requested" if sub.canceled_at else None,
            },
            "collection_method": sub.collection,
            "created": sub.start,
            "currency": CURRENCY,
            "customer": sub.customer_id,
            "customer_account": None,
            "days_until_due": 30 if sub.collection == "send_invoice" else None,
            "default_payment_method": None,
            "default_source": None,
            "default_tax_rates": [],
            "description": None,
            "discounts": [],
            "ended_at": sub.canceled_at,
            "id": sub.id,
            "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
            "items": {
                "data": items,
                "has_more": False,
                "object": "list",
                "total_count": len(items),
                "url": f"/v1/subscription_items?subscription={sub.id}",
            },
            "latest_invoice": latest_invoice,
            "livemode": False,
            "metadata": {
                "meterworks_billing_cycle": "anniversary" if sub.cycle == "trial" else sub.cycle,
                "meterworks_plan": sub.plan,
                "meterworks_timezone": sub.tz,
            },
            "next_pending_invoice_item_invoice": None,
            "object": "subscription",
            "on_behalf_of": None,
            "pause_collection": None,
            "payment_settings": {
                "payment_method_options": None,
                "payment_method_types": None,
                "save_default_payment_method": "off",
            },
            "pending_invoice_item_interval": None,
            "pending_setup_intent": None,
            "pending_update": None,
            "schedule": None,
            "start_date": sub.start,
            "status": sub.status,
            "test_clock": None,
            "transfer_data": None,
            "trial_end": sub.trial_end,
            "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
            "trial_start": sub.start if sub.trial_end else None,
        }

    # -- output ---------------------------------------------------------------------------------
    def files(self) -> dict[str, list[dict[str, Any]]]:
        return {
            "customers.jsonl": self.customers,
            "billing_meters.jsonl": self.meters,
            "products.jsonl": self.products,
            "prices.jsonl": sorted(self.prices.values(), key=lambda p: (p["created"], p["id"])),
            "subscriptions.jsonl": self.subscriptions,
            "invoices.jsonl": self.invoices,
            "credit_notes.jsonl": self.credit_notes,
        }

    def manifest(self, counts: dict[str, int]) -> dict[str, Any]:
        cust = self.truth.customers
        defects = []
        for x in sorted(self.defects, key=lambda x: DEFECT_KINDS.index(x.kind)):
            entry: dict[str, Any] = {
                "kind": x.kind,
                "customer_id": x.period.sub.customer_id,
                "subscription_id": x.period.sub.id,
            }
            if x.kind == "amount_mismatch":
                entry["meter_code"] = x.meter
                entry["expected_rows"] = self.amount_mismatch_rows
            elif x.kind == "missing_invoice":
                entry["period_start_utc"] = _iso(x.period.start)
                entry["period_end_utc"] = _iso(x.period.end)
                entry["meter_codes"] = [
                    i.meter
                    for i in x.period.sub.metered
                    if self.measured.get((x.period.k, i.meter), 0) > 0
                ]
            else:
                entry["period_start_utc"] = _iso(x.period.start)
                entry["period_end_utc"] = _iso(x.period.end)
                entry["meter_code"] = x.meter
            if x.invoiced is not None and x.kind != "amount_mismatch":
                entry["measured_quantity"] = _dec(self.measured_quantity(x.period.k, x.meter))
                entry["invoiced_quantity"] = _dec(x.invoiced)
            entry["expected_status"] = {
                "voided_and_reissued": "matched",
                "credit_note": "matched",
            }.get(x.kind, x.kind)
            entry.update({f"{k}_id": v for k, v in sorted(x.ids.items())})
            if x.note:
                entry["note"] = x.note
            defects.append(entry)
        invoices = self.invoices
        return {
            "dir": STRIPE_DIR,
            "api_version": API_VERSION,
            "as_of_utc": _iso(self.t1),
            "files": {name: counts[name] for name in FILES},
            "customers_on_stripe": len(self.subs),
            "catalog_only_customers": [cust.ids[i] for i in range(cust.n) if not self.on_stripe[i]],
            "subscriptions_by_status": dict(sorted(Counter(s.status for s in self.subs).items())),
            "subscriptions_by_billing_cycle": dict(
                sorted(Counter(s.cycle for s in self.subs).items())
            ),
            "subscriptions_with_annual_base_fee": sum(1 for s in self.subs if s.years),
            "invoices_by_status": dict(sorted(Counter(i["status"] for i in invoices).items())),
            "invoices_by_billing_reason": dict(
                sorted(Counter(i["billing_reason"] for i in invoices).items())
            ),
            "invoice_lines": sum(len(i["lines"]["data"]) for i in invoices),
            "expected_reconciliation": f"{STRIPE_DIR}/{RECONCILIATION_FILE}",
            "reconciliation": {
                "rows_in_scope": sum(self.scope.values()),
                "by_status": {s: self.scope.get(s, 0) for s in STATUSES},
            },
            "defects": defects,
            "defects_skipped": self.skipped,
            "definitions": {
                "periods": (
                    "Exact instants. Metered periods run from the subscription's start_date to "
                    "the first boundary after it, then boundary to boundary; boundaries are the "
                    "billing_cycle_anchor plus whole months in the customer's time zone "
                    "(subscription metadata meterworks_timezone; same local day, clamped to the "
                    "month's end, same local time): local midnight of the 1st for calendar "
                    "billing, the signup instant for anniversary billing. A canceled "
                    "subscription's last period ends at canceled_at. Trials bill no usage."
                ),
                "invoiced_periods": (
                    "Every metered period with usage_from_utc < end <= usage_until_utc has an "
                    "invoice (created at end, finalized ~1 h later) with a line per metered "
                    "item whose period is exactly {start, end}; the licensed base fee is billed "
                    "in advance (its line's period is the next period)."
                ),
                "measured_quantity": (
                    "The meter's aggregation (count, sum, max, distinct count, last value) over "
                    "the effective events (as in expected_meter_totals.csv) of the customer with "
                    "start <= timestamp < end; tokens over all models. No usage before "
                    "usage_from_utc."
                ),
                "invoiced_quantity": (
                    "quantity_decimal of the metered line of non-void invoices, minus the "
                    "quantity of credit-note lines pointing at it; amounts likewise."
                ),
                "expected_amount": (
                    "The catalog pricing of the customer's plan rated on the measured quantity "
                    "(minor units)."
                ),
                "scope": (
                    "(customer, invoiced period, meter with a metered price on the "
                    "subscription) with an invoice line or measured usage; catalog-only and "
                    "free-plan customers and unpriced meters are out of scope."
                ),
                "status": (
                    "First match wins: no line -> missing_invoice; measured 0 and invoiced > 0 "
                    "-> invoice_without_usage; invoiced < measured -> unbilled_usage; invoiced "
                    "> measured -> quantity_mismatch; amount != expected -> amount_mismatch; "
                    "else matched. Exact (zero tolerance)."
                ),
            },
        }

    def reconciliation_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(RECONCILIATION_COLUMNS)
        for row in self.rows:
            writer.writerow([row[c] for c in RECONCILIATION_COLUMNS])
        return buffer.getvalue()


# -- object templates ------------------------------------------------------------------------------


def _plan_name(plan: str) -> str:
    return plan.capitalize()


def _email(name: str) -> str:
    slug = "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-")
    while "--" in slug:
        slug = slug.replace("--", "-")
    return f"billing@{slug}.example"


def _base_price_id(plan: str, interval: str) -> str:
    return f"price_demo_{plan}_base_{'monthly' if interval == 'month' else 'annual'}"


def _price_id(plan: str, meter: str) -> str:
    return f"price_demo_{plan}_{meter}"


def _price(
    pid: str,
    created: int,
    product: str,
    *,
    interval: str,
    usage_type: str,
    meter: str | None,
    lookup_key: str | None,
    nickname: str,
    metadata: dict[str, str],
    billing_scheme: str = "per_unit",
    tiers_mode: str | None = None,
    transform_quantity: dict[str, Any] | None = None,
    unit_amount_decimal: str | None = None,
    currency: str = CURRENCY,
    tiers: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    unit = Decimal(unit_amount_decimal) if unit_amount_decimal is not None else None
    price: dict[str, Any] = {
        "active": True,
        "billing_scheme": billing_scheme,
        "created": created,
        "currency": currency,
        "custom_unit_amount": None,
        "id": pid,
        "livemode": False,
        "lookup_key": lookup_key,
        "metadata": metadata,
        "nickname": nickname,
        "object": "price",
        "product": product,
        "recurring": {
            "interval": interval,
            "interval_count": 1,
            "meter": meter,
            "trial_period_days": None,
            "usage_type": usage_type,
        },
        "tax_behavior": "unspecified",
        "tiers_mode": tiers_mode,
        "transform_quantity": transform_quantity,
        "type": "recurring",
        "unit_amount": _int_or_none(unit) if unit is not None else None,
        "unit_amount_decimal": unit_amount_decimal,
    }
    if tiers is not None:
        price["tiers"] = tiers
    return price


def _product(
    pid: str,
    created: int,
    name: str,
    default_price: str | None,
    metadata: dict[str, str],
    unit_label: str | None = None,
) -> dict[str, Any]:
    return {
        "active": True,
        "created": created,
        "default_price": default_price,
        "description": None,
        "id": pid,
        "images": [],
        "livemode": False,
        "marketing_features": [],
        "metadata": metadata,
        "name": name,
        "object": "product",
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": None,
        "type": "service",
        "unit_label": unit_label,
        "updated": created,
        "url": None,
    }


def _licensed(item: Item, start: int, end: int, amount: int, proration: bool) -> dict[str, Any]:
    return {
        "item": item,
        "start": start,
        "end": end,
        "quantity": Decimal(1),
        "amount": amount,
        "proration": proration,
    }


def _description(sub: Sub, item: Item, price: dict[str, Any], line: dict[str, Any]) -> str:
    if item.meter is not None:
        meter = METER_SPECS[item.meter][4]
        return f"{_dec(line['quantity'])} × {meter} ({_plan_name(sub.plan)})"  # noqa: RUF001
    plan = _plan_name(sub.plan)
    if sub.cycle == "trial" and line["start"] == sub.start:
        return f"Trial period for Meterworks Demo {plan}"
    if line["proration"]:
        day = datetime.fromtimestamp(line["start"], ZoneInfo(sub.tz)).strftime("%d %b %Y")
        return f"Remaining time on Meterworks Demo {plan} after {day}"
    at = f"${int(price['unit_amount']) / 100:,.2f} / {item.interval}"
    return f"1 × Meterworks Demo {plan} (at {at})"  # noqa: RUF001


def _drift(pricing: Pricing, quantity: Decimal) -> Pricing:
    """The pricing with one unit amount changed: the tier ``quantity`` reaches (the only unit
    amount for per-unit prices) costs 10 % more, or 0.1 if it was free."""

    def bump(text: str | None) -> str:
        value = Decimal(text or "0")
        return _dec(value * Decimal("1.1")) if value else "0.1"

    if pricing.billing_scheme != "tiered":
        return pricing.model_copy(update={"unit_amount_decimal": bump(pricing.unit_amount_decimal)})
    q = quantity
    if pricing.transform_quantity:
        q = q / Decimal(pricing.transform_quantity["divide_by"])
    index = len(pricing.tiers) - 1
    for k, tier in enumerate(pricing.tiers):
        if tier.up_to == "inf" or q <= tier.up_to:
            index = k
            break
    tiers = list(pricing.tiers)
    tiers[index] = tiers[index].model_copy(
        update={"unit_amount_decimal": bump(tiers[index].unit_amount_decimal)}
    )
    return pricing.model_copy(update={"tiers": tiers})


# -- entry point ---------------------------------------------------------------------------------


def write_stripe_account(
    out_dir: Path,
    *,
    truth: Truth,
    delivery: Delivery,
    outcome: Outcome,
    plan: np.ndarray,
    catalog: Catalog,
    seed: int,
) -> dict[str, Any]:
    """Write ``out_dir/stripe/`` (replacing it) and return the manifest's ``stripe`` section."""
    account = Account(truth, delivery, outcome, plan, catalog, seed)
    account.build()
    stripe_dir = Path(out_dir) / STRIPE_DIR
    if stripe_dir.exists():
        shutil.rmtree(stripe_dir)
    stripe_dir.mkdir(parents=True)
    counts: dict[str, int] = {}
    for name, objects in account.files().items():
        text = "".join(_dumps(obj) + "\n" for obj in objects)
        (stripe_dir / name).write_text(text, encoding="utf-8")
        counts[name] = len(objects)
    (stripe_dir / RECONCILIATION_FILE).write_text(account.reconciliation_csv(), encoding="utf-8")
    return account.manifest(counts)
