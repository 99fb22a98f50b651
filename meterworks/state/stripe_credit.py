"""A credit adjustment created in Stripe as a customer balance transaction, idempotently.

The balance transaction's amount is negative (a credit the next invoice draws down), in the
adjustment's currency, with ``metadata.meterworks_adjustment_id``. The request carries
``Idempotency-Key: meterworks-adjustment-<adjustment id>``, so a retry after a timeout or a
second click never credits twice; an adjustment that already has its Stripe object is not sent
again at all.
"""

from __future__ import annotations

import os
from typing import Any

import stripe
from sqlalchemy.engine import Engine

from meterworks.state.adjustments import (
    CREDIT,
    Adjustment,
    AdjustmentError,
    get_adjustment,
    record_stripe_result,
)


def idempotency_key(adjustment_id: str) -> str:
    return f"meterworks-adjustment-{adjustment_id}"


def stripe_configured() -> bool:
    return bool(os.environ.get("STRIPE_API_KEY"))


def make_client(api_key: str | None = None, api_base: str | None = None) -> stripe.StripeClient:
    key = api_key or os.environ.get("STRIPE_API_KEY")
    if not key:
        raise AdjustmentError("no STRIPE_API_KEY configured")
    base = api_base or os.environ.get("STRIPE_API_BASE") or None
    return stripe.StripeClient(
        key, base_addresses={"api": base} if base else None, max_network_retries=2
    )


def push_credit(
    engine: Engine,
    adjustment_id: str,
    *,
    stripe_customer_id: str,
    actor: str,
    client: stripe.StripeClient | None = None,
) -> Adjustment:
    """Create the credit in Stripe (once) and record the outcome on the adjustment. A Stripe
    error is recorded as ``failed`` (with its message, never the key) and re-raised as an
    ``AdjustmentError``; calling again retries under the same idempotency key."""
    adj = get_adjustment(engine, adjustment_id)
    if adj.kind != CREDIT:
        raise AdjustmentError("only credits go to Stripe")
    if adj.voided_at is not None:
        raise AdjustmentError(f"adjustment {adjustment_id} is void")
    if adj.stripe_status == "created" and adj.stripe_object_id:
        return adj
    client = client or make_client()
    params: dict[str, Any] = {
        "amount": -int(adj.amount_minor or 0),
        "currency": adj.currency,
        "description": f"Meterworks adjustment {adj.adjustment_id} ({adj.reason_code})"[:350],
        "metadata": {
            "meterworks_adjustment_id": adj.adjustment_id,
            "meterworks_customer_id": adj.customer_id,
            "reason_code": adj.reason_code,
            "period_start": adj.period_start.isoformat(),
            "period_end": adj.period_end.isoformat(),
            "created_by": adj.created_by[:500],
        },
    }
    try:
        txn = client.v1.customers.balance_transactions.create(
            stripe_customer_id,
            params,  # type: ignore[arg-type]
            {"idempotency_key": idempotency_key(adj.adjustment_id)},
        )
    except stripe.StripeError as exc:
        status = getattr(exc, "http_status", None)
        detail = getattr(exc, "user_message", None) or str(exc) or type(exc).__name__
        message = f"Stripe refused the credit ({type(exc).__name__}"
        message += f", HTTP {status}): {detail}" if status else f"): {detail}"
        record_stripe_result(engine, adjustment_id, actor=actor, status="failed", error=message)
        raise AdjustmentError(message) from None
    return record_stripe_result(
        engine, adjustment_id, actor=actor, status="created", object_id=txn.id
    )
