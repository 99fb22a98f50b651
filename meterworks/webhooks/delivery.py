"""Sending: the embedded signed sender, the Svix sender, and ``drain`` that drives either.

``drain(store, now)`` claims due deliveries in batches, sends them concurrently (a thread pool;
one keep-alive HTTP client), records every attempt and schedules the next one on Svix's
schedule (embedded) or with capped exponential backoff (Svix API errors, rate limits). It
needs no warehouse and never raises for a delivery failure: failures are data.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from meterworks.webhooks.settings import (
    EMBEDDED,
    SVIX,
    WebhookSettings,
    webhook_settings,
)
from meterworks.webhooks.signing import secret_key, signed_headers
from meterworks.webhooks.store import (
    FAILED,
    SUCCEEDED,
    DeliveryStore,
    Job,
    Result,
    utc_naive,
    utcnow,
)

log = logging.getLogger(__name__)

USER_AGENT = "Meterworks-Webhooks/1"
#: names that never resolve (RFC 2606 / 6761): never looked up, never sent to
RESERVED_SUFFIXES = (".example", ".invalid")
#: Svix API errors worth retrying
TRANSIENT_STATUS = {408, 423, 425, 429}
SVIX_BACKOFF_BASE = timedelta(seconds=5)
SVIX_BACKOFF_CAP = timedelta(hours=1)
SVIX_MAX_ATTEMPTS = 50  # about two days at the cap


class Sender(Protocol):
    mode: str
    workers: int
    timeout: float

    def prepare(self, store: DeliveryStore, jobs: Sequence[Job]) -> dict[str, str]: ...

    def send(self, job: Job) -> Result: ...

    def close(self) -> None: ...


def _is_reserved(url: str) -> bool:
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    return any(host == s[1:] or host.endswith(s) for s in RESERVED_SUFFIXES)


class EmbeddedSender:
    """POSTs each message to its endpoint, signed exactly as Svix signs."""

    mode = EMBEDDED

    def __init__(
        self,
        *,
        timeout: float = 15.0,
        workers: int = 16,
        sign_clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.timeout = timeout
        self.workers = workers
        self.sign_clock = sign_clock
        self._keys: dict[str, bytes] = {}
        self.client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=workers, max_keepalive_connections=workers),
            follow_redirects=False,
            headers={"user-agent": USER_AGENT},
            transport=transport,
            trust_env=False,
        )

    def prepare(self, store: DeliveryStore, jobs: Sequence[Job]) -> dict[str, str]:
        return {}

    def _key(self, secret: str) -> bytes:
        key = self._keys.get(secret)
        if key is None:
            key = self._keys[secret] = secret_key(secret)
        return key

    def send(self, job: Job) -> Result:
        if not job.url or not job.secret:
            return Result(job, FAILED, error="endpoint has no URL or secret", permanent=True)
        if _is_reserved(job.url):
            return Result(job, FAILED, error="not sent: reserved domain name (never resolves)")
        body = job.body.encode()
        headers = signed_headers(
            self._key(job.secret), job.message_id, int(self.sign_clock()), body
        )
        started = time.perf_counter()
        try:
            response = self.client.post(job.url, content=body, headers=headers)
        except httpx.TimeoutException:
            return Result(
                job,
                FAILED,
                latency_ms=_ms(started),
                error=f"timeout: no answer within {self.timeout:g} s",
            )
        except httpx.HTTPError as exc:
            return Result(job, FAILED, latency_ms=_ms(started), error=_describe(exc))
        latency = _ms(started)
        if 200 <= response.status_code < 300:
            return Result(job, SUCCEEDED, status_code=response.status_code, latency_ms=latency)
        return Result(
            job,
            FAILED,
            status_code=response.status_code,
            latency_ms=latency,
            error=f"HTTP {response.status_code}",
        )

    def close(self) -> None:
        self.client.close()


class SvixSender:
    """One Svix message per alert (``eventId`` = alert id) in the customer's application
    (``uid`` = customer id), the customer's catalog endpoints registered first."""

    mode = SVIX

    def __init__(
        self,
        auth_token: str,
        server_url: str | None = None,
        *,
        timeout: float = 15.0,
        workers: int = 8,
    ) -> None:
        from svix.api import Svix, SvixOptions

        self.timeout = timeout
        self.workers = workers
        self.svix = Svix(auth_token, SvixOptions(server_url=server_url, timeout=timeout))
        self.throttled = threading.Event()
        self._ready: set[str] = set()
        self._event_types_registered = False

    def register_event_types(self) -> None:
        """Create or update every event type with its payload schemas (keyed by version)."""
        from svix.api import EventTypeUpsertIn

        from meterworks.webhooks.schemas import svix_event_types

        for event_type in svix_event_types():
            self.svix.event_type.upsert(
                event_type["name"],
                EventTypeUpsertIn(
                    description=event_type["description"], schemas=event_type["schemas"]
                ),
            )
        self._event_types_registered = True

    def ensure_customer(self, store: DeliveryStore, customer_id: str) -> None:
        """The customer's application (get-or-create) and its catalog endpoints."""
        from svix.api import ApplicationIn, EndpointIn, EndpointListOptions

        self.svix.application.get_or_create(ApplicationIn(name=customer_id, uid=customer_id))
        wanted = [
            e
            for e in store.list_endpoints(customer_id)
            if e.status != "removed" and e.svix_endpoint_id is None
        ]
        if wanted:
            existing = self.svix.endpoint.list(customer_id, EndpointListOptions(limit=250)).data
            for endpoint in wanted:
                match = next(
                    (x for x in existing if x.uid == endpoint.endpoint_id or x.url == endpoint.url),
                    None,
                )
                if match is None:
                    secret = (
                        store.endpoint_secret(endpoint.endpoint_id) if endpoint.has_secret else None
                    )
                    match = self.svix.endpoint.create(
                        customer_id,
                        EndpointIn(
                            url=endpoint.url,
                            uid=endpoint.endpoint_id,
                            description="Meterworks alerts (from the catalog)",
                            secret=secret,
                        ),
                    )
                store.set_svix_endpoint_id(endpoint.endpoint_id, match.id)
        self._ready.add(customer_id)

    def prepare(self, store: DeliveryStore, jobs: Sequence[Job]) -> dict[str, str]:
        """Register what the batch needs; returns {customer_id: error} for customers whose
        application or endpoints could not be set up (their messages wait)."""
        errors: dict[str, str] = {}
        if not self._event_types_registered:
            try:
                self.register_event_types()
            except Exception as exc:  # not fatal: messages go out without a schema
                log.warning("could not register the Svix event types: %s", _describe(exc))
        for customer_id in sorted({j.customer_id for j in jobs} - self._ready):
            try:
                self.ensure_customer(store, customer_id)
            except Exception as exc:
                errors[customer_id] = f"svix setup: {_describe(exc)}"
        return errors

    def send(self, job: Job) -> Result:
        from svix.api import MessageIn
        from svix.exceptions import HttpError, HTTPValidationError

        if self.throttled.is_set():
            return Result(job, "released")
        started = time.perf_counter()
        try:
            self.svix.message.create(
                job.customer_id,
                MessageIn(
                    event_id=job.message_id,
                    event_type=job.event_type,
                    payload=json.loads(job.body),
                ),
            )
        except HttpError as exc:
            latency, code = _ms(started), exc.status_code
            if code == 409:  # this eventId was already accepted: delivered
                return Result(job, SUCCEEDED, status_code=409, latency_ms=latency)
            if code == 429:
                self.throttled.set()
                return Result(
                    job, FAILED, status_code=429, latency_ms=latency, error="svix: rate limited"
                )
            return Result(
                job,
                FAILED,
                status_code=code,
                latency_ms=latency,
                error=f"svix: HTTP {code} {exc.code}: {exc.detail}"[:500],
                permanent=code < 500 and code not in TRANSIENT_STATUS,
            )
        except HTTPValidationError as exc:
            detail = "; ".join(str(getattr(d, "msg", d)) for d in (exc.detail or []))
            return Result(
                job,
                FAILED,
                status_code=422,
                latency_ms=_ms(started),
                error=f"svix: HTTP 422 invalid message: {detail}"[:500],
                permanent=True,
            )
        except (httpx.HTTPError, ValueError) as exc:  # outage, timeout, non-JSON error page
            return Result(job, FAILED, latency_ms=_ms(started), error=f"svix: {_describe(exc)}")
        return Result(job, SUCCEEDED, status_code=202, latency_ms=_ms(started))

    def close(self) -> None:
        self.throttled.clear()


