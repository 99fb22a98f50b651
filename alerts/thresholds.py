"""Quota-threshold alerts: fire once per customer, meter, period and threshold.

``evaluate_thresholds(con, now=...)`` reads the warehouse marts and writes, in ONE transaction:

* ``alerts.threshold_periods`` -- the usage evaluated per (customer, meter, period): the memory
  that lets a period be re-evaluated after it closed (late events);
* ``alerts.threshold_rules`` -- when each (customer, meter, kind, value) rule was first seen, so
  a rule added mid-period is told apart from one that existed when the period started;
* ``alerts.threshold_state`` -- one row per (customer, meter, period_start, kind, value): armed,
  fired or already passed;
* ``alerts.outbox`` -- one ``usage.threshold_crossed`` message per crossing, with a stable id;
* ``alerts.threshold_runs`` -- one row per evaluation (its time and counts);
* ``marts.fct_threshold_crossings`` -- the public view of it all: every threshold fired or
  already passed, with the figures at the crossing.

Sources
-------
Open periods come from ``marts.fct_projected_invoice`` (metered charges). Percent thresholds are
a share of the charge's included quantity: the catalog plan charge's ``included`` or, when that
is null, the free first tier of a *graduated* tiered price (first tier with no unit and no flat
amount: its ``up_to``), read from ``intermediate.int_billing_prices`` /
``intermediate.int_billing_price_tiers`` when those relations exist. Charges with neither (or an
allowance of 0) get no percent thresholds. When several charges of a customer share a meter and a
period, the largest quantity and the largest allowance are used.

Spend thresholds (amounts in the invoice currency's major units, compared in minor units) fire
``invoice.projection_exceeded`` instead of ``usage.threshold_crossed``. They apply to the whole projected invoice of a
customer period and currency: the sum of ``projected_amount`` over all its charges (metered and
licensed) with the same ``period_start``. Their state rows use ``meter_code = 'invoice:<ccy>'``
(a meter code cannot contain ``:``). They are evaluated for open periods only.

Closed periods (late events)
----------------------------
Every period already in ``alerts.threshold_periods`` that is no longer open and whose
``period_end`` is within ``backdating_days`` (default 35, the catalog default) of ``now`` is
re-evaluated, with its stored allowance, against:

1. ``closed_usage[(customer_id, meter_code, period_start)]`` when the caller passes it (the way
   to feed Stripe subscription periods that do not align with a local calendar month), else
2. ``marts.fct_meter_totals`` rows with exactly the same ``period_start`` and ``period_end``
   (calendar-month periods, i.e. catalog customers, and subscriptions anchored on the 1st in the
   customer's zone), summed over dimensions for count/sum/unique_count (a unique value seen under
   two dimension values counts twice) and maxed for max/latest, else
3. the stored quantity (unchanged; listed in ``ThresholdRun.unresolved``).

Only state rows that already exist are considered for a closed period: no new threshold arms
after the period closed.

Rules
-----
A threshold is crossed when ``quantity * 100 >= included * percent`` (percent kind) or when
``projected amount >= value`` (spend kind). When a state row is created for an open period:
if the rule was first seen at or before ``period_start`` it is armed and fires at once when
already crossed (e.g. the first run of a new period); if the rule was first seen after
``period_start`` (added mid-period, or on the very first evaluation) and already crossed it is
recorded as ``passed`` (armed_at = fired_at = null, with a reason) and never fires for that
period. An armed row fires the first time it is crossed; a fired or passed row never fires
again in that period, whatever the usage does. A rule removed and added back is a new rule.
A new ``period_start`` means new state rows, i.e. the thresholds re-arm.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import duckdb
import pandas as pd

from alerts.outbox import ensure_outbox, write_outbox

EVENT_TYPE = "usage.threshold_crossed"
#: spend thresholds (on the projected invoice) are their own event type
PROJECTION_EVENT_TYPE = "invoice.projection_exceeded"
SCHEMA_VERSION = 1
DEFAULT_PERCENTS: tuple[float, ...] = (50, 80, 100)
DEFAULT_BACKDATING_DAYS = 35
PERCENT = "percent"
SPEND = "spend"

DDL = """
create schema if not exists alerts;

