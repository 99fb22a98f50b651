"""Svix / Standard Webhooks signatures, so receivers verify with the official libraries.

The signed content is ``"{svix-id}.{svix-timestamp}.{raw body}"``, HMAC-SHA256 keyed with the
base64-decoded part of the secret after ``whsec_``; ``svix-signature`` is ``v1,<base64>``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24  # what Svix generates


def generate_secret() -> str:
    """A fresh endpoint secret, ``whsec_`` + base64 of 24 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``svix-signature`` value for one attempt (``key`` from ``secret_key``)."""
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signed_headers(key: bytes, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Svix headers (plus the content type) of one attempt."""
    return {
        "content-type": "application/json",
        "svix-id": msg_id,
        "svix-timestamp": str(timestamp),
        "svix-signature": signature(key, msg_id, timestamp, body),
    }


def mask(secret: str | None) -> str:
    """What may be shown of a secret: its prefix only."""
    return f"{SECRET_PREFIX}…" if secret else "-"
