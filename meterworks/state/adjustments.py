"""Adjustments: a credit (money off a customer's invoice for a billing period) or a usage
adjustment (a signed quantity added to a meter's usage in a billing period), each with a reason
code and a note. Every change -- create, edit, void, the Stripe credit -- commits together with
its audit-log row (who, when, what, before and after).

An adjustment is never deleted: a wrong one is voided (it keeps its row with ``voided_at``), and
only the note and the reason code can be edited; to change an amount, void and re-create (a
credit may already be in Stripe).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from meterworks.pricing import minor_unit_exponent
from meterworks.state import audit
from meterworks.state.models import adjustments

CREDIT, USAGE = "credit", "usage"
KINDS = (CREDIT, USAGE)

#: reason code -> what it means (shown in the app's form)
REASON_CODES: dict[str, str] = {
    "service_outage": "Service outage or degradation",
    "billing_error": "Billing error: wrong price or quantity invoiced",
    "duplicate_events": "Duplicate or test events were counted",
    "usage_correction": "Usage measured wrongly (late, missing or mis-attributed events)",
    "contract_terms": "Contract terms not reflected in the plan",
    "goodwill": "Goodwill credit (customer success)",
    "other": "Other (explain in the note)",
}
MAX_NOTE = 2000
_CURRENCY = re.compile(r"^[a-z]{3}$")


class AdjustmentError(ValueError):
    """An adjustment refused: the message says what to fix, for the person at the form."""


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def utc_naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def money(minor: int, currency: str) -> str:
    code = currency.lower()
    exponent = minor_unit_exponent(code)
    return f"{code.upper()} {Decimal(int(minor)).scaleb(-exponent):,.{exponent}f}"


def parse_amount(text: str | Decimal | int | float, currency: str) -> int:
    """A major-unit amount (``"12.50"``) as exact minor units of ``currency`` (1250 cents);
    refuses more decimals than the currency has."""
    try:
        value = Decimal(str(text).strip().replace(",", ""))
    except InvalidOperation:
        raise AdjustmentError(f"'{text}' is not an amount") from None
    if not value.is_finite():
        raise AdjustmentError(f"'{text}' is not an amount")
    exponent = minor_unit_exponent(currency.lower())
    minor = value.scaleb(exponent)
    if minor != minor.to_integral_value():
        raise AdjustmentError(
            f"{currency.upper()} amounts have at most {exponent} decimal places (got {text})"
        )
    return int(minor)


@dataclass(frozen=True)
class AdjustmentRequest:
    """What the person at the form asks for."""

    customer_id: str
    kind: str
    period_start: datetime
    period_end: datetime
    reason_code: str
    note: str = ""
    meter_code: str | None = None
    amount_minor: int | None = None
    currency: str | None = None
    quantity: Decimal | None = None


@dataclass(frozen=True)
class Adjustment:
    adjustment_id: str
    customer_id: str
    kind: str
    meter_code: str | None
    period_start: datetime
    period_end: datetime
    amount_minor: int | None
    currency: str | None
    quantity: Decimal | None
    reason_code: str
    note: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    voided_at: datetime | None = None
    voided_by: str | None = None
    void_reason: str | None = None
    stripe_object_id: str | None = None
    stripe_status: str | None = None
    stripe_error: str | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _validate(
    req: AdjustmentRequest,
    *,
    actor: str,
    known_periods: Iterable[tuple[datetime, datetime]] | None,
    known_customers: Iterable[str] | None,
    known_meters: Iterable[str] | None,
) -> AdjustmentRequest:
    if not actor or not actor.strip():
        raise AdjustmentError("an adjustment needs the signed-in user who makes it")
    customer = (req.customer_id or "").strip()
    if not customer:
        raise AdjustmentError("choose a customer")
    if known_customers is not None and customer not in set(known_customers):
        raise AdjustmentError(f"unknown customer '{customer}'")
    reason = (req.reason_code or "").strip()
    if not reason:
        raise AdjustmentError("a reason code is required: choose one of " + ", ".join(REASON_CODES))
    if reason not in REASON_CODES:
        raise AdjustmentError(
            f"unknown reason code '{reason}': use one of " + ", ".join(REASON_CODES)
        )
    note = (req.note or "").strip()
    if reason == "other" and not note:
        raise AdjustmentError("reason 'other' needs a note that explains the adjustment")
    if len(note) > MAX_NOTE:
        raise AdjustmentError(f"the note is {len(note)} characters long; at most {MAX_NOTE}")
    if req.kind not in KINDS:
        raise AdjustmentError(f"kind must be 'credit' or 'usage', not '{req.kind}'")
    start, end = utc_naive(req.period_start), utc_naive(req.period_end)
    if end <= start:
        raise AdjustmentError(f"the period must end after it starts ({start} .. {end})")
    if known_periods is not None:
        periods = {(utc_naive(s), utc_naive(e)) for s, e in known_periods}
        if (start, end) not in periods:
            raise AdjustmentError(
                f"customer '{customer}' has no billing period {start:%Y-%m-%d %H:%M} .. "
                f"{end:%Y-%m-%d %H:%M} UTC: choose one of its periods"
            )
    meter = (req.meter_code or "").strip() or None
    if meter is not None and known_meters is not None and meter not in set(known_meters):
        raise AdjustmentError(f"unknown meter '{meter}'")
    amount, currency, quantity = None, None, None
    if req.kind == CREDIT:
        currency = (req.currency or "").strip().lower()
        if not _CURRENCY.match(currency):
            raise AdjustmentError("a credit needs a 3-letter currency code (e.g. usd)")
        if req.amount_minor is None:
            raise AdjustmentError("a credit needs an amount")
        amount = int(req.amount_minor)
        if amount <= 0:
            raise AdjustmentError(
                f"a credit must be a positive amount (got {money(amount, currency)}): it is "
                "what the customer is owed; to take a credit back, void it"
            )
        if req.quantity not in (None, 0):
            raise AdjustmentError("a credit has an amount, not a quantity")
    else:
        if meter is None:
            raise AdjustmentError("a usage adjustment needs a meter")
        if req.quantity is None:
            raise AdjustmentError("a usage adjustment needs a quantity")
        try:
            quantity = Decimal(str(req.quantity))
        except InvalidOperation:
            raise AdjustmentError(f"'{req.quantity}' is not a quantity") from None
        if not quantity.is_finite() or quantity == 0:
            raise AdjustmentError(
                "a usage adjustment needs a non-zero quantity (negative to remove usage)"
            )
        if quantity != quantity.quantize(Decimal("1e-9")):
            raise AdjustmentError("a quantity has at most 9 decimal places")
        if req.amount_minor not in (None, 0):
            raise AdjustmentError("a usage adjustment has a quantity, not an amount")
    return AdjustmentRequest(
        customer_id=customer,
        kind=req.kind,
        period_start=start,
        period_end=end,
        reason_code=reason,
        note=note,
        meter_code=meter,
        amount_minor=amount,
        currency=currency,
        quantity=quantity,
    )


def _row(r: Any) -> Adjustment:
    m = r._mapping
    quantity = m["quantity"]
    return Adjustment(
        **{k: m[k] for k in Adjustment.__dataclass_fields__ if k != "quantity"},
        quantity=None if quantity is None else Decimal(quantity),
    )


def _get(conn: Connection, adjustment_id: str, *, lock: bool = False) -> Adjustment:
    query = sa.select(adjustments).where(adjustments.c.adjustment_id == adjustment_id)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        raise AdjustmentError(f"no adjustment '{adjustment_id}'")
    return _row(row)


def _audit_view(adj: Adjustment) -> dict[str, Any]:
    return {k: v for k, v in adj.as_dict().items() if k != "stripe_error"}


def create_adjustment(
    engine: Engine,
    request: AdjustmentRequest,
    *,
    actor: str,
    known_periods: Iterable[tuple[datetime, datetime]] | None = None,
    known_customers: Iterable[str] | None = None,
    known_meters: Iterable[str] | None = None,
    now: datetime | None = None,
) -> Adjustment:
    """Validate and record an adjustment with its audit row; raises ``AdjustmentError``.

    ``known_periods`` (the customer's billing periods in the warehouse), ``known_customers``
    and ``known_meters``, when given, are what the request must match; the app always passes
    them."""
    req = _validate(
        request,
        actor=actor,
        known_periods=known_periods,
        known_customers=known_customers,
        known_meters=known_meters,
    )
    now = utc_naive(now) if now else utcnow()
    adjustment_id = f"adj_{secrets.token_hex(10)}"
    values = {
        "adjustment_id": adjustment_id,
        "customer_id": req.customer_id,
        "kind": req.kind,
        "meter_code": req.meter_code,
        "period_start": req.period_start,
        "period_end": req.period_end,
        "amount_minor": req.amount_minor,
        "currency": req.currency,
        "quantity": req.quantity,
        "reason_code": req.reason_code,
        "note": req.note,
        "created_by": actor,
        "created_at": now,
        "updated_at": now,
    }
    with engine.begin() as conn:
        conn.execute(adjustments.insert().values(**values))
        created = _get(conn, adjustment_id)
        audit.append(
            conn,
            occurred_at=now,
            actor=actor,
            action="adjustment.create",
            entity_type="adjustment",
            entity_id=adjustment_id,
            before=None,
            after=_audit_view(created),
        )
    return created


def edit_adjustment(
    engine: Engine,
    adjustment_id: str,
    *,
    actor: str,
    note: str | None = None,
    reason_code: str | None = None,
    now: datetime | None = None,
) -> Adjustment:
    """Change the note and/or the reason code (audited, with before and after)."""
    if not actor:
        raise AdjustmentError("an edit needs the signed-in user who makes it")
    now = utc_naive(now) if now else utcnow()
    with engine.begin() as conn:
        before = _get(conn, adjustment_id, lock=True)
        if before.voided_at is not None:
            raise AdjustmentError(f"adjustment {adjustment_id} is void and cannot be edited")
        changes: dict[str, Any] = {}
        if reason_code is not None and reason_code != before.reason_code:
            if reason_code not in REASON_CODES:
                raise AdjustmentError(
                    f"unknown reason code '{reason_code}': use one of " + ", ".join(REASON_CODES)
                )
            changes["reason_code"] = reason_code
        if note is not None and note.strip() != before.note:
            if len(note.strip()) > MAX_NOTE:
                raise AdjustmentError(f"the note is too long; at most {MAX_NOTE} characters")
            changes["note"] = note.strip()
        if changes.get("reason_code", before.reason_code) == "other" and not changes.get(
            "note", before.note
        ):
            raise AdjustmentError("reason 'other' needs a note that explains the adjustment")
        if not changes:
            raise AdjustmentError("nothing to change")
        conn.execute(
            adjustments.update()
            .where(adjustments.c.adjustment_id == adjustment_id)
            .values(**changes, updated_at=now)
        )
        after = _get(conn, adjustment_id)
        audit.append(
            conn,
            occurred_at=now,
            actor=actor,
            action="adjustment.edit",
            entity_type="adjustment",
            entity_id=adjustment_id,
            before={k: getattr(before, k) for k in changes},
            after={k: getattr(after, k) for k in changes},
        )
    return after


def void_adjustment(
    engine: Engine, adjustment_id: str, *, actor: str, reason: str, now: datetime | None = None
) -> Adjustment:
    """Take an adjustment out of force (it stays, with who voided it, when and why)."""
    if not actor:
        raise AdjustmentError("a void needs the signed-in user who makes it")
    if not reason or not reason.strip():
        raise AdjustmentError("say why the adjustment is voided")
    now = utc_naive(now) if now else utcnow()
    with engine.begin() as conn:
        before = _get(conn, adjustment_id, lock=True)
        if before.voided_at is not None:
            raise AdjustmentError(f"adjustment {adjustment_id} is already void")
        conn.execute(
            adjustments.update()
            .where(adjustments.c.adjustment_id == adjustment_id)
            .values(voided_at=now, voided_by=actor, void_reason=reason.strip(), updated_at=now)
        )
        after = _get(conn, adjustment_id)
        audit.append(
            conn,
            occurred_at=now,
            actor=actor,
            action="adjustment.void",
            entity_type="adjustment",
            entity_id=adjustment_id,
            before={"voided_at": None},
            after={"voided_at": now, "voided_by": actor, "void_reason": reason.strip()},
        )
    return after


def record_stripe_result(
    engine: Engine,
    adjustment_id: str,
    *,
    actor: str,
    status: str,
    object_id: str | None = None,
    error: str | None = None,
    now: datetime | None = None,
) -> Adjustment:
    """Keep what Stripe answered for a credit (``created`` with the object id, or ``failed``
    with the error), audited."""
    now = utc_naive(now) if now else utcnow()
    with engine.begin() as conn:
        before = _get(conn, adjustment_id, lock=True)
        conn.execute(
            adjustments.update()
            .where(adjustments.c.adjustment_id == adjustment_id)
            .values(
                stripe_status=status,
                stripe_object_id=object_id or before.stripe_object_id,
                stripe_error=error,
                updated_at=now,
            )
        )
        after = _get(conn, adjustment_id)
        audit.append(
            conn,
            occurred_at=now,
            actor=actor,
            action=f"adjustment.stripe_{status}",
            entity_type="adjustment",
            entity_id=adjustment_id,
            before={
                "stripe_status": before.stripe_status,
                "stripe_object_id": before.stripe_object_id,
            },
            after={
                "stripe_status": after.stripe_status,
                "stripe_object_id": after.stripe_object_id,
                "error": error,
            },
        )
    return after


def get_adjustment(engine: Engine, adjustment_id: str) -> Adjustment:
    with engine.connect() as conn:
        return _get(conn, adjustment_id)


def list_adjustments(
    engine: Engine, *, customer_id: str | None = None, include_voided: bool = True
) -> list[Adjustment]:
    """Newest first."""
    query = sa.select(adjustments).order_by(
        adjustments.c.created_at.desc(), adjustments.c.adjustment_id
    )
    if customer_id is not None:
        query = query.where(adjustments.c.customer_id == customer_id)
    if not include_voided:
        query = query.where(adjustments.c.voided_at.is_(None))
    with engine.connect() as conn:
        return [_row(r) for r in conn.execute(query)]