create table if not exists alerts.threshold_periods (
    customer_id varchar not null,
    meter_code varchar not null,
    period_start timestamp not null,
    period_end timestamp not null,
    currency varchar,
    included decimal(38, 9),
    included_source varchar,
    quantity decimal(38, 9),
    amount_to_date bigint,
    projected_amount bigint,
    source varchar not null,
    evaluated_at timestamp not null,
    primary key (customer_id, meter_code, period_start)
);

create table if not exists alerts.threshold_rules (
    customer_id varchar not null,
    meter_code varchar not null,
    threshold_kind varchar not null,
    threshold_value decimal(38, 9) not null,
    first_seen_at timestamp not null,
    last_seen_at timestamp not null,
    primary key (customer_id, meter_code, threshold_kind, threshold_value)
);

create table if not exists alerts.threshold_state (
    customer_id varchar not null,
    meter_code varchar not null,
    period_start timestamp not null,
    period_end timestamp not null,
    threshold_kind varchar not null,
    threshold_value decimal(38, 9) not null,
    status varchar not null,
    reason varchar,
    armed_at timestamp,
    fired_at timestamp,
    first_seen_at timestamp not null,
    first_seen_level decimal(38, 9),
    last_level decimal(38, 9),
    last_evaluated_at timestamp not null,
    alert_id varchar not null,
    primary key (customer_id, meter_code, period_start, threshold_kind, threshold_value)
);

