"""A small Stripe-compatible HTTP server for tests and benchmarks (stdlib only, 127.0.0.1).

    with StripeTestServer() as server:
        cus = server.create_customer()
        price = server.create_price(unit_amount=1500)
        sub = server.create_subscription(cus["id"], [price])
        server.create_invoice(cus["id"], subscription=sub, n_lines=25)
        client = stripe.StripeClient(server.api_key, base_addresses={"api": server.url})

It serves the read side of the Stripe API that ``meterworks.stripe_sync`` uses, in the current
API shapes (``2025-03-31.basil`` and later: a line's price at ``pricing.price_details.price``,
its subscription at ``parent.subscription_item_details``, ``current_period_start/end`` on
subscription items). Object templates follow Stripe's OpenAPI fixtures with plausible values.

Endpoints (GET): ``/v1/customers``, ``/v1/products``, ``/v1/prices`` (``tiers`` only with
``expand[]=data.tiers``), ``/v1/subscriptions`` (canceled ones only with ``status=all`` or
``status=canceled``), ``/v1/subscription_items?subscription=``, ``/v1/invoices`` (the first
``embed_limit`` lines embedded, ``has_more`` + ``url``), ``/v1/invoices/{id}/lines``,
``/v1/credit_notes`` and ``/v1/credit_notes/{id}/lines``, ``/v1/events`` (newest first, like
every list), ``/v1/billing/meters``, ``/v1/billing/meters/{id}/event_summaries``, and
``/v1/<collection>/{id}`` retrieval. Lists take ``limit`` (1..100), ``starting_after``,
``ending_before`` and ``created[gt|gte|lt|lte]``; unknown parameters, unknown cursors and bad
values answer 400 with Stripe's error body. Requests without the Bearer key answer 401.

Faults: ``inject(status=429, times=6, path_prefix="/v1/invoices")`` answers the next matching
requests with that status (``times=None``: forever); ``Stripe-Should-Retry`` and ``Retry-After``
are sent only when asked for. Every request lands in ``request_log``.

``python tests/stripe_server.py --invoices 100000`` serves a generated data set in the foreground
and prints its URL on the first line of stdout (the benchmark runs it as a child process).
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import copy
import json
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

API_VERSION = "2026-10-28.endive"
DEFAULT_KEY = "sk_test_meterworks_4eC39HqLyjWDarjtT1zdp7dc"
BASE_TIME = 1_767_225_600  # 2026-01-01T00:00:00Z: default clock of a fresh server
MAX_LIMIT = 100

# ---------------------------------------------------------------------------------------------
# Object templates (shape of Stripe's OpenAPI fixtures, current API version)
# ---------------------------------------------------------------------------------------------

_ADDRESS = {
    "city": None,
    "country": None,
    "line1": None,
    "line2": None,
    "postal_code": None,
    "state": None,
}
_PAYMENT_METHOD_OPTIONS = {
    "acss_debit": None,
    "bancontact": None,
    "card": None,
    "customer_balance": None,
    "konbini": None,
    "payto": None,
    "pix": None,
    "sepa_debit": None,
    "upi": None,
    "us_bank_account": None,
}


def _customer(id_: str, created: int, **kw: Any) -> dict[str, Any]:
    obj = {
        "address": dict(_ADDRESS),
        "balance": 0,
        "created": created,
        "currency": "usd",
        "default_source": None,
        "delinquent": False,
        "description": None,
        "discount": None,
        "email": f"billing+{id_[-6:]}@example.com",
        "id": id_,
        "invoice_prefix": id_[-8:].upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": {},
        "name": f"Customer {id_[-6:]}",
        "next_invoice_sequence": 1,
        "object": "customer",
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }
    obj.update(kw)
    return obj


def _product(id_: str, created: int, **kw: Any) -> dict[str, Any]:
    obj = {
        "active": True,
        "created": created,
        "default_price": None,
        "description": None,
        "id": id_,
        "images": [],
        "livemode": False,
        "marketing_features": [],
        "metadata": {},
        "name": f"Product {id_[-6:]}",
        "object": "product",
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": None,
        "type": "service",
        "unit_label": None,
        "updated": created,
        "url": None,
    }
    obj.update(kw)
    return obj


def _price(id_: str, created: int, product: str, **kw: Any) -> dict[str, Any]:
    obj = {
        "active": True,
        "billing_scheme": "per_unit",
        "created": created,
        "currency": "usd",
        "custom_unit_amount": None,
        "id": id_,
        "livemode": False,
        "lookup_key": None,
        "metadata": {},
        "nickname": None,
        "object": "price",
        "product": product,
        "recurring": {
            "interval": "month",
            "interval_count": 1,
            "meter": None,
            "trial_period_days": None,
            "usage_type": "licensed",
        },
        "tax_behavior": "unspecified",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring",
        "unit_amount": 2000,
        "unit_amount_decimal": "2000",
    }
    obj.update(kw)
    return obj


def _subscription_item(
    id_: str, created: int, subscription: str, price: dict[str, Any], period: tuple[int, int], **kw
) -> dict[str, Any]:
    obj = {
        "billing_thresholds": None,
        "created": created,
        "current_period_end": period[1],
        "current_period_start": period[0],
        "discounts": [],
        "id": id_,
        "metadata": {},
        "object": "subscription_item",
        "plan": _plan_of(price),
        "price": _public_price(price),
        "quantity": 1,
        "subscription": subscription,
        "tax_rates": [],
    }
    obj.update(kw)
    return obj


def _subscription(id_: str, created: int, customer: str, **kw: Any) -> dict[str, Any]:
    obj = {
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": created,
        "billing_cycle_anchor_config": None,
        "billing_mode": {"flexible": None, "type": "classic"},
        "billing_thresholds": None,
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": "charge_automatically",
        "created": created,
        "currency": "usd",
        "customer": customer,
        "customer_account": None,
        "days_until_due": None,
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "ended_at": None,
        "id": id_,
        "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
        "latest_invoice": None,
        "livemode": False,
        "metadata": {},
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
        "start_date": created,
        "status": "active",
        "test_clock": None,
        "transfer_data": None,
        "trial_end": None,
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
        "trial_start": None,
    }
    obj.update(kw)
    return obj


def _invoice(id_: str, created: int, customer: str, **kw: Any) -> dict[str, Any]:
    obj = {
        "account_country": "US",
        "account_name": "Meterworks Test Account",
        "account_tax_ids": None,
        "amount_due": 0,
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_remaining": 0,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": False,
        "automatic_tax": {
            "disabled_reason": None,
            "enabled": False,
            "liability": None,
            "provider": None,
            "status": None,
        },
        "automatically_finalizes_at": None,
        "billing_reason": "subscription_cycle",
        "collection_method": "charge_automatically",
        "created": created,
        "currency": "usd",
        "custom_fields": None,
        "customer": customer,
        "customer_account": None,
        "customer_address": None,
        "customer_email": None,
        "customer_name": None,
        "customer_phone": None,
        "customer_shipping": None,
        "customer_tax_exempt": "none",
        "customer_tax_ids": [],
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "due_date": None,
        "effective_at": None,
        "ending_balance": None,
        "footer": None,
        "from_invoice": None,
        "hosted_invoice_url": None,
        "id": id_,
        "invoice_pdf": None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "livemode": False,
        "metadata": {},
        "next_payment_attempt": None,
        "number": None,
        "object": "invoice",
        "on_behalf_of": None,
        "parent": None,
        "payment_settings": {
            "default_mandate": None,
            "payment_method_options": _PAYMENT_METHOD_OPTIONS,
            "payment_method_types": None,
        },
        "period_end": created,
        "period_start": created,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": {
            "amount_tax_display": None,
            "pdf": {"page_size": "auto"},
            "template": None,
            "template_version": None,
        },
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": 0,
        "statement_descriptor": None,
        "status": "draft",
        "status_transitions": {
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        "subtotal": 0,
        "subtotal_excluding_tax": 0,
        "test_clock": None,
        "total": 0,
        "total_discount_amounts": [],
        "total_excluding_tax": 0,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": None,
    }
    obj.update(kw)
    return obj


def _line_item(id_: str, invoice: str, amount: int, **kw: Any) -> dict[str, Any]:
    obj = {
        "amount": amount,
        "currency": "usd",
        "description": None,
        "discount_amounts": [],
        "discountable": True,
        "discounts": [],
        "id": id_,
        "invoice": invoice,
        "livemode": False,
        "metadata": {},
        "object": "line_item",
        "parent": None,
        "period": {"end": 0, "start": 0},
        "pretax_credit_amounts": [],
        "pricing": None,
        "quantity": 1,
        "quantity_decimal": "1",
        "subtotal": amount,
        "taxes": [],
    }
    obj.update(kw)
    return obj


def _credit_note(id_: str, created: int, invoice: dict[str, Any], **kw: Any) -> dict[str, Any]:
    obj = {
        "amount": 0,
        "amount_shipping": 0,
        "created": created,
        "currency": invoice.get("currency", "usd"),
        "customer": invoice["customer"],
        "customer_account": None,
        "customer_balance_transaction": None,
        "discount_amount": 0,
        "discount_amounts": [],
        "effective_at": created,
        "id": id_,
        "invoice": invoice["id"],
        "livemode": False,
        "memo": None,
        "metadata": {},
        "number": f"{invoice['id'][-8:].upper()}-CN-01",
        "object": "credit_note",
        "out_of_band_amount": None,
        "pdf": f"https://pay.stripe.com/credit_notes/{id_}/pdf",
        "post_payment_amount": 0,
        "pre_payment_amount": 0,
        "pretax_credit_amounts": [],
        "reason": "order_change",
        "refunds": [],
        "shipping_cost": None,
        "status": "issued",
        "subtotal": 0,
        "subtotal_excluding_tax": 0,
        "total": 0,
        "total_excluding_tax": 0,
        "total_taxes": [],
        "type": "post_payment",
        "voided_at": None,
    }
    obj.update(kw)
    return obj


def _credit_note_line(id_: str, amount: int, invoice_line: str | None, **kw) -> dict[str, Any]:
    obj = {
        "amount": amount,
        "description": "Credit for usage",
        "discount_amount": 0,
        "discount_amounts": [],
        "id": id_,
        "invoice_line_item": invoice_line,
        "livemode": False,
        "metadata": {},
        "object": "credit_note_line_item",
        "pretax_credit_amounts": [],
        "quantity": 1,
        "tax_rates": [],
        "taxes": [],
        "type": "invoice_line_item" if invoice_line else "custom_line_item",
        "unit_amount": None if invoice_line else amount,
        "unit_amount_decimal": None if invoice_line else str(amount),
    }
    obj.update(kw)
    return obj


def _meter(id_: str, created: int, event_name: str, formula: str, **kw: Any) -> dict[str, Any]:
    obj = {
        "created": created,
        "customer_mapping": {"event_payload_key": "stripe_customer_id", "type": "by_id"},
        "default_aggregation": {"formula": formula},
        "display_name": event_name.replace("_", " ").title(),
        "event_name": event_name,
        "event_time_window": None,
        "id": id_,
        "livemode": False,
        "object": "billing.meter",
        "status": "active",
        "status_transitions": {"deactivated_at": None},
        "updated": created,
        "value_settings": {"event_payload_key": "value"},
    }
    obj.update(kw)
    return obj


def _public_price(price: dict[str, Any]) -> dict[str, Any]:
    """A price as embedded in other objects (``tiers`` is never included unexpanded)."""
    return {k: v for k, v in price.items() if k != "tiers"}


def _plan_of(price: dict[str, Any]) -> dict[str, Any]:
    recurring = price.get("recurring") or {}
    return {
        "active": price["active"],
        "amount": price.get("unit_amount"),
        "amount_decimal": price.get("unit_amount_decimal"),
        "billing_scheme": price["billing_scheme"],
        "created": price["created"],
        "currency": price["currency"],
        "id": price["id"],
        "interval": recurring.get("interval", "month"),
        "interval_count": recurring.get("interval_count", 1),
        "livemode": price["livemode"],
        "metadata": {},
        "meter": recurring.get("meter"),
        "nickname": price.get("nickname"),
        "object": "plan",
        "product": price["product"],
        "tiers_mode": price.get("tiers_mode"),
        "transform_usage": None,
        "trial_period_days": None,
        "usage_type": recurring.get("usage_type", "licensed"),
    }


def _add_month(ts: int) -> int:
    return ts + 30 * 86_400


# ---------------------------------------------------------------------------------------------
# The store and the HTTP handler
# ---------------------------------------------------------------------------------------------

#: object value -> (list path, id prefix)
COLLECTIONS: dict[str, tuple[str, str]] = {
    "customer": ("/v1/customers", "cus"),
    "product": ("/v1/products", "prod"),
    "price": ("/v1/prices", "price"),
    "subscription": ("/v1/subscriptions", "sub"),
    "invoice": ("/v1/invoices", "in"),
    "credit_note": ("/v1/credit_notes", "cn"),
    "event": ("/v1/events", "evt"),
    "billing.meter": ("/v1/billing/meters", "mtr"),
}
_BY_PATH = {path: object_type for object_type, (path, _) in COLLECTIONS.items()}
_COMMON_PARAMS = {"limit", "starting_after", "ending_before", "created", "expand"}
_EXTRA_PARAMS = {
    "customer": {"email"},
    "product": {"active"},
    "price": {"active", "product", "type"},
    "subscription": {"status", "customer", "price"},
    "invoice": {"status", "customer", "subscription"},
    "credit_note": {"invoice", "customer"},
    "event": {"type", "types", "delivery_success"},
    "billing.meter": {"status"},
}
_EXPANDABLE = {"price": {"data.tiers"}}
_SUBSCRIPTION_DEFAULT_HIDDEN = {"canceled", "incomplete_expired"}


class ApiError(Exception):
    """An error answered as Stripe does: status + ``{"error": {...}}``."""

    def __init__(self, status: int, type_: str, message: str, *, code=None, param=None) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"type": type_, "message": message}
        if code:
            self.body["code"] = code
        if param:
            self.body["param"] = param


@dataclass
class Fault:
    status: int
    remaining: int | None  # None: forever
    path_prefix: str
    should_retry: bool | None
    retry_after: float | None


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: dict[str, str]
    status: int


class _Collection:
    """Objects of one type, listed newest first by (created, insertion order)."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.keys: dict[str, tuple[int, int]] = {}
        self._sorted: list[tuple[int, int, str]] | None = None  # ascending (-created, -seq, id)
        self._seq = 0

    def put(self, obj: dict[str, Any]) -> None:
        oid = obj["id"]
        if oid not in self.keys:
            self._seq += 1
            self.keys[oid] = (int(obj.get("created") or 0), self._seq)
            self._sorted = None
        self.objects[oid] = obj

    def remove(self, oid: str) -> None:
        self.objects.pop(oid, None)
        if self.keys.pop(oid, None) is not None:
            self._sorted = None

    def ordered(self) -> list[tuple[int, int, str]]:
        if self._sorted is None:
            self._sorted = sorted((-c, -s, oid) for oid, (c, s) in self.keys.items())
        return self._sorted


