"""Reading a Stripe account through the official SDK (``stripe`` 16).

Requests go through ``StripeClient.raw_request`` -- the SDK's public call for any endpoint: its
authentication, API version pinning, ``max_network_retries`` (5xx, connection errors, 409, and
429 with ``Stripe-Should-Retry: true``) and error classes -- and the JSON is stored exactly as
sent. (The typed services, ``client.v1.invoices.list``, build a ``StripeObject`` tree for every
object; on a page of 100 invoices that is ~8x slower than the request itself, and
``to_dict()`` only gives the same JSON back.)

On top of the SDK: a bounded backoff for HTTP 429 (``Retry-After`` when sent, else exponential
with jitter, capped; ``max_attempts`` in all, then :class:`StripeSyncError`), pagination with
``starting_after``/``has_more``, all pages of invoice lines, credit note lines and subscription
items, price tiers (``expand[]=data.tiers``), and billing meter event summaries.
"""

from __future__ import annotations

import email.utils
import os
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import stripe

from meterworks.stripe_sync.errors import StripeSyncError
from meterworks.stripe_sync.schema import CHILD_TYPE
from meterworks.stripe_sync.store import CURRENT, metered_customers
from meterworks.stripe_sync.sync import SyncContext

#: Stripe keeps events for 30 days.
EVENT_RETENTION_SECONDS = 30 * 86_400
#: With no event seen yet, events are read from this long before the previous sync.
EVENT_LAG_SECONDS = 300

#: resource -> (list path, fixed list parameters); listed in this order.
RESOURCES: dict[str, tuple[str, dict[str, Any]]] = {
    "customers": ("/v1/customers", {}),
    "products": ("/v1/products", {}),
    "prices": ("/v1/prices", {"expand": ["data.tiers"]}),
    "subscriptions": ("/v1/subscriptions", {"status": "all"}),
    "invoices": ("/v1/invoices", {}),
    "credit_notes": ("/v1/credit_notes", {}),
}
#: ``object`` values whose events carry a new version worth storing.
EVENT_OBJECTS = frozenset(
    {"customer", "product", "price", "subscription", "invoice", "credit_note", "billing.meter"}
)
_EMBEDDED_KEY = {"invoice": "lines", "credit_note": "lines", "subscription": "items"}


class _CursorUnknown(Exception):
    pass


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    try:
        value = headers.get(name)
        if value is None:
            value = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
    except AttributeError:
        return None
    return None if value is None else str(value)