create table if not exists alerts.threshold_runs (
    evaluated_at timestamp not null,
    periods_open integer not null,
    periods_closed integer not null,
    fired integer not null,
    passed integer not null
);
"""

_NUMBER_OR_NULL = {"type": ["number", "null"]}
_STRING_OR_NULL = {"type": ["string", "null"]}
_INSTANT = {"type": "string", "format": "date-time"}


def _crossing_schema(event_type: str, kind: str, unit: str, meter: dict[str, Any]) -> dict:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://meterworks.dev/schemas/{event_type}/v1.json",
        "title": event_type,
        "type": "object",
        "additionalProperties": False,
        "required": [
            "schema_version",
            "event_type",
            "alert_id",
            "customer_id",
            "meter_code",
            "period_start",
            "period_end",
            "threshold",
            "included",
            "quantity",
            "percent_used",
            "currency",
            "amount_to_date",
            "projected_amount",
            "period_closed",
            "evaluated_at",
        ],
        "properties": {
            "schema_version": {"const": 1},
            "event_type": {"const": event_type},
            "alert_id": {"type": "string", "pattern": "^thr_[0-9a-f]{32}$"},
            "customer_id": {"type": "string", "minLength": 1},
            "meter_code": meter,
            "period_start": _INSTANT,
            "period_end": _INSTANT,
            "threshold": {
                "type": "object",
                "additionalProperties": False,
                "required": ["kind", "value", "unit"],
                "properties": {
                    "kind": {"const": kind},
                    "value": {"type": "number"},
                    "unit": {"const": unit},
                },
            },
            "included": _NUMBER_OR_NULL,
            "quantity": _NUMBER_OR_NULL,
            "percent_used": _NUMBER_OR_NULL,
            "currency": _STRING_OR_NULL,
            "amount_to_date": {"type": ["integer", "null"]},
            "projected_amount": {"type": ["integer", "null"]},
            "period_closed": {"type": "boolean"},
            "evaluated_at": _INSTANT,
        },
    }


#: JSON schema of a ``usage.threshold_crossed`` payload (``schema_version`` 1): a percent of a
#: meter's included quantity was reached.
THRESHOLD_PAYLOAD_SCHEMA: dict[str, Any] = _crossing_schema(
    EVENT_TYPE, PERCENT, "percent_of_included", {"type": "string", "minLength": 1}
)
#: JSON schema of an ``invoice.projection_exceeded`` payload (``schema_version`` 1): the
#: projected invoice of the open period reached a spend threshold (``value`` in minor units).
PROJECTION_PAYLOAD_SCHEMA: dict[str, Any] = _crossing_schema(
    PROJECTION_EVENT_TYPE, SPEND, "minor_units", {"type": "null"}
)


@dataclass(frozen=True)
class Crossing:
    alert_id: str
    customer_id: str
    meter_code: str
    period_start: datetime
    threshold_kind: str
    threshold_value: Decimal
    payload: dict[str, Any]


@dataclass
class ThresholdRun:
    evaluated_at: datetime
    periods_open: int = 0
    periods_closed: int = 0
    fired: list[Crossing] = field(default_factory=list)
    passed: list[tuple[str, str, datetime, str, Decimal]] = field(default_factory=list)
    #: closed periods with no fresh usage source (quantity kept as last evaluated)
    unresolved: list[tuple[str, str, datetime]] = field(default_factory=list)


@dataclass
class _Unit:
    """One (customer, meter-or-invoice, period) to evaluate."""

    customer_id: str
    meter_code: str
    period_start: datetime
    period_end: datetime
    kind: str
    is_open: bool
    source: str
    currency: str | None = None
    included: Decimal | None = None
    included_source: str | None = None
    quantity: Decimal | None = None
    amount_to_date: int | None = None
    projected_amount: int | None = None
    thresholds: list[Decimal] = field(default_factory=list)

    @property
    def level(self) -> Decimal | None:
        """Percent used (percent kind) or projected amount (spend kind)."""
        if self.kind == SPEND:
            return None if self.projected_amount is None else Decimal(self.projected_amount)
        if self.quantity is None or not self.included:
            return None
        return self.quantity * 100 / self.included

    def crossed(self, value: Decimal) -> bool:
        if self.kind == SPEND:
            return self.projected_amount is not None and Decimal(self.projected_amount) >= value
        if self.quantity is None or not self.included:
            return False
        return self.quantity * 100 >= self.included * value


# -- helpers ---------------------------------------------------------------------------------
def _to_minor(amount: Any, currency: str) -> Decimal:
    """A spend threshold in the currency's major units (``500`` = $500) as minor units."""
    from meterworks.pricing import minor_unit_exponent

    minor = Decimal(str(amount)).scaleb(minor_unit_exponent(currency))
    return minor.to_integral_value()


def _dec(value: Any) -> Decimal | None:
    if value is None:
        return None
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _canon(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def _utc_naive(moment: datetime) -> datetime:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _iso(moment: datetime) -> str:
    return _utc_naive(moment).isoformat(timespec="seconds") + "Z"


def _num(value: Decimal | None) -> float | int | None:
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)


def alert_id_for(
    customer_id: str, meter_code: str, period_start: datetime, kind: str, value: Any
) -> str:
    """``thr_`` + the first 32 hex digits of sha256(customer|meter|period_start|kind|value)."""
    key = "|".join(
        [customer_id, meter_code, _iso(period_start), kind, _canon(_dec(value) or Decimal(0))]
    )
    return "thr_" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def ensure_threshold_schema(con: duckdb.DuckDBPyConnection) -> None:
    ensure_outbox(con)
    con.execute(DDL)


def _relation_exists(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    row = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, name],
    ).fetchone()
    return bool(row and row[0])


def _free_tier_sql(con: duckdb.DuckDBPyConnection) -> str:
    """A CTE giving each graduated price's free first tier, or an empty one."""
    if _relation_exists(con, "intermediate", "int_billing_prices") and _relation_exists(
        con, "intermediate", "int_billing_price_tiers"
    ):
        return """
        free_tier as (
            select t.price_id, cast(t.up_to as decimal(38, 9)) as free_up_to
            from intermediate.int_billing_price_tiers as t
            inner join intermediate.int_billing_prices as p on t.price_id = p.price_id
            where
                p.billing_scheme = 'tiered' and p.tiers_mode = 'graduated'
                and t.tier_index = (
                    select min(t2.tier_index) from intermediate.int_billing_price_tiers as t2
                    where t2.price_id = t.price_id
                )
                and coalesce(t.unit_amount_decimal, 0) = 0
                and coalesce(t.flat_amount_decimal, 0) = 0
                and t.up_to is not null
        )"""
    return "free_tier as (select null::varchar as price_id, null::decimal(38, 9) as free_up_to)"