class StripeTestServer:
    """In-memory Stripe-compatible server; a context manager, or ``start()`` / ``stop()``."""

    def __init__(
        self,
        api_key: str = DEFAULT_KEY,
        *,
        embed_limit: int = 10,
        clock: int = BASE_TIME,
    ) -> None:
        self.api_key = api_key
        self.embed_limit = embed_limit
        self.clock = clock
        self.request_log: list[LoggedRequest] = []
        self._lock = threading.RLock()
        self._store: dict[str, _Collection] = {t: _Collection() for t in COLLECTIONS}
        self._lines: dict[str, list[dict[str, Any]]] = {}
        self._cn_lines: dict[str, list[dict[str, Any]]] = {}
        self._items: dict[str, list[dict[str, Any]]] = {}
        self._usage: dict[str, list[tuple[str, int, float]]] = {}
        self._faults: list[Fault] = []
        self._counters: dict[str, int] = {}
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> StripeTestServer:
        handler = type("_BoundHandler", (_Handler,), {"server_state": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> StripeTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # -- store ----------------------------------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        with self._lock:
            n = self._counters.get(prefix, 0) + 1
            self._counters[prefix] = n
        return f"{prefix}_T{n:012d}"

    def tick(self, seconds: int = 1) -> int:
        """Advance the server clock and return it (default ``created`` of new objects)."""
        with self._lock:
            self.clock += seconds
            return self.clock

    def add(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Store an object as given (a dict with ``object`` and ``id``); returns it.

        Invoices and credit notes: embedded ``lines.data`` become the object's line list;
        subscriptions: embedded ``items.data`` become its item list.
        """
        obj = copy.deepcopy(obj)
        kind = obj["object"]
        with self._lock:
            if kind == "invoice":
                lines = obj.pop("lines", None) or {}
                self._lines[obj["id"]] = list(lines.get("data", []))
            elif kind == "credit_note":
                lines = obj.pop("lines", None) or {}
                self._cn_lines[obj["id"]] = list(lines.get("data", []))
            elif kind == "subscription":
                items = obj.pop("items", None) or {}
                self._items[obj["id"]] = list(items.get("data", []))
            elif kind not in self._store:
                raise ValueError(f"unsupported object type {kind!r}")
            self._store[kind].put(obj)
        return self.get(kind, obj["id"])

    def get(self, object_type: str, oid: str) -> dict[str, Any]:
        """The object as the API would render it (with embedded lines/items)."""
        with self._lock:
            obj = self._store[object_type].objects[oid]
            return json.loads(json.dumps(self._render(object_type, obj, expand=set())))

    def remove(self, object_type: str, oid: str) -> None:
        with self._lock:
            self._store[object_type].remove(oid)

    def update(
        self,
        object_type: str,
        oid: str,
        changes: dict[str, Any],
        *,
        event_type: str | None = None,
        created: int | None = None,
    ) -> dict[str, Any]:
        """Change stored fields (shallow), optionally emit an event with the new version."""
        with self._lock:
            obj = self._store[object_type].objects[oid]
            obj.update(copy.deepcopy(changes))
        rendered = self.get(object_type, oid)
        if event_type:
            self.emit(event_type, rendered, created=created)
        return rendered

    def emit(
        self,
        event_type: str,
        obj: dict[str, Any],
        *,
        created: int | None = None,
        previous_attributes: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Record an event whose ``data.object`` is ``obj`` (a snapshot)."""
        data: dict[str, Any] = {"object": copy.deepcopy(obj)}
        if previous_attributes is not None:
            data["previous_attributes"] = previous_attributes
        event = {
            "api_version": API_VERSION,
            "created": created if created is not None else self.tick(),
            "data": data,
            "id": self.new_id("evt"),
            "livemode": False,
            "object": "event",
            "pending_webhooks": 0,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
        }
        with self._lock:
            self._store["event"].put(event)
        return event

    def transition_invoice(self, invoice_id: str, status: str, at: int | None = None) -> dict:
        """Finalize (``open``), pay (``paid``) or void (``void``) an invoice and emit
        ``invoice.finalized`` / ``invoice.paid`` / ``invoice.voided`` at ``at``."""
        return invoice_transition(self, invoice_id, status, at if at is not None else self.tick())

    def remove_line(self, invoice_id: str, line_id: str, at: int | None = None) -> dict:
        """Drop a line from a (draft) invoice and emit ``invoice.updated``."""
        with self._lock:
            lines = self._lines[invoice_id]
            lines[:] = [line for line in lines if line["id"] != line_id]
            total = sum(line["amount"] for line in lines)
        changes = {"subtotal": total, "total": total, "amount_due": total}
        return self.update("invoice", invoice_id, changes, event_type="invoice.updated", created=at)

    def clear_events(self) -> None:
        """Forget every event (as if Stripe's 30-day retention had passed)."""
        with self._lock:
            self._store["event"] = _Collection()

    def inject(
        self,
        status: int = 429,
        times: int | None = 1,
        path_prefix: str = "/v1/",
        *,
        should_retry: bool | None = None,
        retry_after: float | None = None,
    ) -> Fault:
        """Answer the next ``times`` requests under ``path_prefix`` with ``status``."""
        fault = Fault(status, times, path_prefix, should_retry, retry_after)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def count_requests(self, path_prefix: str = "/v1/", status: int | None = None) -> int:
        with self._lock:
            return sum(
                1
                for r in self.request_log
                if r.path.startswith(path_prefix) and (status is None or r.status == status)
            )

    # -- builders -------------------------------------------------------------------------------

    def create_customer(self, *, created: int | None = None, **kw: Any) -> dict[str, Any]:
        created = created if created is not None else self.tick()
        return self.add(_customer(kw.pop("id", None) or self.new_id("cus"), created, **kw))

    def create_product(self, *, created: int | None = None, **kw: Any) -> dict[str, Any]:
        created = created if created is not None else self.tick()
        return self.add(_product(kw.pop("id", None) or self.new_id("prod"), created, **kw))

    def create_price(
        self,
        product: str | None = None,
        *,
        unit_amount: int | None = 2000,
        interval: str | None = "month",
        usage_type: str = "licensed",
        meter: str | None = None,
        tiers: list[dict[str, Any]] | None = None,
        tiers_mode: str = "graduated",
        created: int | None = None,
        **kw: Any,
    ) -> dict[str, Any]:
        """A price; ``tiers=[{"up_to": 1000, "unit_amount_decimal": "0.5"}, ...]`` makes it
        tiered, ``meter=`` makes it a metered price (``recurring.meter``)."""
        created = created if created is not None else self.tick()
        if product is None:
            product = self.create_product(created=created)["id"]
        fields: dict[str, Any] = {}
        if interval is None:
            fields.update(type="one_time", recurring=None)
        else:
            fields["recurring"] = {
                "interval": interval,
                "interval_count": 1,
                "meter": meter,
                "trial_period_days": None,
                "usage_type": "metered" if meter else usage_type,
            }
        if tiers is not None:
            fields.update(
                billing_scheme="tiered",
                tiers_mode=tiers_mode,
                unit_amount=None,
                unit_amount_decimal=None,
                tiers=[_tier(t) for t in tiers],
            )
        else:
            fields.update(
                unit_amount=unit_amount,
                unit_amount_decimal=None if unit_amount is None else str(unit_amount),
            )
        fields.update(kw)
        return self.add(
            _price(fields.pop("id", None) or self.new_id("price"), created, product, **fields)
        )

    def create_subscription(
        self,
        customer: str,
        prices: Iterable[dict[str, Any]],
        *,
        status: str = "active",
        created: int | None = None,
        quantity: int = 1,
        **kw: Any,
    ) -> dict[str, Any]:
        created = created if created is not None else self.tick()
        sub_id = kw.pop("id", None) or self.new_id("sub")
        period = (created, _add_month(created))
        items = [
            _subscription_item(self.new_id("si"), created, sub_id, p, period, quantity=quantity)
            for p in prices
        ]
        fields: dict[str, Any] = {"status": status}
        if status in ("canceled", "incomplete_expired"):
            fields.update(canceled_at=created + 86_400, ended_at=created + 86_400)
        if status == "trialing":
            fields.update(trial_start=created, trial_end=created + 14 * 86_400)
        fields.update(kw)
        sub = _subscription(sub_id, created, customer, **fields)
        sub["items"] = {"object": "list", "data": items}
        return self.add(sub)

    def create_invoice(
        self,
        customer: str,
        *,
        subscription: dict[str, Any] | None = None,
        n_lines: int = 1,
        status: str = "draft",
        created: int | None = None,
        unit_amount: int = 1000,
        **kw: Any,
    ) -> dict[str, Any]:
        """An invoice with ``n_lines`` lines, each pointing at a subscription item's price when
        ``subscription`` is given (round-robin over its items)."""
        created = created if created is not None else self.tick()
        inv_id = kw.pop("id", None) or self.new_id("in")
        items = (subscription or {}).get("items", {}).get("data", [])
        period = (created - 30 * 86_400, created)
        lines = []
        for i in range(n_lines):
            item = items[i % len(items)] if items else None
            quantity = 1 + (i % 7)
            amount = unit_amount * quantity
            if item is not None:
                parent = {
                    "invoice_item_details": None,
                    "subscription_item_details": {
                        "invoice_item": None,
                        "proration": False,
                        "proration_details": {"credited_items": None},
                        "subscription": subscription["id"],  # type: ignore[index]
                        "subscription_item": item["id"],
                    },
                    "type": "subscription_item_details",
                }
                price_id, product_id = item["price"]["id"], item["price"]["product"]
            else:
                parent = {
                    "invoice_item_details": {
                        "invoice_item": self.new_id("ii"),
                        "proration": False,
                        "proration_details": {"credited_items": None},
                        "subscription": None,
                    },
                    "subscription_item_details": None,
                    "type": "invoice_item_details",
                }
                price_id, product_id = None, None
            lines.append(
                _line_item(
                    self.new_id("il"),
                    inv_id,
                    amount,
                    description=f"{quantity} x usage",
                    parent=parent,
                    period={"end": period[1], "start": period[0]},
                    pricing={
                        "price_details": {"price": price_id, "product": product_id}
                        if price_id
                        else None,
                        "type": "price_details",
                        "unit_amount_decimal": str(unit_amount),
                    },
                    quantity=quantity,
                    quantity_decimal=str(quantity),
                )
            )
        total = sum(line["amount"] for line in lines)
        fields: dict[str, Any] = {
            "amount_due": total,
            "amount_remaining": total,
            "subtotal": total,
            "subtotal_excluding_tax": total,
            "total": total,
            "total_excluding_tax": total,
            "period_start": period[0],
            "period_end": period[1],
        }
        if subscription is not None:
            fields["parent"] = {
                "quote_details": None,
                "subscription_details": {"metadata": {}, "subscription": subscription["id"]},
                "type": "subscription_details",
            }
        fields.update(_invoice_status_fields(status, created, total))
        fields.update(kw)
        inv = _invoice(inv_id, created, customer, **fields)
        inv["lines"] = {"object": "list", "data": lines}
        return self.add(inv)

    def create_credit_note(
        self,
        invoice: dict[str, Any],
        *,
        n_lines: int = 1,
        amount: int = 500,
        created: int | None = None,
        **kw: Any,
    ) -> dict[str, Any]:
        created = created if created is not None else self.tick()
        cn_id = kw.pop("id", None) or self.new_id("cn")
        inv_lines = self._lines.get(invoice["id"], [])
        lines = [
            _credit_note_line(
                self.new_id("cnli"), amount, inv_lines[i]["id"] if i < len(inv_lines) else None
            )
            for i in range(n_lines)
        ]
        total = amount * n_lines
        fields = dict(amount=total, subtotal=total, subtotal_excluding_tax=total, total=total)
        fields.update(total_excluding_tax=total, post_payment_amount=total)
        fields.update(kw)
        cn = _credit_note(cn_id, created, invoice, **fields)
        cn["lines"] = {"object": "list", "data": lines}
        return self.add(cn)

    def create_meter(
        self,
        event_name: str = "api_request",
        *,
        formula: str = "sum",
        created: int | None = None,
        **kw: Any,
    ) -> dict[str, Any]:
        created = created if created is not None else self.tick()
        return self.add(
            _meter(kw.pop("id", None) or self.new_id("mtr"), created, event_name, formula, **kw)
        )

    def add_usage(self, meter: str, customer: str, timestamp: int, value: float = 1) -> None:
        """A meter event (what event summaries aggregate)."""
        with self._lock:
            self._usage.setdefault(meter, []).append((customer, int(timestamp), value))

    # -- rendering ------------------------------------------------------------------------------

    def _render(self, object_type: str, obj: dict[str, Any], expand: set[str]) -> dict[str, Any]:
        if object_type == "invoice":
            lines = self._lines.get(obj["id"], [])
            return {**obj, "lines": self._embedded(lines, f"/v1/invoices/{obj['id']}/lines")}
        if object_type == "credit_note":
            lines = self._cn_lines.get(obj["id"], [])
            return {**obj, "lines": self._embedded(lines, f"/v1/credit_notes/{obj['id']}/lines")}
        if object_type == "subscription":
            items = self._items.get(obj["id"], [])
            url = f"/v1/subscription_items?subscription={obj['id']}"
            return {**obj, "items": self._embedded(items, url)}
        if object_type == "price" and "tiers" in obj and "tiers" not in expand:
            return _public_price(obj)
        return obj

    def _embedded(self, rows: list[dict[str, Any]], url: str) -> dict[str, Any]:
        return {
            "data": rows[: self.embed_limit],
            "has_more": len(rows) > self.embed_limit,
            "object": "list",
            "url": url,
        }

    # -- request handling -----------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: Any) -> tuple[int, dict[str, str], Any]:
        parts = urlsplit(raw_path)
        path = parts.path.rstrip("/")
        query_pairs = parse_qsl(parts.query, keep_blank_values=True)
        query = dict(query_pairs)
        status, extra, body = self._dispatch(method, path, query_pairs, headers)
        with self._lock:
            self.request_log.append(LoggedRequest(method, path, query, status))
        return status, extra, body

    def _dispatch(self, method, path, query_pairs, headers) -> tuple[int, dict[str, str], Any]:
        auth = headers.get("Authorization", "")
        if auth != f"Bearer {self.api_key}":
            shown = auth.removeprefix("Bearer ")
            masked = f"{shown[:7]}{'*' * 8}{shown[-4:]}" if len(shown) > 12 else "(none)"
            err = ApiError(401, "invalid_request_error", f"Invalid API Key provided: {masked}")
            return 401, {}, {"error": err.body}
        with self._lock:
            for fault in self._faults:
                if path.startswith(fault.path_prefix) and fault.remaining != 0:
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    extra: dict[str, str] = {}
                    if fault.should_retry is not None:
                        extra["Stripe-Should-Retry"] = "true" if fault.should_retry else "false"
                    if fault.retry_after is not None:
                        extra["Retry-After"] = str(fault.retry_after)
                    if fault.status == 429:
                        body = {
                            "type": "invalid_request_error",
                            "code": "rate_limit",
                            "message": "Too many requests hit the API too quickly.",
                        }
                    else:
                        body = {
                            "type": "api_error",
                            "message": "An unknown error occurred (injected).",
                        }
                    return fault.status, extra, {"error": body}
        if method != "GET":
            err = ApiError(405, "invalid_request_error", f"Unsupported method {method}")
            return 405, {}, {"error": err.body}
        try:
            with self._lock:
                return 200, {}, self._route(path, query_pairs)
        except ApiError as e:
            return e.status, {}, {"error": e.body}

    def _route(self, path: str, pairs: list[tuple[str, str]]) -> Any:
        if path in _BY_PATH:
            return self._list_collection(_BY_PATH[path], path, pairs)
        if path == "/v1/subscription_items":
            params = _parse_params(pairs, {"subscription"} | _COMMON_PARAMS - {"created"})
            sub = params.get("subscription")
            if not sub:
                raise ApiError(
                    400,
                    "invalid_request_error",
                    "Missing required param: subscription.",
                    code="parameter_missing",
                    param="subscription",
                )
            if sub not in self._store["subscription"].objects:
                raise _missing("subscription", sub, "subscription")
            return self._list_rows(self._items.get(sub, []), path, params)
        segs = path.strip("/").split("/")
        if (
            len(segs) == 4
            and segs[0] == "v1"
            and segs[3] == "lines"
            and segs[1]
            in (
                "invoices",
                "credit_notes",
            )
        ):
            kind = "invoice" if segs[1] == "invoices" else "credit_note"
            if segs[2] not in self._store[kind].objects:
                raise _missing(kind, segs[2], "id")
            rows = (self._lines if kind == "invoice" else self._cn_lines).get(segs[2], [])
            params = _parse_params(pairs, _COMMON_PARAMS - {"created"})
            return self._list_rows(rows, path, params)
        if len(segs) == 5 and segs[1:3] == ["billing", "meters"] and segs[4] == "event_summaries":
            return self._event_summaries(segs[3], path, pairs)
        parent = "/" + "/".join(segs[:-1])
        if parent in _BY_PATH:
            kind = _BY_PATH[parent]
            params = _parse_params(pairs, {"expand"})
            obj = self._store[kind].objects.get(segs[-1])
            if obj is None:
                raise _missing(kind, segs[-1], "id")
            return self._render(kind, obj, set(params.get("expand", [])))
        raise ApiError(
            404, "invalid_request_error", f"Unrecognized request URL (GET: {path}).", code=None
        )

    def _list_collection(self, kind: str, path: str, pairs: list[tuple[str, str]]) -> Any:
        params = _parse_params(pairs, _COMMON_PARAMS | _EXTRA_PARAMS[kind])
        limit = _limit(params)
        expand = set(params.get("expand", []))
        bad = expand - _EXPANDABLE.get(kind, set())
        if bad:
            name = sorted(bad)[0]
            raise ApiError(
                400,
                "invalid_request_error",
                f"This property cannot be expanded ({name}).",
                param="expand",
            )
        bounds = _created_bounds(params.get("created"))
        coll = self._store[kind]
        ordered = coll.ordered()
        filters = _filters(kind, params)

        def ok(oid: str) -> bool:
            obj = coll.objects[oid]
            created = coll.keys[oid][0]
            if bounds["lt"] is not None and not created < bounds["lt"]:
                return False
            if bounds["lte"] is not None and not created <= bounds["lte"]:
                return False
            return all(f(obj) for f in filters)

        def below_lower(oid: str) -> bool:  # ordered newest first: everything after is older
            created = coll.keys[oid][0]
            return (bounds["gt"] is not None and created <= bounds["gt"]) or (
                bounds["gte"] is not None and created < bounds["gte"]
            )

        after, before = params.get("starting_after"), params.get("ending_before")
        page: list[str] = []
        if before:
            if before not in coll.keys:
                raise _missing(kind, before, "ending_before")
            c, s = coll.keys[before]
            pos = bisect.bisect_left(ordered, (-c, -s, before))
            newer = [
                oid for _, _, oid in reversed(ordered[:pos]) if not below_lower(oid) and ok(oid)
            ]
            page = list(reversed(newer[:limit]))
            has_more = len(newer) > limit
        else:
            start = 0
            if after:
                if after not in coll.keys:
                    raise _missing(kind, after, "starting_after")
                c, s = coll.keys[after]
                start = bisect.bisect_right(ordered, (-c, -s, after))
            has_more = False
            for _, _, oid in ordered[start:]:
                if below_lower(oid):
                    break
                if ok(oid):
                    if len(page) == limit:
                        has_more = True
                        break
                    page.append(oid)
        inner = {e.removeprefix("data.") for e in expand}
        data = [self._render(kind, coll.objects[oid], inner) for oid in page]
        return {"object": "list", "data": data, "has_more": has_more, "url": path}

    def _list_rows(self, rows: list[dict[str, Any]], path: str, params: dict[str, Any]) -> Any:
        limit = _limit(params)
        ids = [r["id"] for r in rows]
        after, before = params.get("starting_after"), params.get("ending_before")
        if after:
            if after not in ids:
                raise _missing("object", after, "starting_after")
            start = ids.index(after) + 1
            page = rows[start : start + limit]
            has_more = start + limit < len(rows)
        elif before:
            if before not in ids:
                raise _missing("object", before, "ending_before")
            end = ids.index(before)
            page = rows[max(0, end - limit) : end]
            has_more = end - limit > 0
        else:
            page, has_more = rows[:limit], len(rows) > limit
        return {"object": "list", "data": page, "has_more": has_more, "url": path}

    def _event_summaries(self, meter_id: str, path: str, pairs: list[tuple[str, str]]) -> Any:
        allowed = {"customer", "start_time", "end_time", "value_grouping_window"}
        params = _parse_params(pairs, allowed | (_COMMON_PARAMS - {"created"}))
        meter = self._store["billing.meter"].objects.get(meter_id)
        if meter is None:
            raise _missing("billing.meter", meter_id, "id")
        for name in ("customer", "start_time", "end_time"):
            if not params.get(name):
                raise ApiError(
                    400,
                    "invalid_request_error",
                    f"Missing required param: {name}.",
                    code="parameter_missing",
                    param=name,
                )
        start, end = _int_param(params, "start_time"), _int_param(params, "end_time")
        window = params.get("value_grouping_window")
        step = {"day": 86_400, "hour": 3_600, None: None}.get(window, -1)
        if step == -1:
            raise ApiError(400, "invalid_request_error", "Invalid value_grouping_window.")
        align = step or 60
        for name, value in (("start_time", start), ("end_time", end)):
            if value % align:
                raise ApiError(
                    400,
                    "invalid_request_error",
                    f"{name} must be aligned to {window or 'minute'} boundaries.",
                    param=name,
                )
        if end <= start:
            raise ApiError(400, "invalid_request_error", "end_time must be after start_time.")
        customer = params["customer"]
        formula = meter["default_aggregation"]["formula"]
        events = sorted((ts, v) for c, ts, v in self._usage.get(meter_id, []) if c == customer)
        windows = (
            [(s, min(s + step, end)) for s in range(start, end, step)] if step else [(start, end)]
        )
        rows = []
        for ws, we in reversed(windows):  # newest window first
            values = [v for ts, v in events if ws <= ts < we]
            if not values:
                continue
            if formula == "count":
                agg: float = len(values)
            elif formula == "last":
                agg = values[-1]
            else:
                agg = sum(values)
            rows.append(
                {
                    "aggregated_value": agg,
                    "end_time": we,
                    "id": f"mtrusg_test_{meter_id[-12:]}{customer[-12:]}{ws:x}{we:x}",
                    "livemode": False,
                    "meter": meter_id,
                    "object": "billing.meter_event_summary",
                    "start_time": ws,
                }
            )
        return self._list_rows(rows, path, params)


def _tier(t: dict[str, Any]) -> dict[str, Any]:
    unit = t.get("unit_amount_decimal", t.get("unit_amount"))
    flat = t.get("flat_amount_decimal", t.get("flat_amount"))
    return {
        "flat_amount": int(float(flat)) if flat is not None else None,
        "flat_amount_decimal": str(flat) if flat is not None else None,
        "unit_amount": int(float(unit)) if unit is not None and float(unit).is_integer() else None,
        "unit_amount_decimal": str(unit) if unit is not None else None,
        "up_to": t.get("up_to"),
    }


def _invoice_status_fields(status: str, created: int, total: int) -> dict[str, Any]:
    transitions = {
        "finalized_at": None,
        "marked_uncollectible_at": None,
        "paid_at": None,
        "voided_at": None,
    }
    fields: dict[str, Any] = {"status": status, "status_transitions": transitions}
    if status != "draft":
        transitions["finalized_at"] = created + 3600
        fields.update(effective_at=created + 3600, number=None)
    if status == "paid":
        transitions["paid_at"] = created + 7200
        fields.update(amount_paid=total, amount_remaining=0, attempted=True, attempt_count=1)
    elif status == "void":
        transitions["voided_at"] = created + 7200
        fields.update(amount_remaining=0)
    elif status == "uncollectible":
        transitions["marked_uncollectible_at"] = created + 7200
    return fields


def invoice_transition(server: StripeTestServer, invoice_id: str, status: str, at: int) -> dict:
    """Move a stored invoice to ``open`` (finalized), ``paid`` or ``void`` at time ``at`` and
    emit the matching event (``invoice.finalized``, ``invoice.paid``, ``invoice.voided``)."""
    inv = server.get("invoice", invoice_id)
    transitions = dict(inv["status_transitions"])
    changes: dict[str, Any] = {"status": status, "status_transitions": transitions}
    if status == "open":
        transitions["finalized_at"] = at
        changes.update(effective_at=at, number=f"MW-{invoice_id[-6:]}")
        event = "invoice.finalized"
    elif status == "paid":
        transitions["paid_at"] = at
        changes.update(amount_paid=inv["amount_due"], amount_remaining=0, attempted=True)
        event = "invoice.paid"
    elif status == "void":
        transitions["voided_at"] = at
        changes.update(amount_remaining=0)
        event = "invoice.voided"
    else:
        raise ValueError(status)
    return server.update("invoice", invoice_id, changes, event_type=event, created=at)


def _missing(kind: str, oid: str, param: str) -> ApiError:
    return ApiError(
        404 if param == "id" else 400,
        "invalid_request_error",
        f"No such {kind}: '{oid}'",
        code="resource_missing",
        param=param,
    )


def _parse_params(pairs: list[tuple[str, str]], allowed: set[str]) -> dict[str, Any]:
    """Decode Stripe's form encoding: ``created[gt]=1``, ``expand[0]=x`` / ``expand[]=x``."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        base, _, rest = key.partition("[")
        if base not in allowed:
            raise ApiError(
                400,
                "invalid_request_error",
                f"Received unknown parameter: {base}",
                param=base,
            )
        if not rest:
            out[base] = value
            continue
        sub = rest.rstrip("]")
        if base in ("expand", "types") and (sub == "" or sub.isdigit()):
            out.setdefault(base, []).append(value)
        else:
            target = out.setdefault(base, {})
            if not isinstance(target, dict):
                raise ApiError(400, "invalid_request_error", f"Invalid {base}", param=base)
            target[sub] = value
    return out


def _int_param(params: dict[str, Any], name: str) -> int:
    try:
        return int(params[name])
    except (TypeError, ValueError):
        raise ApiError(
            400, "invalid_request_error", f"Invalid integer: {params[name]}", param=name
        ) from None


def _limit(params: dict[str, Any]) -> int:
    if "limit" not in params:
        return 10
    limit = _int_param(params, "limit")
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(
            400,
            "invalid_request_error",
            f"Invalid limit: must be between 1 and {MAX_LIMIT}",
            param="limit",
        )
    return limit


def _created_bounds(created: Any) -> dict[str, int | None]:
    bounds: dict[str, int | None] = {"gt": None, "gte": None, "lt": None, "lte": None}
    if created is None:
        return bounds
    if isinstance(created, str):
        value = _int_param({"created": created}, "created")
        return {"gt": None, "gte": value, "lt": None, "lte": value}
    for op, value in created.items():
        if op not in bounds:
            raise ApiError(400, "invalid_request_error", f"Invalid created[{op}]", param="created")
        bounds[op] = _int_param({"created": value}, "created")
    return bounds


def _filters(kind: str, params: dict[str, Any]) -> list:
    filters = []
    if kind == "subscription":
        status = params.get("status")
        if status is None:
            filters.append(lambda o: o["status"] not in _SUBSCRIPTION_DEFAULT_HIDDEN)
        elif status == "ended":
            filters.append(lambda o: o["status"] in _SUBSCRIPTION_DEFAULT_HIDDEN)
        elif status != "all":
            filters.append(lambda o: o["status"] == status)
    elif kind in ("invoice",) and "status" in params:
        filters.append(lambda o: o["status"] == params["status"])
    if kind == "event":
        types = params.get("types") or ([params["type"]] if "type" in params else [])
        if types:
            filters.append(lambda o: any(_type_match(t, o["type"]) for t in types))
    for field in ("customer", "product", "invoice"):
        if field in params and kind != "event":
            filters.append(lambda o, f=field: o.get(f) == params[f])
    return filters


def _type_match(pattern: str, value: str) -> bool:
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return value == pattern


class _Handler(BaseHTTPRequestHandler):
    server_state: StripeTestServer
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's requests session expects
    disable_nagle_algorithm = True  # headers and body leave in separate writes

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        status, extra, body = self.server_state.handle(method, self.path, self.headers)
        payload = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Request-Id", f"req_{threading.get_ident():x}{time.monotonic_ns():x}")
        self.send_header("Stripe-Version", self.headers.get("Stripe-Version") or API_VERSION)
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


# ---------------------------------------------------------------------------------------------
# A generated account (benchmark and manual runs)
# ---------------------------------------------------------------------------------------------


def populate(
    server: StripeTestServer,
    *,
    invoices: int,
    lines_per_invoice: int = 3,
    customers: int | None = None,
    start: int | None = None,
) -> dict[str, int]:
    """Fill ``server`` with a usage-billed account: products, flat + tiered + metered prices,
    customers each with a subscription (about 10 % canceled), ``invoices`` invoices of
    ``lines_per_invoice`` lines spread over the year before ``start`` (mostly paid), a credit
    note for 1 % of them, one meter with a few days of usage for the first customers."""
    start = start if start is not None else server.clock
    customers = customers or max(10, min(5_000, invoices // 20))
    first = start - 365 * 86_400
    meter = server.create_meter("api_request", created=first)
    plans = [
        server.create_price(unit_amount=4900, created=first),
        server.create_price(
            tiers=[
                {"up_to": 1000, "unit_amount_decimal": "5", "flat_amount": 0},
                {"up_to": None, "unit_amount_decimal": "2.5"},
            ],
            created=first,
        ),
        server.create_price(
            unit_amount=None, meter=meter["id"], created=first, unit_amount_decimal="0.25"
        ),
    ]
    subs = []
    statuses = ["active"] * 8 + ["canceled", "past_due"]
    for i in range(customers):
        created = first + i * 60
        cus = server.create_customer(created=created)
        prices = [plans[i % 2], plans[2]]
        subs.append(
            server.create_subscription(
                cus["id"], prices, status=statuses[i % len(statuses)], created=created + 10
            )
        )
    inv_statuses = ["paid"] * 16 + ["open", "void", "uncollectible", "draft"]
    span = max(1, start - 86_400 - (first + customers * 60))
    credit_notes = 0
    for i in range(invoices):
        sub = subs[i % customers]
        created = first + customers * 60 + (i * span) // max(1, invoices)
        inv = server.create_invoice(
            sub["customer"],
            subscription=sub,
            n_lines=lines_per_invoice,
            status=inv_statuses[i % len(inv_statuses)],
            created=created,
        )
        if i % 100 == 99:
            server.create_credit_note(inv, created=created + 3600)
            credit_notes += 1
    day0 = (start // 86_400) * 86_400
    for i in range(min(customers, 20)):
        for d in range(1, 6):
            server.add_usage(meter["id"], subs[i]["customer"], day0 - d * 86_400 + 3600, 10 + i)
    return {
        "customers": customers,
        "subscriptions": customers,
        "invoices": invoices,
        "line_items": invoices * lines_per_invoice,
        "credit_notes": credit_notes,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invoices", type=int, default=1_000)
    parser.add_argument("--lines", type=int, default=3)
    parser.add_argument("--customers", type=int, default=None)
    parser.add_argument("--api-key", default=DEFAULT_KEY)
    args = parser.parse_args(argv)
    server = StripeTestServer(args.api_key)
    counts = populate(
        server, invoices=args.invoices, lines_per_invoice=args.lines, customers=args.customers
    )
    with server:
        print(server.url, json.dumps(counts), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            sys.stdin.read()  # serve until stdin closes (the parent ends us that way)
    return 0


if __name__ == "__main__":
    sys.exit(main())
