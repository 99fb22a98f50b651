{#- The user-supplied FX table (METERWORKS_FX_RATES, default data/fx_rates.csv): one rate per
    currency and month; amount in reporting currency = amount in `currency` × rate_to_reporting.
    The reporting currency itself always converts at 1 (fct_mrr does not look it up). A table,
    so the file is read when dbt builds (the path may be relative to dbt's directory). -#}
{{ config(materialized='table') }}

select
    cast(month as date) as month,  -- noqa: RF04
    cast(rate_to_reporting as decimal(18, 10)) as rate_to_reporting,
    lower(trim(currency)) as currency
from {{ meterworks.fx_rates_relation() }}
