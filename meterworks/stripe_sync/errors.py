"""The one error the Stripe sync raises, with secrets scrubbed from its message."""

from __future__ import annotations

import re

# Secret and restricted keys, webhook secrets, bearer tokens (full or masked by Stripe).
_SECRET = re.compile(r"\b(?:sk|rk|whsec)_[A-Za-z0-9_*]+|Bearer\s+\S+", re.IGNORECASE)


def scrub(text: str, *secrets: str | None) -> str:
    """``text`` on one line, without any of ``secrets`` or anything shaped like a Stripe key."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    text = _SECRET.sub("[redacted]", text)
    return " ".join(text.split())


class StripeSyncError(Exception):
    """A sync that could not complete; the warehouse keeps its previous state.

    The message is one line and never contains the API key. ``status`` is the HTTP status of
    the failing Stripe request (when there was one) and ``code`` Stripe's error code.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        secrets: tuple[str | None, ...] = (),
    ) -> None:
        message = scrub(message, *secrets)
        super().__init__(message)
        self.status = status
        self.code = code