def _open_units(
    con: duckdb.DuckDBPyConnection,
    percents_for: Callable[[str], list[Decimal]],
    spend_thresholds: Mapping[str, list[Any]],
) -> list[_Unit]:
    rows = con.execute(
        f"""
        with {_free_tier_sql(con)},
        charges as (
            select
                f.customer_id, f.meter_code, f.period_start, f.period_end, f.currency,
                f.quantity_to_date,
                coalesce(cast(f.included as decimal(38, 9)), ft.free_up_to) as included,
                case
                    when f.included is not null then 'catalog'
                    when ft.free_up_to is not null then 'graduated_free_tier'
                end as included_source
            from marts.fct_projected_invoice as f
            left join free_tier as ft on f.price_id = ft.price_id
            where f.charge_type = 'metered' and f.meter_code is not null
        )
        select
            customer_id, meter_code, period_start, max(period_end), max(currency),
            max(included), max(included_source), max(quantity_to_date)
        from charges
        group by 1, 2, 3
        order by 1, 2, 3
        """
    ).fetchall()
    units = [
        _Unit(
            customer_id=r[0],
            meter_code=r[1],
            period_start=r[2],
            period_end=r[3],
            kind=PERCENT,
            is_open=True,
            source="projected_invoice",
            currency=r[4],
            included=_dec(r[5]),
            included_source=r[6],
            quantity=_dec(r[7]),
            # no allowance (or a zero one): no percent thresholds for this charge
            thresholds=percents_for(r[0]) if r[5] else [],
        )
        for r in rows
    ]
    if spend_thresholds:
        spend_rows = con.execute(
            """
            select
                customer_id, currency, period_start, max(period_end),
                sum(amount_to_date), sum(projected_amount)
            from marts.fct_projected_invoice
            where currency is not null
            group by 1, 2, 3
            order by 1, 2, 3
            """
        ).fetchall()
        for r in spend_rows:
            values = spend_thresholds.get(r[0])
            if not values:
                continue
            units.append(
                _Unit(
                    customer_id=r[0],
                    meter_code=f"invoice:{r[1]}",
                    period_start=r[2],
                    period_end=r[3],
                    kind=SPEND,
                    is_open=True,
                    source="projected_invoice",
                    currency=r[1],
                    amount_to_date=None if r[4] is None else int(r[4]),
                    projected_amount=None if r[5] is None else int(r[5]),
                    thresholds=sorted({_to_minor(v, r[1]) for v in values}),
                )
            )
    return units


def _closed_units(
    con: duckdb.DuckDBPyConnection,
    open_keys: set[tuple[str, str, datetime]],
    now: datetime,
    backdating_days: int,
    closed_usage: Mapping[tuple[str, str, datetime], Any] | None,
    run: ThresholdRun,
) -> list[_Unit]:
    horizon = now - timedelta(days=backdating_days)
    stored = con.execute(
        """
        select customer_id, meter_code, period_start, period_end, currency, included,
               included_source, quantity
        from alerts.threshold_periods
        where meter_code not like 'invoice:%' and period_end >= ?
        order by 1, 2, 3
        """,
        [horizon],
    ).fetchall()
    has_totals = _relation_exists(con, "marts", "fct_meter_totals")
    passed_usage = {(c, m, _utc_naive(p)): q for (c, m, p), q in (closed_usage or {}).items()}
    units = []
    for customer_id, meter_code, start, end, currency, included, inc_source, quantity in stored:
        key = (customer_id, meter_code, start)
        if key in open_keys:
            continue
        source = "unchanged"
        fresh: Any = None
        if key in passed_usage:
            fresh, source = passed_usage[key], "caller"
        elif has_totals:
            row = con.execute(
                """
                select
                    case
                        when max(aggregation) in ('max', 'latest') then max(quantity)
                        else sum(quantity)
                    end,
                    count(*)
                from marts.fct_meter_totals
                where
                    customer_id = ? and meter_code = ? and period_start = ? and period_end = ?
                    and quantity is not null
                """,
                [customer_id, meter_code, start, end],
            ).fetchone()
            if row and row[1]:
                fresh, source = row[0], "meter_totals"
        if source == "unchanged":
            run.unresolved.append(key)
        units.append(
            _Unit(
                customer_id=customer_id,
                meter_code=meter_code,
                period_start=start,
                period_end=end,
                kind=PERCENT,
                is_open=False,
                source=source,
                currency=currency,
                included=_dec(included),
                included_source=inc_source,
                quantity=_dec(fresh) if source != "unchanged" else _dec(quantity),
            )
        )
    return units


