"""The durable delivery store: endpoints (with their secrets), messages, deliveries, attempts.

It lives in the app-side state database (SQLAlchemy; SQLite under ``$METERWORKS_HOME`` by
default), never in the DuckDB warehouse: the pipeline holds the warehouse for writing for long
stretches, and delivery must go on meanwhile. Tables:

``webhook_endpoints``
    one row per customer endpoint: ``url``, the ``whsec_`` ``secret`` (embedded mode; Svix keeps
    its own), ``status`` ``enabled`` | ``disabled`` | ``removed``, ``failing_since`` (start of
    the current run of failed attempts, null after a success), ``disabled_at``/``reason``,
    ``svix_endpoint_id`` once registered in Svix.
``webhook_messages``
    one row per alert: ``message_id`` = the alert id (the ``svix-id`` / Svix ``eventId``), event
    type, customer, the exact JSON ``body`` that is signed and sent.
``webhook_deliveries``
    one row per (message, target): target = an endpoint id (embedded) or ``svix``. ``status``
    ``pending`` -> ``succeeded`` | ``failed``; ``attempts``, ``next_attempt_at``, and the lease
    (``lease_owner``, ``lease_expires_at``) a drain takes before sending.
``webhook_attempts``
    one row per attempt: ``in_flight`` when claimed, then ``succeeded`` | ``failed``, or
    ``abandoned`` when its worker died and the lease was taken over; status code, latency, error.

Claiming is a conditional UPDATE of due, unleased (or lease-expired) rows in one transaction,
so two drains never hold the same delivery; a drain killed mid-flight leaves leases that expire
and the next drain sends those messages again, under the same id (at-least-once).
"""

from __future__ import annotations

import contextlib
import os
import secrets as _secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from meterworks.webhooks.settings import SVIX

metadata = sa.MetaData()

endpoints = sa.Table(
    "webhook_endpoints",
    metadata,
    sa.Column("endpoint_id", sa.String(64), primary_key=True),
    sa.Column("customer_id", sa.String(255), nullable=False, index=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("secret", sa.String(128)),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("failing_since", sa.DateTime),
    sa.Column("last_success_at", sa.DateTime),
    sa.Column("last_failure_at", sa.DateTime),
    sa.Column("disabled_at", sa.DateTime),
    sa.Column("disabled_reason", sa.Text),
    sa.Column("svix_endpoint_id", sa.String(255)),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("customer_id", "url", name="uq_webhook_endpoints_customer_url"),
)

messages = sa.Table(
    "webhook_messages",
    metadata,
    sa.Column("message_id", sa.String(255), primary_key=True),
    sa.Column("event_type", sa.String(128), nullable=False),
    sa.Column("customer_id", sa.String(255), nullable=False, index=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("enqueued_at", sa.DateTime, nullable=False),
)

deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("delivery_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "message_id", sa.String(255), sa.ForeignKey("webhook_messages.message_id"), nullable=False
    ),
    sa.Column("target", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.DateTime),
    sa.Column("first_attempt_at", sa.DateTime),
    sa.Column("lease_owner", sa.String(64)),
    sa.Column("lease_expires_at", sa.DateTime),
    sa.Column("last_status_code", sa.Integer),
    sa.Column("last_error", sa.Text),
    sa.Column("delivered_at", sa.DateTime),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("message_id", "target", name="uq_webhook_deliveries_message_target"),
    sa.Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
)

attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("attempt_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "delivery_id",
        sa.Integer,
        sa.ForeignKey("webhook_deliveries.delivery_id"),
        nullable=False,
        index=True,
    ),
    sa.Column("message_id", sa.String(255), nullable=False, index=True),
    sa.Column("target", sa.String(64), nullable=False),
    sa.Column("attempt_no", sa.Integer, nullable=False),
    sa.Column("trigger", sa.String(16), nullable=False),
    sa.Column("worker", sa.String(64), nullable=False),
    sa.Column("lease", sa.String(64), nullable=False, index=True),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("finished_at", sa.DateTime),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("status_code", sa.Integer),
    sa.Column("latency_ms", sa.Float),
    sa.Column("error", sa.Text),
)

PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"
ENABLED, DISABLED, REMOVED = "enabled", "disabled", "removed"
IN_FLIGHT, ABANDONED = "in_flight", "abandoned"


def utc_naive(value: datetime) -> datetime:
    """Naive UTC (the store's convention); an aware value is converted."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def new_id(prefix: str) -> str:
    return f"{prefix}_{_secrets.token_hex(12)}"


@dataclass(frozen=True)
class Endpoint:
    endpoint_id: str
    customer_id: str
    url: str
    status: str
    source: str
    failing_since: datetime | None
    disabled_at: datetime | None
    disabled_reason: str | None
    svix_endpoint_id: str | None
    has_secret: bool


@dataclass(frozen=True)
class Job:
    """One claimed delivery: what a sender needs to make one attempt."""

    delivery_id: int
    attempt_id: int
    attempt_no: int
    message_id: str
    event_type: str
    customer_id: str
    body: str
    target: str
    url: str | None
    secret: str | None = None

    def __repr__(self) -> str:  # never show the secret
        return (
            f"Job(message_id={self.message_id!r}, target={self.target!r}, "
            f"attempt_no={self.attempt_no})"
        )


@dataclass(frozen=True)
class Result:
    """The outcome of one attempt. ``outcome``: succeeded | failed | released (not sent)."""

    job: Job
    outcome: str
    status_code: int | None = None
    latency_ms: float | None = None
    error: str | None = None
    #: failed and not worth retrying (e.g. Svix refused the message as invalid)
    permanent: bool = False
    #: wait at least this long before the next attempt (a rate limit's Retry-After)
    retry_after: timedelta | None = None


def _sqlite_pragmas(engine: Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("pragma journal_mode=wal")
        cursor.execute("pragma synchronous=normal")
        cursor.execute("pragma busy_timeout=30000")
        cursor.execute("pragma foreign_keys=on")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # take the write lock up front: no deadlock when two processes upgrade at once
        conn.exec_driver_sql("begin immediate")


class DeliveryStore:
    """The delivery tables in one SQLAlchemy database (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> DeliveryStore:
        """Open (and create) the store at a SQLAlchemy URL; a new SQLite file is made 0600."""
        sa_url = sa.make_url(url)
        if sa_url.drivername in ("postgresql", "postgres"):  # as meterworks.state: psycopg 3
            sa_url = sa_url.set(drivername="postgresql+psycopg")
        is_sqlite = sa_url.get_backend_name() == "sqlite"
        if is_sqlite and sa_url.database and sa_url.database != ":memory:":
            path = os.path.abspath(sa_url.database)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if not os.path.exists(path):
                fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
                os.close(fd)
        engine = sa.create_engine(sa_url, **({} if is_sqlite else {"pool_pre_ping": True}))
        if is_sqlite:
            _sqlite_pragmas(engine)
        metadata.create_all(engine)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def tx(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    # -- endpoints ---------------------------------------------------------------------------
    def upsert_endpoint(
        self,
        customer_id: str,
        url: str,
        *,
        now: datetime,
        source: str = "catalog",
        secret: str | None = None,
    ) -> tuple[str, bool]:
        """The endpoint of (customer, url), created when absent (with ``secret``) and
        re-activated when it had been removed. Returns (endpoint_id, created)."""
        now = utc_naive(now)
        with self.tx() as conn:
            row = conn.execute(
                sa.select(endpoints.c.endpoint_id, endpoints.c.status).where(
                    endpoints.c.customer_id == customer_id, endpoints.c.url == url
                )
            ).first()
            if row is not None:
                if row.status == REMOVED:
                    conn.execute(
                        endpoints.update()
                        .where(endpoints.c.endpoint_id == row.endpoint_id)
                        .values(status=ENABLED, disabled_reason=None, updated_at=now)
                    )
                return row.endpoint_id, False
            endpoint_id = new_id("ep")
            conn.execute(
                endpoints.insert().values(
                    endpoint_id=endpoint_id,
                    customer_id=customer_id,
                    url=url,
                    secret=secret,
                    source=source,
                    status=ENABLED,
                    created_at=now,
                    updated_at=now,
                )
            )
            return endpoint_id, True

    def remove_endpoints_except(
        self, keep: Iterable[tuple[str, str]], *, source: str, now: datetime
    ) -> list[str]:
        """Mark endpoints of ``source`` not in ``keep`` (customer, url) as removed and fail
        their pending deliveries. Returns the removed endpoint ids."""
        keep = set(keep)
        now = utc_naive(now)
        with self.tx() as conn:
            rows = conn.execute(
                sa.select(endpoints.c.endpoint_id, endpoints.c.customer_id, endpoints.c.url).where(
                    endpoints.c.source == source, endpoints.c.status != REMOVED
                )
            ).all()
            gone = [r.endpoint_id for r in rows if (r.customer_id, r.url) not in keep]
            if gone:
                conn.execute(
                    endpoints.update()
                    .where(endpoints.c.endpoint_id.in_(gone))
                    .values(status=REMOVED, disabled_reason=f"removed from the {source}")
                    .values(updated_at=now)
                )
                conn.execute(
                    deliveries.update()
                    .where(deliveries.c.target.in_(gone), deliveries.c.status == PENDING)
                    .values(
                        status=FAILED,
                        next_attempt_at=None,
                        last_error="endpoint removed",
                        updated_at=now,
                    )
                )
        return gone

    def list_endpoints(self, customer_id: str | None = None) -> list[Endpoint]:
        query = sa.select(endpoints).order_by(endpoints.c.customer_id, endpoints.c.created_at)
        if customer_id is not None:
            query = query.where(endpoints.c.customer_id == customer_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            Endpoint(
                endpoint_id=r.endpoint_id,
                customer_id=r.customer_id,
                url=r.url,
                status=r.status,
                source=r.source,
                failing_since=r.failing_since,
                disabled_at=r.disabled_at,
                disabled_reason=r.disabled_reason,
                svix_endpoint_id=r.svix_endpoint_id,
                has_secret=bool(r.secret),
            )
            for r in rows
        ]

    def endpoint_secret(self, endpoint_id: str) -> str:
        """The endpoint's ``whsec_`` secret (for handing to the customer; never log it)."""
        with self.engine.connect() as conn:
            secret = conn.execute(
                sa.select(endpoints.c.secret).where(endpoints.c.endpoint_id == endpoint_id)
            ).scalar_one_or_none()
        if not secret:
            raise KeyError(endpoint_id)
        return secret

    def set_svix_endpoint_id(self, endpoint_id: str, svix_endpoint_id: str) -> None:
        with self.tx() as conn:
            conn.execute(
                endpoints.update()
                .where(endpoints.c.endpoint_id == endpoint_id)
                .values(svix_endpoint_id=svix_endpoint_id, updated_at=utcnow())
            )

    def enable_endpoint(self, endpoint_id: str, *, now: datetime) -> int:
        """Re-enable an endpoint; its held deliveries become due now. Returns how many."""
        now = utc_naive(now)
        with self.tx() as conn:
            found = conn.execute(
                endpoints.update()
                .where(endpoints.c.endpoint_id == endpoint_id, endpoints.c.status != REMOVED)
                .values(
                    status=ENABLED,
                    failing_since=None,
                    disabled_at=None,
                    disabled_reason=None,
                    updated_at=now,
                )
            ).rowcount
            if not found:
                raise KeyError(endpoint_id)
            return conn.execute(
                deliveries.update()
                .where(deliveries.c.target == endpoint_id, deliveries.c.status == PENDING)
                .values(next_attempt_at=now, updated_at=now)
            ).rowcount

    def disable_endpoint(self, endpoint_id: str, *, now: datetime, reason: str) -> None:
        now = utc_naive(now)
        with self.tx() as conn:
            found = conn.execute(
                endpoints.update()
                .where(endpoints.c.endpoint_id == endpoint_id, endpoints.c.status == ENABLED)
                .values(status=DISABLED, disabled_at=now, disabled_reason=reason, updated_at=now)
            ).rowcount
            if not found:
                raise KeyError(endpoint_id)

    # -- messages ----------------------------------------------------------------------------
    def latest_message_created_at(self) -> datetime | None:
        """``created_at`` (the outbox's) of the newest message held: where the next copy of the
        outbox can start, so a copy reads the new alerts, not the whole history."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.max(messages.c.created_at))).scalar()

    def known_message_ids(self, ids: Sequence[str]) -> set[str]:
        known: set[str] = set()
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                chunk = list(ids[start : start + 500])
                known.update(
                    conn.execute(
                        sa.select(messages.c.message_id).where(messages.c.message_id.in_(chunk))
                    ).scalars()
                )
        return known

    def add_messages(
        self, rows: Iterable[dict[str, Any]], *, mode: str, now: datetime
    ) -> tuple[int, int]:
        """Store messages (keys: message_id, event_type, customer_id, body, created_at) once
        each and create their deliveries: to Svix (``mode='svix'``) or to each of the customer's
        endpoints that is not removed. Returns (messages added, deliveries created)."""
        now = utc_naive(now)
        rows = list(rows)
        added = created = 0
        with self.tx() as conn:
            ids = [r["message_id"] for r in rows]
            known: set[str] = set()
            for start in range(0, len(ids), 500):
                known.update(
                    conn.execute(
                        sa.select(messages.c.message_id).where(
                            messages.c.message_id.in_(ids[start : start + 500])
                        )
                    ).scalars()
                )
            fresh = []
            for r in rows:
                if r["message_id"] in known:
                    continue
                known.add(r["message_id"])
                fresh.append(r)
            if not fresh:
                return 0, 0
            conn.execute(
                messages.insert(),
                [
                    {
                        "message_id": r["message_id"],
                        "event_type": r["event_type"],
                        "customer_id": r["customer_id"],
                        "body": r["body"],
                        "created_at": utc_naive(r.get("created_at") or now),
                        "enqueued_at": now,
                    }
                    for r in fresh
                ],
            )
            added = len(fresh)
            if mode == SVIX:
                targets: dict[str, list[str]] = {r["customer_id"]: [SVIX] for r in fresh}
            else:
                targets = {}
                for customer_id, endpoint_id in conn.execute(
                    sa.select(endpoints.c.customer_id, endpoints.c.endpoint_id).where(
                        endpoints.c.customer_id.in_({r["customer_id"] for r in fresh}),
                        endpoints.c.status != REMOVED,
                    )
                ):
                    targets.setdefault(customer_id, []).append(endpoint_id)
            new_deliveries = [
                {
                    "message_id": r["message_id"],
                    "target": target,
                    "status": PENDING,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for r in fresh
                for target in targets.get(r["customer_id"], [])
            ]
            if new_deliveries:
                conn.execute(deliveries.insert(), new_deliveries)
            created = len(new_deliveries)
        return added, created

    # -- claiming and completing -------------------------------------------------------------
    def _due(self, now: datetime) -> sa.ColumnElement[bool]:
        enabled = sa.or_(
            deliveries.c.target == SVIX,
            sa.exists().where(
                endpoints.c.endpoint_id == deliveries.c.target, endpoints.c.status == ENABLED
            ),
        )
        return sa.and_(
            deliveries.c.status == PENDING,
            deliveries.c.next_attempt_at <= now,
            sa.or_(deliveries.c.lease_expires_at.is_(None), deliveries.c.lease_expires_at <= now),
            enabled,
        )

    def claim(
        self,
        *,
        now: datetime,
        limit: int,
        lease: timedelta,
        worker: str,
        message_ids: Sequence[str] | None = None,
        trigger: str = "scheduled",
    ) -> list[Job]:
        """Lease up to ``limit`` due deliveries for ``lease`` and open an attempt for each."""
        now = utc_naive(now)
        token = new_id("lease")
        with self.tx() as conn:
            due = self._due(now)
            if message_ids is not None:
                due = sa.and_(due, deliveries.c.message_id.in_(list(message_ids)))
            picked = conn.execute(
                sa.select(deliveries.c.delivery_id, deliveries.c.lease_owner)
                .where(due)
                .order_by(deliveries.c.next_attempt_at, deliveries.c.delivery_id)
                .limit(limit)
            ).all()
            if not picked:
                return []
            ids = [r.delivery_id for r in picked]
            expired = [r.delivery_id for r in picked if r.lease_owner is not None]
            if expired:  # their worker died (or overran its lease): close its open attempts
                conn.execute(
                    attempts.update()
                    .where(attempts.c.delivery_id.in_(expired), attempts.c.outcome == IN_FLIGHT)
                    .values(
                        outcome=ABANDONED,
                        finished_at=now,
                        error="lease expired before the attempt was recorded (worker died?)",
                    )
                )
            conn.execute(
                deliveries.update()
                .where(deliveries.c.delivery_id.in_(ids), due)
                .values(lease_owner=token, lease_expires_at=now + lease, updated_at=now)
            )
            claimed = conn.execute(
                sa.select(
                    deliveries.c.delivery_id,
                    deliveries.c.attempts,
                    deliveries.c.target,
                    messages.c.message_id,
                    messages.c.event_type,
                    messages.c.customer_id,
                    messages.c.body,
                    endpoints.c.url,
                    endpoints.c.secret,
                )
                .select_from(
                    deliveries.join(
                        messages, messages.c.message_id == deliveries.c.message_id
                    ).outerjoin(endpoints, endpoints.c.endpoint_id == deliveries.c.target)
                )
                .where(deliveries.c.lease_owner == token)
                .order_by(deliveries.c.next_attempt_at, deliveries.c.delivery_id)
            ).all()
            conn.execute(
                attempts.insert(),
                [
                    {
                        "delivery_id": r.delivery_id,
                        "message_id": r.message_id,
                        "target": r.target,
                        "attempt_no": r.attempts + 1,
                        "trigger": trigger,
                        "worker": worker,
                        "lease": token,
                        "started_at": now,
                        "outcome": IN_FLIGHT,
                    }
                    for r in claimed
                ],
            )
            attempt_ids = dict(
                conn.execute(
                    sa.select(attempts.c.delivery_id, attempts.c.attempt_id).where(
                        attempts.c.lease == token
                    )
                ).all()
            )
        return [
            Job(
                delivery_id=r.delivery_id,
                attempt_id=attempt_ids[r.delivery_id],
                attempt_no=r.attempts + 1,
                message_id=r.message_id,
                event_type=r.event_type,
                customer_id=r.customer_id,
                body=r.body,
                target=r.target,
                url=r.url,
                secret=r.secret,
            )
            for r in claimed
        ]

    def complete(
        self,
        results: Sequence[Result],
        *,
        now: datetime,
        next_delay: Any,
        max_attempts: int,
        disable_after: timedelta | None,
    ) -> list[str]:
        """Record a batch of attempts and move their deliveries on; returns endpoint ids that
        were disabled by it. ``next_delay(attempts_made) -> timedelta`` is the retry schedule."""
        now = utc_naive(now)
        disabled: list[str] = []
        if not results:
            return disabled
        with self.tx() as conn:
            released = [r.job for r in results if r.outcome == "released"]
            if released:
                conn.execute(
                    attempts.delete().where(
                        attempts.c.attempt_id.in_([j.attempt_id for j in released])
                    )
                )
                conn.execute(
                    deliveries.update()
                    .where(deliveries.c.delivery_id.in_([j.delivery_id for j in released]))
                    .values(lease_owner=None, lease_expires_at=None, updated_at=now)
                )
            done = [r for r in results if r.outcome != "released"]
            if not done:
                return disabled
            conn.execute(
                attempts.update().where(attempts.c.attempt_id == sa.bindparam("a_id")),
                [
                    {
                        "a_id": r.job.attempt_id,
                        "outcome": r.outcome,
                        "status_code": r.status_code,
                        "latency_ms": r.latency_ms,
                        "error": r.error,
                        "finished_at": now,
                    }
                    for r in done
                ],
            )
            current = {
                row.delivery_id: row
                for row in conn.execute(
                    sa.select(
                        deliveries.c.delivery_id,
                        deliveries.c.attempts,
                        deliveries.c.lease_owner,
                        deliveries.c.first_attempt_at,
                    ).where(deliveries.c.delivery_id.in_([r.job.delivery_id for r in done]))
                )
            }
            updates = []
            for r in done:
                row = current[r.job.delivery_id]
                made = row.attempts + 1
                values: dict[str, Any] = {
                    "d_id": r.job.delivery_id,
                    "attempts": made,
                    "last_status_code": r.status_code,
                    "last_error": r.error,
                    "first_attempt_at": row.first_attempt_at or now,
                    "updated_at": now,
                    "lease_owner": None,
                    "lease_expires_at": None,
                }
                if r.outcome == SUCCEEDED:
                    values.update(status=SUCCEEDED, next_attempt_at=None, delivered_at=now)
                elif r.permanent or made >= max_attempts:
                    values.update(status=FAILED, next_attempt_at=None, delivered_at=None)
                else:
                    delay = next_delay(made)
                    if r.retry_after is not None:
                        delay = max(delay, r.retry_after)
                    values.update(status=PENDING, next_attempt_at=now + delay, delivered_at=None)
                updates.append(values)
            conn.execute(
                deliveries.update()
                .where(deliveries.c.delivery_id == sa.bindparam("d_id"))
                .values(
                    attempts=sa.bindparam("attempts"),
                    last_status_code=sa.bindparam("last_status_code"),
                    last_error=sa.bindparam("last_error"),
                    first_attempt_at=sa.bindparam("first_attempt_at"),
                    updated_at=sa.bindparam("updated_at"),
                    lease_owner=sa.bindparam("lease_owner"),
                    lease_expires_at=sa.bindparam("lease_expires_at"),
                    status=sa.bindparam("status"),
                    next_attempt_at=sa.bindparam("next_attempt_at"),
                    delivered_at=sa.bindparam("delivered_at"),
                ),
                updates,
            )
            disabled = self._endpoint_health(conn, done, now, disable_after)
        return disabled

    def _endpoint_health(
        self,
        conn: Connection,
        done: Sequence[Result],
        now: datetime,
        disable_after: timedelta | None,
    ) -> list[str]:
        ok: set[str] = set()
        bad: set[str] = set()
        for r in done:
            if r.job.target == SVIX:
                continue
            (ok if r.outcome == SUCCEEDED else bad).add(r.job.target)
        bad -= ok  # one success in the batch: the endpoint is alive
        if ok:
            conn.execute(
                endpoints.update()
                .where(endpoints.c.endpoint_id.in_(ok))
                .values(failing_since=None, last_success_at=now, updated_at=now)
            )
        disabled: list[str] = []
        if bad:
            conn.execute(
                endpoints.update()
                .where(endpoints.c.endpoint_id.in_(bad))
                .values(
                    failing_since=sa.func.coalesce(endpoints.c.failing_since, now),
                    last_failure_at=now,
                    updated_at=now,
                )
            )
            if disable_after is not None:
                disabled = list(
                    conn.execute(
                        sa.select(endpoints.c.endpoint_id).where(
                            endpoints.c.endpoint_id.in_(bad),
                            endpoints.c.status == ENABLED,
                            endpoints.c.failing_since <= now - disable_after,
                        )
                    ).scalars()
                )
                if disabled:
                    conn.execute(
                        endpoints.update()
                        .where(endpoints.c.endpoint_id.in_(disabled))
                        .values(
                            status=DISABLED,
                            disabled_at=now,
                            disabled_reason=(
                                f"every attempt failed for {_human(disable_after)} "
                                "(re-enable with `meterworks webhooks enable`)"
                            ),
                        )
                    )
        return disabled

    # -- reading -----------------------------------------------------------------------------
    def next_due_at(self) -> datetime | None:
        """When the earliest pending delivery to an enabled target becomes due (or a lease
        expires), for a scheduler or a test driving a clock."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(
                    sa.func.min(
                        sa.case(
                            (
                                sa.and_(
                                    deliveries.c.lease_expires_at.is_not(None),
                                    deliveries.c.lease_expires_at > deliveries.c.next_attempt_at,
                                ),
                                deliveries.c.lease_expires_at,
                            ),
                            else_=deliveries.c.next_attempt_at,
                        )
                    )
                ).where(
                    deliveries.c.status == PENDING,
                    sa.or_(
                        deliveries.c.target == SVIX,
                        sa.exists().where(
                            endpoints.c.endpoint_id == deliveries.c.target,
                            endpoints.c.status == ENABLED,
                        ),
                    ),
                )
            ).scalar()
        return row

    def due_count(self, now: datetime) -> int:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(sa.func.count()).select_from(deliveries).where(self._due(utc_naive(now)))
            ).scalar_one()

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(deliveries.c.status, sa.func.count()).group_by(deliveries.c.status)
            ).all()
        return {status: n for status, n in rows}

    def deliveries(
        self,
        *,
        limit: int = 20,
        customer_id: str | None = None,
        status: str | None = None,
        message_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Recent deliveries, newest message first (no bodies, no secrets)."""
        query = (
            sa.select(
                deliveries.c.delivery_id,
                messages.c.message_id,
                messages.c.event_type,
                messages.c.customer_id,
                messages.c.created_at,
                deliveries.c.target,
                deliveries.c.status,
                deliveries.c.attempts,
                deliveries.c.last_status_code,
                deliveries.c.last_error,
                deliveries.c.next_attempt_at,
                deliveries.c.delivered_at,
                endpoints.c.status.label("endpoint_status"),
            )
            .select_from(
                deliveries.join(
                    messages, messages.c.message_id == deliveries.c.message_id
                ).outerjoin(endpoints, endpoints.c.endpoint_id == deliveries.c.target)
            )
            .order_by(messages.c.created_at.desc(), deliveries.c.delivery_id.desc())
            .limit(limit)
        )
        if customer_id is not None:
            query = query.where(messages.c.customer_id == customer_id)
        if status is not None:
            query = query.where(deliveries.c.status == status)
        if message_id is not None:
            query = query.where(messages.c.message_id == message_id)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def attempts_of(self, message_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [
                dict(r._mapping)
                for r in conn.execute(
                    sa.select(attempts)
                    .where(attempts.c.message_id == message_id)
                    .order_by(attempts.c.attempt_id)
                )
            ]

    def message_body(self, message_id: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(messages.c.body).where(messages.c.message_id == message_id)
            ).scalar_one_or_none()

    def make_due(self, message_id: str, *, now: datetime, target: str | None = None) -> int:
        """Replay: the message's deliveries (or one) become pending and due now; the attempt
        count is kept, so a failed delivery gets one more attempt. Returns how many."""
        now = utc_naive(now)
        where = [deliveries.c.message_id == message_id]
        if target is not None:
            where.append(deliveries.c.target == target)
        with self.tx() as conn:
            ids = list(conn.execute(sa.select(deliveries.c.delivery_id).where(*where)).scalars())
            conn.execute(
                attempts.update()
                .where(attempts.c.delivery_id.in_(ids), attempts.c.outcome == IN_FLIGHT)
                .values(outcome=ABANDONED, finished_at=now, error="superseded by a replay")
            )
            return conn.execute(
                deliveries.update()
                .where(*where)
                .values(
                    status=PENDING,
                    next_attempt_at=now,
                    lease_owner=None,
                    lease_expires_at=None,
                    updated_at=now,
                )
            ).rowcount


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} seconds"
