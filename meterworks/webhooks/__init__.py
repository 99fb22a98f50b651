"""Customer webhooks: the alert outbox delivered through Svix or the embedded signed sender.

Flow: ``alerts.outbox`` (warehouse) --``enqueue_from_outbox``--> delivery store (SQLAlchemy,
``$METERWORKS_STATE_URL``, SQLite under ``$METERWORKS_HOME`` by default) --``drain``--> Svix
(``SVIX_AUTH_TOKEN`` set) or each customer's endpoint, signed as Svix signs.
"""

from meterworks.webhooks.delivery import (
    DrainReport,
    EmbeddedSender,
    SvixSender,
    drain,
    make_sender,
    replay,
)
from meterworks.webhooks.outbox import EnqueueResult, enqueue_from_outbox, sync_endpoints
from meterworks.webhooks.settings import (
    SVIX_RETRY_SCHEDULE,
    WebhookSettings,
    state_url,
    webhook_settings,
)
from meterworks.webhooks.store import DeliveryStore

__all__ = [
    "SVIX_RETRY_SCHEDULE",
    "DeliveryStore",
    "DrainReport",
    "EmbeddedSender",
    "EnqueueResult",
    "SvixSender",
    "WebhookSettings",
    "drain",
    "enqueue_from_outbox",
    "make_sender",
    "replay",
    "state_url",
    "sync_endpoints",
    "webhook_settings",
]