def _payload(unit: _Unit, value: Decimal, alert_id: str, now: datetime) -> dict[str, Any]:
    level = unit.level
    return {
        "schema_version": SCHEMA_VERSION,
        "event_type": PROJECTION_EVENT_TYPE if unit.kind == SPEND else EVENT_TYPE,
        "alert_id": alert_id,
        "customer_id": unit.customer_id,
        "meter_code": None if unit.kind == SPEND else unit.meter_code,
        "period_start": _iso(unit.period_start),
        "period_end": _iso(unit.period_end),
        "threshold": {
            "kind": unit.kind,
            "value": _num(value),
            "unit": "percent_of_included" if unit.kind == PERCENT else "minor_units",
        },
        "included": _num(unit.included),
        "quantity": _num(unit.quantity),
        "percent_used": (None if unit.kind == SPEND or level is None else round(float(level), 4)),
        "currency": unit.currency,
        "amount_to_date": unit.amount_to_date,
        "projected_amount": unit.projected_amount,
        "period_closed": not unit.is_open,
        "evaluated_at": _iso(now),
    }


# -- the writes (each runs inside the evaluation's transaction) ------------------------------
def _write_periods(con: duckdb.DuckDBPyConnection, units: list[_Unit], now: datetime) -> None:
    if not units:
        return
    frame = pd.DataFrame(
        [
            {
                "customer_id": u.customer_id,
                "meter_code": u.meter_code,
                "period_start": u.period_start,
                "period_end": u.period_end,
                "currency": u.currency,
                "included": None if u.included is None else str(u.included),
                "included_source": u.included_source,
                "quantity": None if u.quantity is None else str(u.quantity),
                "amount_to_date": u.amount_to_date,
                "projected_amount": u.projected_amount,
                "source": u.source,
                "evaluated_at": now,
            }
            for u in units
        ]
    ).astype(object)
    con.register("threshold_periods_frame", frame)
    try:
        con.execute(
            """
            insert or replace into alerts.threshold_periods
            select
                customer_id, meter_code, cast(period_start as timestamp),
                cast(period_end as timestamp), currency, cast(included as decimal(38, 9)),
                included_source, cast(quantity as decimal(38, 9)),
                cast(amount_to_date as bigint), cast(projected_amount as bigint), source,
                cast(evaluated_at as timestamp)
            from threshold_periods_frame
            """
        )
    finally:
        con.unregister("threshold_periods_frame")