def make_sender(settings: WebhookSettings) -> Sender:
    if settings.mode == SVIX:
        assert settings.svix_auth_token is not None
        return SvixSender(
            settings.svix_auth_token,
            settings.svix_server_url,
            timeout=settings.timeout,
            workers=min(settings.workers, 8),
        )
    return EmbeddedSender(timeout=settings.timeout, workers=settings.workers)


def svix_backoff(attempts_made: int) -> timedelta:
    """5 s, 10 s, 20 s ... capped at an hour."""
    seconds = SVIX_BACKOFF_BASE.total_seconds() * 2 ** min(attempts_made - 1, 20)
    return min(timedelta(seconds=seconds), SVIX_BACKOFF_CAP)


def schedule_delay(schedule: Sequence[timedelta]) -> Callable[[int], timedelta]:
    def delay(attempts_made: int) -> timedelta:
        return schedule[min(attempts_made, len(schedule)) - 1]

    return delay


@dataclass
class DrainReport:
    claimed: int = 0
    succeeded: int = 0
    failed: int = 0  # attempts that failed (the delivery may retry)
    released: int = 0
    batches: int = 0
    disabled_endpoints: list[str] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    throttled: bool = False

    def as_metadata(self) -> dict[str, Any]:
        return {
            "claimed": self.claimed,
            "succeeded": self.succeeded,
            "failed_attempts": self.failed,
            "batches": self.batches,
            "disabled_endpoints": list(self.disabled_endpoints),
            "throttled": self.throttled,
            "top_errors": dict(self.errors.most_common(5)),
        }


