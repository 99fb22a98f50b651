"""Stripe sync: customers, products, prices, subscriptions, invoices (every line), credit notes
and billing meters into ``raw.stripe_objects`` -- from the API (``StripeApiSource``, full or
incremental through ``/v1/events``) or from list exports (``StripeExportSource``).

    from meterworks.stripe_sync import StripeApiSource, sync_stripe

    source = StripeApiSource.from_env()          # STRIPE_API_KEY, optional STRIPE_API_BASE
    result = sync_stripe(con, source)            # incremental once a cursor exists
    print(result.mode, result.counts(), f"{result.objects_per_second:,.0f} objects/s")

Plain Python and DuckDB; no Dagster here.
"""

from meterworks.stripe_sync.api import StripeApiSource
from meterworks.stripe_sync.errors import StripeSyncError
from meterworks.stripe_sync.export import EXPORT_FILES, StripeExportSource
from meterworks.stripe_sync.schema import OBJECT_TYPES, STRIPE_DDL, ensure_stripe_schema
from meterworks.stripe_sync.sync import SyncResult, sync_stripe

__all__ = [
    "EXPORT_FILES",
    "OBJECT_TYPES",
    "STRIPE_DDL",
    "StripeApiSource",
    "StripeExportSource",
    "StripeSyncError",
    "SyncResult",
    "ensure_stripe_schema",
    "sync_stripe",
]