def _touch_rules(
    con: duckdb.DuckDBPyConnection, units: Iterable[_Unit], now: datetime
) -> dict[tuple[str, str, str, Decimal], datetime]:
    """Record the rules seen now; return each one's first_seen_at."""
    last_run = con.execute("select max(evaluated_at) from alerts.threshold_runs").fetchone()[0]
    existing = {
        (c, m, k, _dec(v)): (first, last)
        for c, m, k, v, first, last in con.execute(
            "select customer_id, meter_code, threshold_kind, threshold_value, first_seen_at, "
            "last_seen_at from alerts.threshold_rules"
        ).fetchall()
    }
    seen: dict[tuple[str, str, str, Decimal], datetime] = {}
    rows = []
    for unit in units:
        for value in unit.thresholds:
            key = (unit.customer_id, unit.meter_code, unit.kind, value)
            if key in seen:
                continue
            first, last = existing.get(key, (None, None))
            # absent from the previous run => removed and added back => a new rule
            if first is None or (last_run is not None and last < last_run):
                first = now
            seen[key] = first
            rows.append([*key, first, now])
    if rows:
        _stage(
            con,
            "threshold_rules_seen",
            "customer_id varchar, meter_code varchar, threshold_kind varchar, "
            "threshold_value decimal(38, 9), first_seen_at timestamp, last_seen_at timestamp",
            [[c, m, k, str(v), f, n] for c, m, k, v, f, n in rows],
        )
        con.execute(
            "insert or replace into alerts.threshold_rules select * from threshold_rules_seen"
        )
        con.execute("drop table threshold_rules_seen")
    return seen


def _update_state(
    con: duckdb.DuckDBPyConnection,
    units: list[_Unit],
    rules: Mapping[tuple[str, str, str, Decimal], datetime],
    now: datetime,
    run: ThresholdRun,
) -> list[Crossing]:
    crossings: list[Crossing] = []
    keys = {(u.customer_id, u.meter_code, u.period_start) for u in units}
    earliest = min((u.period_end for u in units), default=now)
    by_period: dict[tuple[str, str, datetime], dict[tuple[str, Decimal], str]] = {}
    for customer_id, meter_code, start, kind, value, status in con.execute(
        """
        select customer_id, meter_code, period_start, threshold_kind, threshold_value, status
        from alerts.threshold_state where period_end >= ?
        """,
        [earliest],
    ).fetchall():
        if (customer_id, meter_code, start) in keys:
            by_period.setdefault((customer_id, meter_code, start), {})[(kind, _dec(value))] = status
    inserts: list[list[Any]] = []
    updates: list[list[Any]] = []
    for unit in units:
        state = by_period.get((unit.customer_id, unit.meter_code, unit.period_start), {})
        # closed periods: only the thresholds that were in force while the period was open
        values = unit.thresholds if unit.is_open else [v for k, v in state if k == unit.kind]
        level = unit.level
        for value in sorted(set(values)):
            alert_id = alert_id_for(
                unit.customer_id, unit.meter_code, unit.period_start, unit.kind, value
            )
            key_args = [unit.customer_id, unit.meter_code, unit.period_start, unit.kind, value]
            crossed = unit.crossed(value)
            status = state.get((unit.kind, value))
            fire = False
            if status is None:
                first_seen = rules[(unit.customer_id, unit.meter_code, unit.kind, value)]
                rule_predates_period = first_seen <= unit.period_start
                if crossed and not rule_predates_period:
                    new_status, reason, armed_at = "passed", "already passed when first seen", None
                    run.passed.append(
                        (unit.customer_id, unit.meter_code, unit.period_start, unit.kind, value)
                    )
                else:
                    new_status, reason, armed_at = "armed", None, now
                    fire = crossed
                if fire:
                    new_status = "fired"
                inserts.append(
                    [
                        unit.customer_id,
                        unit.meter_code,
                        unit.period_start,
                        unit.period_end,
                        unit.kind,
                        str(value),
                        new_status,
                        reason,
                        armed_at,
                        now if fire else None,
                        now,
                        None if level is None else str(level),
                        None if level is None else str(level),
                        now,
                        alert_id,
                    ]
                )
            else:
                fire = status == "armed" and crossed
                updates.append(
                    [
                        *key_args[:4],
                        str(value),
                        None if level is None else str(level),
                        fire,
                        unit.is_open,
                    ]
                )
            if fire:
                crossings.append(
                    Crossing(
                        alert_id=alert_id,
                        customer_id=unit.customer_id,
                        meter_code=unit.meter_code,
                        period_start=unit.period_start,
                        threshold_kind=unit.kind,
                        threshold_value=value,
                        payload=_payload(unit, value, alert_id, now),
                    )
                )
    _bulk(con, inserts, updates, now)
    return crossings