def _retry_after(headers: Any) -> float | None:
    value = _header(headers, "Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class StripeApiSource:
    """A Stripe account read through the API (``api_base`` for a Stripe-compatible server).

    ``max_network_retries`` is the SDK's own retry budget per request; ``backoff_base``,
    ``backoff_cap`` and ``max_attempts`` bound the extra 429 backoff (seconds / attempts);
    ``meter_summary_days`` is the window of billing meter event summaries (0: none).
    """

    def __init__(
        self,
        api_key: str,
        api_base: str | None = None,
        max_network_retries: int = 5,
        page_size: int = 100,
        *,
        backoff_base: float = 0.5,
        backoff_cap: float = 20.0,
        max_attempts: int = 8,
        meter_summary_days: int = 35,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not isinstance(api_key, str) or not api_key.strip():
            raise StripeSyncError("a Stripe API key is required")
        if not 1 <= page_size <= 100:
            raise ValueError("page_size must be between 1 and 100")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._api_key = api_key.strip()
        self.api_base = api_base.rstrip("/") if api_base else None
        self.max_network_retries = max_network_retries
        self.page_size = page_size
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_attempts = max_attempts
        self.meter_summary_days = meter_summary_days
        self._sleep = sleep
        self.name = (
            "stripe" if self.api_base is None else f"stripe@{urlsplit(self.api_base).netloc}"
        )
        self._http_requests = 0
        self._sdk_calls = 0
        self._backoff_retries = 0
        self._client = self._make_client()

    @classmethod
    def from_env(cls) -> StripeApiSource | None:
        """From ``STRIPE_API_KEY`` (and optional ``STRIPE_API_BASE``); None without a key."""
        key = os.environ.get("STRIPE_API_KEY", "").strip()
        if not key:
            return None
        return cls(key, api_base=os.environ.get("STRIPE_API_BASE", "").strip() or None)

    def __repr__(self) -> str:
        return f"StripeApiSource(name={self.name!r}, api_key='[redacted]')"

    # -- HTTP --------------------------------------------------------------------------------

    def _make_client(self) -> stripe.StripeClient:
        source = self
        base_cls = type(stripe.new_default_http_client())

        class _CountingHTTPClient(base_cls):  # type: ignore[misc, valid-type]
            """The SDK's default HTTP client, counting every request it sends (retries too)."""

            def request(self, *args: Any, **kwargs: Any) -> Any:
                source._http_requests += 1
                return super().request(*args, **kwargs)

        return stripe.StripeClient(
            self._api_key,
            base_addresses={"api": self.api_base} if self.api_base else None,
            max_network_retries=self.max_network_retries,
            http_client=_CountingHTTPClient(),
        )

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.backoff_cap)
        delay = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
        return delay * random.uniform(0.5, 1.0)

    def _error(self, e: stripe.StripeError, path: str) -> StripeSyncError:
        status = getattr(e, "http_status", None)
        detail = getattr(e, "user_message", None) or str(e) or ""
        where = f"GET {path}"
        what = type(e).__name__ + (f" (HTTP {status})" if status else "")
        return StripeSyncError(
            f"Stripe {where} failed: {what}: {detail}",
            status=status,
            code=getattr(e, "code", None),
            secrets=(self._api_key,),
        )

    def _get(self, path: str, params: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """One GET with the 429 backoff around the SDK's own retries: (body, Stripe-Version)."""
        for attempt in range(1, self.max_attempts + 1):
            self._sdk_calls += 1
            try:
                resp = self._client.raw_request("get", path, **params)
            except stripe.RateLimitError as e:
                if attempt >= self.max_attempts:
                    raise StripeSyncError(
                        f"Stripe GET {path} failed: still rate limited (HTTP 429) after "
                        f"{attempt} attempts",
                        status=429,
                        code=getattr(e, "code", None),
                        secrets=(self._api_key,),
                    ) from None
                self._backoff_retries += 1
                self._sleep(self._backoff(attempt, _retry_after(getattr(e, "headers", None))))
                continue
            except stripe.StripeError as e:
                raise self._error(e, path) from None
            body = getattr(resp, "data", None)
            if not isinstance(body, dict):
                raise StripeSyncError(f"Stripe GET {path}: the response is not a JSON object")
            return body, _header(getattr(resp, "headers", None), "Stripe-Version")
        raise AssertionError("unreachable")  # pragma: no cover

    def _pages(
        self, path: str, params: dict[str, Any]
    ) -> Iterator[tuple[list[dict[str, Any]], str | None]]:
        """Every page of a list endpoint, following ``has_more`` with ``starting_after``."""
        after: str | None = None
        while True:
            page_params = {"limit": self.page_size, **params}
            if after is not None:
                page_params["starting_after"] = after
            body, version = self._get(path, page_params)
            rows = body.get("data")
            if body.get("object") != "list" or not isinstance(rows, list):
                raise StripeSyncError(f"Stripe GET {path}: expected a list object")
            yield rows, version
            if not body.get("has_more") or not rows:
                return
            last = rows[-1].get("id") if isinstance(rows[-1], dict) else None
            if not isinstance(last, str) or last == after:
                raise StripeSyncError(f"Stripe GET {path}: pagination did not advance")
            after = last

    # -- collecting ---------------------------------------------------------------------------

    def collect(self, ctx: SyncContext, *, full: bool) -> None:
        self._http_requests = self._sdk_calls = self._backoff_retries = 0
        try:
            if not full and "events" not in ctx.state:
                ctx.note("no cursor yet: full sync")
                full = True
            if not full:
                checked = ctx.state["events"]["updated_at"]
                checked_ts = int(checked.replace(tzinfo=UTC).timestamp())
                if ctx.now_ts - checked_ts > EVENT_RETENTION_SECONDS:
                    ctx.fall_back(
                        f"events cursor from {checked:%Y-%m-%d %H:%M} UTC is older than "
                        "Stripe's 30-day event retention"
                    )
                    full = True
            if not full:
                try:
                    self._incremental(ctx)
                    ctx.mode = "incremental"
                    return
                except _CursorUnknown as e:
                    ctx.fall_back(str(e))
            self._full(ctx)
            ctx.mode = "full"
        finally:
            ctx.requests = self._http_requests
            sdk_retries = max(0, self._http_requests - self._sdk_calls)
            ctx.retries = self._backoff_retries + sdk_retries

    def _full(self, ctx: SyncContext) -> None:
        body, _ = self._get("/v1/events", {"limit": 1})
        newest = (body.get("data") or [None])[0]
        for resource in RESOURCES:
            max_created = self._list(ctx, resource, None)
            ctx.set_state(resource, created_cursor=max_created, last_full_sync_at=ctx.now_naive)
        self._meters(ctx)
        ctx.set_state(
            "events",
            last_event_id=newest["id"] if newest else None,
            last_event_created=newest["created"] if newest else None,
            last_full_sync_at=ctx.now_naive,
        )

    def _incremental(self, ctx: SyncContext) -> None:
        self._apply_events(ctx)
        for resource in RESOURCES:
            cursor = ctx.state.get(resource, {}).get("created_cursor")
            max_created = self._list(ctx, resource, cursor)
            if cursor is not None and (max_created is None or max_created < cursor):
                max_created = cursor
            ctx.set_state(resource, created_cursor=max_created)
        self._meters(ctx)

    def _list(self, ctx: SyncContext, resource: str, created_gt: int | None) -> int | None:
        path, fixed = RESOURCES[resource]
        params = dict(fixed)
        if created_gt is not None:
            params["created"] = {"gt": created_gt}
        max_created: int | None = None
        for rows, version in self._pages(path, params):
            for obj in rows:
                self._stage(ctx, obj, version_seen="list", as_of=CURRENT, api_version=version)
                created = obj.get("created")
                if isinstance(created, int) and (max_created is None or created > max_created):
                    max_created = created
        return max_created

    def _apply_events(self, ctx: SyncContext) -> None:
        """Stage the newest event snapshot of every object changed since the events cursor."""
        st = ctx.state["events"]
        last_id, last_created = st.get("last_event_id"), st.get("last_event_created")
        checked_ts = int(st["updated_at"].replace(tzinfo=UTC).timestamp())
        lower = last_created if last_created is not None else checked_ts - EVENT_LAG_SECONDS
        # The cursor event must still be listed unless it is about to leave the retention.
        expect_cursor = (
            last_id is not None
            and last_created is not None
            and last_created > ctx.now_ts - EVENT_RETENTION_SECONDS + 86_400
        )
        latest: dict[tuple[str, str], dict[str, Any]] = {}
        newest: dict[str, Any] | None = None
        found = False
        seen = ignored = 0
        try:
            for rows, _ in self._pages("/v1/events", {"created": {"gte": lower}}):
                for event in rows:  # newest first
                    newest = newest or event
                    if event.get("id") == last_id:
                        found = True
                        continue
                    seen += 1
                    obj = (event.get("data") or {}).get("object")
                    if not isinstance(obj, dict) or obj.get("object") not in EVENT_OBJECTS:
                        ignored += 1
                        continue
                    latest.setdefault((obj["object"], obj.get("id")), event)
        except StripeSyncError as e:
            if e.code == "resource_missing":
                raise _CursorUnknown(f"the API does not know the events cursor ({e})") from None
            raise
        if expect_cursor and not found:
            raise _CursorUnknown(f"events cursor {last_id} is no longer listed by the API")
        ctx.note(f"{seen} events read, {len(latest)} objects changed, {ignored} events ignored")
        for event in reversed(list(latest.values())):  # oldest first
            obj = event["data"]["object"]
            if str(event.get("type", "")).endswith(".deleted"):
                obj = {**obj, "deleted": True}
            self._stage(
                ctx,
                obj,
                version_seen=f"event:{event['id']}",
                as_of=int(event.get("created") or 0),
                api_version=event.get("api_version"),
                from_event=True,
            )
        if newest is not None:
            ctx.set_state(
                "events", last_event_id=newest["id"], last_event_created=newest["created"]
            )
        else:
            ctx.set_state("events")

    def _stage(
        self,
        ctx: SyncContext,
        obj: dict[str, Any],
        *,
        version_seen: str,
        as_of: int,
        api_version: str | None,
        from_event: bool = False,
    ) -> None:
        """Stage an object and, for invoices, credit notes and subscriptions, every child."""
        kind = obj.get("object")
        oid = obj.get("id")
        deleted = obj.get("deleted") is True
        if (
            kind == "price"
            and from_event
            and not deleted
            and obj.get("billing_scheme") == "tiered"
            and "tiers" not in obj
        ):  # event snapshots never include the tiers: read the price again
            obj, api_version = self._get(
                f"/v1/prices/{quote(str(oid), safe='')}", {"expand": ["tiers"]}
            )
            version_seen, as_of, from_event = "list", CURRENT, False
        child_type = CHILD_TYPE.get(str(kind))
        stager = ctx.stager
        if child_type is None:
            stager.add(obj, version_seen=version_seen, as_of=as_of, api_version=api_version)
            return
        if deleted and kind != "subscription":  # a deleted invoice has no lines left
            # (customer.subscription.deleted is a cancellation: the items stay)
            stager.add(
                obj, version_seen=version_seen, as_of=as_of, api_version=api_version, complete=True
            )
            return
        embedded = obj.get(_EMBEDDED_KEY[str(kind)])
        if not isinstance(embedded, dict):
            stager.add(obj, version_seen=version_seen, as_of=as_of, api_version=api_version)
            return
        children = [c for c in embedded.get("data") or [] if isinstance(c, dict)]
        complete = True
        if embedded.get("has_more"):
            # An event's snapshot: read the current children from the start; a listed object:
            # continue after the embedded first page.
            after = None if from_event or not children else children[-1].get("id")
            try:
                rest = list(self._children(str(kind), str(oid), after))
            except StripeSyncError as e:
                if e.code != "resource_missing":
                    raise
                ctx.note(f"{kind} {oid}: children not readable ({e.code}); kept the first page")
                rest, complete = [], False
            children = rest if from_event and complete else children + rest
        seq = stager.add(
            obj, version_seen=version_seen, as_of=as_of, api_version=api_version, complete=complete
        )
        for child in children:
            stager.add(
                child,
                version_seen=version_seen,
                as_of=as_of,
                api_version=api_version,
                parent_id=oid,
                parent_seq=seq,
                object_type=child.get("object") or child_type,
            )

    def _children(self, kind: str, oid: str, after: str | None) -> Iterator[dict[str, Any]]:
        qid = quote(oid, safe="")
        if kind == "invoice":
            path, params = f"/v1/invoices/{qid}/lines", {}
        elif kind == "credit_note":
            path, params = f"/v1/credit_notes/{qid}/lines", {}
        else:
            path, params = "/v1/subscription_items", {"subscription": oid}
        if after is not None:
            params["starting_after"] = after  # _pages moves it on from the second page
        for rows, _ in self._pages(path, params):
            yield from rows

    def _meters(self, ctx: SyncContext) -> None:
        """Billing meters, and what Stripe recorded per metered customer and day."""
        meters: list[dict[str, Any]] = []
        try:
            for rows, version in self._pages("/v1/billing/meters", {}):
                for meter in rows:
                    ctx.stager.add(meter, version_seen="list", api_version=version)
                    meters.append(meter)
        except StripeSyncError as e:
            if e.status not in (403, 404):
                raise
            ctx.note(f"billing meters not readable (HTTP {e.status}): summaries skipped")
            return
        created = [m["created"] for m in meters if isinstance(m.get("created"), int)]
        ctx.set_state("billing_meters", created_cursor=max(created) if created else None)
        if not meters:
            ctx.note("no billing meters: event summaries skipped")
            return
        if self.meter_summary_days <= 0:
            return
        end = ctx.now_ts - ctx.now_ts % 86_400  # UTC midnight: whole days only
        start = end - self.meter_summary_days * 86_400
        pairs = metered_customers(ctx.con, ctx.stager, [m["id"] for m in meters], start)
        skipped = 0
        for meter_id, customer in pairs:
            path = f"/v1/billing/meters/{quote(meter_id, safe='')}/event_summaries"
            params = {
                "customer": customer,
                "start_time": start,
                "end_time": end,
                "value_grouping_window": "day",
            }
            try:
                for rows, version in self._pages(path, params):
                    for summary in rows:
                        ctx.stager.add(
                            summary,
                            version_seen="list",
                            api_version=version,
                            parent_id=summary.get("meter") or meter_id,
                        )
            except StripeSyncError as e:
                if e.code != "resource_missing":
                    raise
                skipped += 1
        ctx.note(f"meter event summaries: {len(pairs) - skipped} meter/customer pairs read")
        if skipped:
            ctx.note(f"meter event summaries: {skipped} pairs skipped (resource_missing)")