def default_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def drain(
    store: DeliveryStore,
    now: datetime | None = None,
    *,
    sender: Sender | None = None,
    settings: WebhookSettings | None = None,
    batch_size: int = 128,
    max_batches: int | None = None,
    max_seconds: float | None = None,
    worker: str | None = None,
    message_ids: Sequence[str] | None = None,
    trigger: str = "scheduled",
) -> DrainReport:
    """Deliver every due message once (one attempt each), then return.

    ``now`` fixes the scheduling clock for the whole call (tests, replays of the schedule);
    by default the wall clock is read for each batch. Deliveries that fail get their next
    attempt scheduled, so they are not retried within the same call when ``now`` is fixed.
    """
    settings = settings or webhook_settings()
    own_sender = sender is None
    sender = sender or make_sender(settings)
    worker = worker or default_worker()
    clock: Callable[[], datetime] = (lambda: utc_naive(now)) if now is not None else utcnow
    if sender.mode == SVIX:
        delay, max_attempts = svix_backoff, SVIX_MAX_ATTEMPTS
    else:
        delay = schedule_delay(settings.retry_schedule)
        max_attempts = len(settings.retry_schedule) + 1
    rounds = math.ceil(batch_size / max(sender.workers, 1))
    lease = timedelta(seconds=(2 * rounds + 1) * sender.timeout + 30)
    report = DrainReport()
    started = time.monotonic()
    pool = ThreadPoolExecutor(max_workers=sender.workers, thread_name_prefix="webhook")
    inflight: deque[tuple[list[Result], list[Future[Result]]]] = deque()

    def finish(batch: tuple[list[Result], list[Future[Result]]]) -> None:
        ready, futures = batch
        results = ready + [f.result() for f in futures]
        report.disabled_endpoints += store.complete(
            results,
            now=clock(),
            next_delay=delay,
            max_attempts=max_attempts,
            disable_after=settings.disable_after,
        )
        for r in results:
            if r.outcome == SUCCEEDED:
                report.succeeded += 1
            elif r.outcome == FAILED:
                report.failed += 1
                report.errors[(r.error or "")[:80]] += 1
            else:
                report.released += 1
            if r.latency_ms is not None:
                report.latencies_ms.append(r.latency_ms)

    stop = False
    try:
        while True:
            if not stop:
                jobs = store.claim(
                    now=clock(),
                    limit=batch_size,
                    lease=lease,
                    worker=worker,
                    message_ids=message_ids,
                    trigger=trigger,
                )
                if jobs:
                    report.claimed += len(jobs)
                    report.batches += 1
                    blocked = sender.prepare(store, jobs)
                    ready = [
                        Result(j, FAILED, error=blocked[j.customer_id])
                        for j in jobs
                        if j.customer_id in blocked
                    ]
                    futures = [
                        pool.submit(_safe_send, sender, j)
                        for j in jobs
                        if j.customer_id not in blocked
                    ]
                    inflight.append((ready, futures))
                else:
                    stop = True
                if max_batches is not None and report.batches >= max_batches:
                    stop = True
                if max_seconds is not None and time.monotonic() - started >= max_seconds:
                    stop = True
            if inflight and (stop or len(inflight) >= 2):
                finish(inflight.popleft())
                throttled = getattr(sender, "throttled", None)
                if throttled is not None and throttled.is_set():
                    report.throttled = True
                    stop = True
            if stop and not inflight:
                break
    finally:
        while inflight:  # an exception above: still record what was sent
            finish(inflight.popleft())
        pool.shutdown(wait=True)
        if own_sender:
            sender.close()
        elif sender.mode == SVIX:
            sender.close()  # clears the throttle for the next call
    return report


def _safe_send(sender: Sender, job: Job) -> Result:
    """A sender's bug or an unexpected error fails one attempt, never the whole pass."""
    try:
        return sender.send(job)
    except Exception as exc:
        log.exception("webhook send failed unexpectedly (message %s)", job.message_id)
        return Result(job, FAILED, error=f"unexpected: {_describe(exc)}")


def replay(
    store: DeliveryStore,
    message_id: str,
    *,
    now: datetime | None = None,
    target: str | None = None,
    sender: Sender | None = None,
    settings: WebhookSettings | None = None,
) -> list[dict[str, Any]]:
    """Send one message again now (one more attempt per delivery) and return its deliveries.

    A delivery to a disabled endpoint stays held until the endpoint is enabled."""
    now = utc_naive(now) if now is not None else utcnow()
    if not store.make_due(message_id, now=now, target=target):
        raise KeyError(message_id)
    drain(
        store,
        now,
        sender=sender,
        settings=settings,
        message_ids=[message_id],
        trigger="replay",
    )
    return store.deliveries(message_id=message_id, limit=100)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


def summarize(results: Iterable[Result]) -> Counter[str]:
    return Counter(r.outcome for r in results)