_STATE_COLUMNS = (
    "customer_id varchar, meter_code varchar, period_start timestamp, period_end timestamp, "
    "threshold_kind varchar, threshold_value decimal(38, 9), status varchar, reason varchar, "
    "armed_at timestamp, fired_at timestamp, first_seen_at timestamp, "
    "first_seen_level decimal(38, 9), last_level decimal(38, 9), last_evaluated_at timestamp, "
    "alert_id varchar"
)
_UPDATE_COLUMNS = (
    "customer_id varchar, meter_code varchar, period_start timestamp, threshold_kind varchar, "
    "threshold_value decimal(38, 9), level decimal(38, 9), fire boolean, is_open boolean"
)


def _stage(con: duckdb.DuckDBPyConnection, name: str, columns: str, rows: list[list[Any]]) -> None:
    """A temp table of typed rows (one bulk load instead of a statement per row)."""
    con.execute(f"create or replace temp table {name} ({columns})")
    specs = re.split(r",\s*(?![^()]*\))", columns)  # not the comma inside decimal(38, 9)
    names = [c.split()[0] for c in specs]
    frame = pd.DataFrame(rows, columns=names).astype(object)
    con.register(f"{name}_frame", frame)
    try:
        casts = ", ".join(f"cast({c.split()[0]} as {' '.join(c.split()[1:])})" for c in specs)
        con.execute(f"insert into {name} select {casts} from {name}_frame")
    finally:
        con.unregister(f"{name}_frame")


def _bulk(
    con: duckdb.DuckDBPyConnection,
    inserts: list[list[Any]],
    updates: list[list[Any]],
    now: datetime,
) -> None:
    if inserts:
        _stage(con, "threshold_state_new", _STATE_COLUMNS, inserts)
        con.execute("insert into alerts.threshold_state select * from threshold_state_new")
        con.execute("drop table threshold_state_new")
    if updates:
        _stage(con, "threshold_state_seen", _UPDATE_COLUMNS, updates)
        con.execute(
            """
            update alerts.threshold_state as s set
                last_level = u.level,
                last_evaluated_at = ?,
                status = case when u.fire then 'fired' else s.status end,
                fired_at = case when u.fire then ? else s.fired_at end,
                reason = case when u.fire and not u.is_open then 'crossed after period closed'
                              else s.reason end
            from threshold_state_seen as u
            where
                s.customer_id = u.customer_id and s.meter_code = u.meter_code
                and s.period_start = u.period_start and s.threshold_kind = u.threshold_kind
                and s.threshold_value = u.threshold_value
            """,
            [now, now],
        )
        con.execute("drop table threshold_state_seen")


def _write_outbox(con: duckdb.DuckDBPyConnection, crossings: list[Crossing], now: datetime) -> None:
    """Insert each crossing once; an alert_id already in the outbox is left as it is."""
    write_outbox(con, (c.payload for c in crossings), now)


CROSSINGS_MART = "marts.fct_threshold_crossings"


