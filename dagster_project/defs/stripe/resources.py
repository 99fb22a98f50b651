"""The Stripe connection, configured from the environment when a run starts."""

import os

import dagster as dg

from meterworks.stripe_sync import StripeApiSource, StripeExportSource


class StripeResource(dg.ConfigurableResource):
    """``STRIPE_API_KEY`` (and optionally ``STRIPE_API_BASE``, any Stripe-compatible server)
    selects the API; without a key the sync reads the list exports in ``export_dir``
    (default ``$METERWORKS_HOME/stripe``). Unset fields are read when a run starts."""

    api_key: str | None = None
    api_base: str | None = None
    max_network_retries: int = 5
    #: Days of billing-meter event summaries to fetch (one request per metered customer and
    #: meter on every sync, slow on large accounts); 0 turns them off.
    meter_summary_days: int = 35

    def source(self, export_dir) -> StripeApiSource | StripeExportSource:
        key = self.api_key or os.environ.get("STRIPE_API_KEY")
        if key:
            base = self.api_base or os.environ.get("STRIPE_API_BASE")
            return StripeApiSource(key, api_base=base, max_network_retries=self.max_network_retries)
        return StripeExportSource(export_dir)


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"stripe": StripeResource()})
