"""Customer webhooks: queue the alert outbox for delivery, and drain it (``meterworks.webhooks``)."""