def refresh_crossings_mart(con: duckdb.DuckDBPyConnection) -> None:
    """Rebuild ``marts.fct_threshold_crossings``: one row per threshold that fired or that was
    already passed when its rule arrived, with the figures at the crossing (from the alert's
    payload). Small (a few rows per customer-period), so it is rebuilt whole."""
    con.execute("create schema if not exists marts")
    con.execute(
        f"""
        create or replace table {CROSSINGS_MART} as
        select
            s.customer_id,
            case when s.threshold_kind = 'spend' then null else s.meter_code end as meter_code,
            s.period_start,
            s.period_end,
            s.threshold_kind,
            s.threshold_value,
            case
                when s.threshold_kind = 'spend' then 'minor_units' else 'percent_of_included'
            end as threshold_unit,
            s.status,
            s.fired_at,
            s.first_seen_at,
            s.reason,
            p.currency,
            p.included,
            p.included_source,
            cast(o.payload ->> 'quantity' as decimal(38, 9)) as quantity_at_crossing,
            cast(o.payload ->> 'percent_used' as double) as percent_used_at_crossing,
            cast(o.payload ->> 'projected_amount' as bigint) as projected_amount_at_crossing,
            s.first_seen_level as level_when_rule_arrived,
            s.last_level,
            case when s.status = 'fired' then s.alert_id end as alert_id,
            o.event_type,
            o.delivery_status,
            cast(o.payload ->> 'period_closed' as boolean) as fired_after_period_closed
        from alerts.threshold_state as s
        left join alerts.threshold_periods as p
            on
                s.customer_id = p.customer_id and s.meter_code = p.meter_code
                and s.period_start = p.period_start
        left join alerts.outbox as o on s.status = 'fired' and s.alert_id = o.alert_id
        where s.status in ('fired', 'passed')
        order by s.customer_id, s.period_start, s.meter_code, s.threshold_kind, s.threshold_value
        """
    )


def thresholds_from_catalog(catalog: Any) -> dict[str, list[float]]:
    """``customer_thresholds`` from a loaded catalog (customers with their own list)."""
    return {c.id: list(c.thresholds) for c in catalog.customers if c.thresholds}


def spend_thresholds_from_catalog(catalog: Any) -> dict[str, list[Any]]:
    """``spend_thresholds`` from a loaded catalog (major units of the invoice currency)."""
    return {c.id: list(c.spend_thresholds) for c in catalog.customers if c.spend_thresholds}


def evaluate_thresholds(
    con: duckdb.DuckDBPyConnection,
    *,
    now: datetime,
    default_percents: Iterable[float] = DEFAULT_PERCENTS,
    customer_thresholds: Mapping[str, list[float]] | None = None,
    spend_thresholds: Mapping[str, list[Any]] | None = None,
    closed_usage: Mapping[tuple[str, str, datetime], Any] | None = None,
    backdating_days: int = DEFAULT_BACKDATING_DAYS,
) -> ThresholdRun:
    """Evaluate every threshold once and record the crossings (see the module docstring).

    ``now`` is the evaluation instant (naive = UTC). ``customer_thresholds`` replaces the
    default percent list for a customer (``thresholds_from_catalog`` builds it from the
    catalog); ``spend_thresholds`` maps a customer to projected-invoice amounts in the invoice
    currency's major units (``[500]`` = $500 on a usd invoice; ``spend_thresholds_from_catalog``); ``closed_usage`` optionally gives the recomputed quantity of a closed period,
    keyed by (customer_id, meter_code, period_start).
    """
    now = _utc_naive(now)
    run = ThresholdRun(evaluated_at=now)
    defaults = sorted({Decimal(str(p)) for p in default_percents})
    overrides = {
        c: sorted({Decimal(str(p)) for p in values})
        for c, values in (customer_thresholds or {}).items()
    }

    def percents_for(customer_id: str) -> list[Decimal]:
        return overrides.get(customer_id, defaults)

    ensure_threshold_schema(con)
    con.execute("begin transaction")
    try:
        units = _open_units(con, percents_for, spend_thresholds or {})
        open_keys = {(u.customer_id, u.meter_code, u.period_start) for u in units}
        closed = _closed_units(con, open_keys, now, backdating_days, closed_usage, run)
        run.periods_open = sum(1 for u in units if u.kind == PERCENT)
        run.periods_closed = len(closed)
        units = [*units, *closed]
        rules = _touch_rules(con, units, now)
        _write_periods(con, units, now)
        run.fired = _update_state(con, units, rules, now, run)
        _write_outbox(con, run.fired, now)
        refresh_crossings_mart(con)
        con.execute(
            "insert into alerts.threshold_runs values (?, ?, ?, ?, ?)",
            [now, run.periods_open, run.periods_closed, len(run.fired), len(run.passed)],
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return run
