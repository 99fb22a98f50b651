"""Webhook delivery settings, resolved from the environment when called (never at import).

=============================  =========================================================
``METERWORKS_STATE_URL``       SQLAlchemy URL of the app-side state (delivery outbox,
                               endpoints and their secrets); default
                               ``sqlite:///$METERWORKS_HOME/state.db``
``SVIX_AUTH_TOKEN``            set: deliver through Svix; unset: the embedded sender
``SVIX_SERVER_URL``            optional Svix server (self-hosted or a local stub)
``METERWORKS_WEBHOOK_TIMEOUT``      seconds an endpoint has to answer (default 15, like Svix)
``METERWORKS_WEBHOOK_DISABLE_AFTER`` seconds of continuous failure after which an endpoint is
                               disabled (default 432000 = 5 days, like Svix)
``METERWORKS_WEBHOOK_WORKERS``  concurrent deliveries (default 16)
=============================  =========================================================
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta

from meterworks.state.engine import state_url

#: Svix's schedule after a failed attempt: 8 attempts in all over about 27.6 hours.
SVIX_RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
DEFAULT_TIMEOUT = 15.0
DEFAULT_DISABLE_AFTER = timedelta(days=5)
DEFAULT_WORKERS = 16
EMBEDDED = "embedded"
SVIX = "svix"


@dataclass(frozen=True)
class WebhookSettings:
    """How alerts leave Meterworks. ``svix_auth_token`` set means Svix mode."""

    state_url: str
    svix_auth_token: str | None = field(default=None, repr=False)
    svix_server_url: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    disable_after: timedelta = DEFAULT_DISABLE_AFTER
    workers: int = DEFAULT_WORKERS
    retry_schedule: tuple[timedelta, ...] = SVIX_RETRY_SCHEDULE

    @property
    def mode(self) -> str:
        return SVIX if self.svix_auth_token else EMBEDDED


def webhook_settings(home: str | os.PathLike[str] | None = None) -> WebhookSettings:
    """The settings in force now (environment read at call time)."""
    return WebhookSettings(
        state_url=state_url(home),
        svix_auth_token=os.environ.get("SVIX_AUTH_TOKEN") or None,
        svix_server_url=os.environ.get("SVIX_SERVER_URL") or None,
        timeout=float(os.environ.get("METERWORKS_WEBHOOK_TIMEOUT", DEFAULT_TIMEOUT)),
        disable_after=timedelta(
            seconds=float(
                os.environ.get(
                    "METERWORKS_WEBHOOK_DISABLE_AFTER", DEFAULT_DISABLE_AFTER.total_seconds()
                )
            )
        ),
        workers=int(os.environ.get("METERWORKS_WEBHOOK_WORKERS", DEFAULT_WORKERS)),
    )
