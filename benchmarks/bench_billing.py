"""Billing benchmark: rating and reconciliation for C customers x 4 meters.

    .venv/bin/python benchmarks/bench_billing.py                    # 10,000 customers, 5 M events
    .venv/bin/python benchmarks/bench_billing.py --customers 2000 --events 1000000

In a fresh Meterworks home:

1. N usage events of C customers over the last 95 days (``bench_ingest.generate``), ingested;
2. a Stripe account written straight into ``raw.stripe_objects`` (current API shapes): one
   subscription per customer (anchored on the 1st, UTC) with four metered items -- per-unit,
   graduated tiers with a flat fee, volume tiers, package (divide_by 1000, round up) -- and an
   invoice with four lines for each closed month, its quantities those Meterworks measures;
3. the real Dagster build job (``dbt build``) -- then the billing models alone again
   (``dbt run`` of the billing intermediates and the two marts) to time rating and
   reconciliation without the usage models.

Prints the billing rows and per-model times from dbt's run_results.json, plus peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR.parent), str(BENCH_DIR)]

from bench_ingest import CATALOG_SPEC, generate  # noqa: E402
from bench_metering import PeakRss  # noqa: E402

from meterworks.catalog import load_catalog  # noqa: E402
from meterworks.config import DBT_EXECUTABLE, DBT_PROJECT_DIR, settings  # noqa: E402
from meterworks.ingest import ingest_files  # noqa: E402
from meterworks.warehouse import open_warehouse  # noqa: E402

BILLING_MODELS = [
    "int_billing_prices",
    "int_billing_price_tiers",
    "int_price_meters",
    "int_billing_charges",
    "int_invoiced_lines",
    "int_billing_periods",
    "fct_invoice_reconciliation",
    "fct_projected_invoice",
]

#: The four metered prices (meter code -> Stripe price fields); amounts in cents.
PRICES = {
    "api_calls": {"billing_scheme": "per_unit", "unit_amount_decimal": "0.05"},
    "tokens": {
        "billing_scheme": "per_unit",
        "unit_amount_decimal": "8",
        "transform_quantity": {"divide_by": 1000, "round": "up"},
    },
    "storage_gb": {
        "billing_scheme": "tiered",
        "tiers_mode": "volume",
        "tiers": [
            {"up_to": 100, "unit_amount_decimal": "25", "flat_amount_decimal": None},
            {"up_to": None, "unit_amount_decimal": "20", "flat_amount_decimal": "500"},
        ],
    },
    "active_users": {
        "billing_scheme": "tiered",
        "tiers_mode": "graduated",
        "tiers": [
            {"up_to": 5, "unit_amount_decimal": "0", "flat_amount_decimal": "1000"},
            {"up_to": None, "unit_amount_decimal": "300", "flat_amount_decimal": None},
        ],
    },
}

STRIPE_SQL = """
insert or replace into raw.stripe_objects
with cust as (
    select 'cust-' || lpad(i::varchar, 5, '0') as id from range({customers}) t(i)
),
months as (
    select date_trunc('month', now()::timestamp) - to_months(k) as month_start
    from range(0, 4) t(k)
),
price as (
    select * from (values {price_values}) p(meter, body)
),
items as (
    select c.id as customer, p.meter, 'si_' || c.id || '_' || p.meter as item_id,
           'price_' || p.meter as price_id
    from cust c cross join price p
)
select 'customer', id, null, now()::timestamp, false, 'bench', null, now()::timestamp,
       json_object('id', id, 'object', 'customer', 'currency', 'usd')
from cust
union all
select 'price', 'price_' || meter, null, now()::timestamp, false, 'bench', null, now()::timestamp,
       json_merge_patch(body::json, json_object('id', 'price_' || meter, 'object', 'price',
           'currency', 'usd', 'type', 'recurring', 'metadata', json_object('meterworks_meter', meter),
           'recurring', json_object('interval', 'month', 'interval_count', 1, 'usage_type', 'metered')))
from price
union all
select 'subscription', 'sub_' || c.id, null, now()::timestamp, false, 'bench', null, now()::timestamp,
       json_object('id', 'sub_' || c.id, 'object', 'subscription', 'customer', c.id,
           'status', 'active', 'currency', 'usd',
           'start_date', epoch((select min(month_start) from months))::bigint,
           'billing_cycle_anchor', epoch((select min(month_start) from months))::bigint,
           'items', json_object('object', 'list', 'has_more', false, 'data', (
               select list(json_object('id', it.item_id, 'object', 'subscription_item',
                   'price', json_object('id', it.price_id), 'quantity', 1,
                   'current_period_start', epoch((select max(month_start) from months))::bigint,
                   'current_period_end',
                       epoch((select max(month_start) from months) + interval 1 month)::bigint))
               from items it where it.customer = c.id)))
from cust c
union all
select 'invoice', 'in_' || c.id || '_' || strftime(m.month_start, '%Y%m'), null,
       m.month_start + interval 1 month, false, 'bench', null, now()::timestamp,
       json_object('id', 'in_' || c.id || '_' || strftime(m.month_start, '%Y%m'),
           'object', 'invoice', 'customer', c.id, 'status', 'paid', 'currency', 'usd',
           'parent', json_object('subscription_details', json_object('subscription', 'sub_' || c.id)),
           'status_transitions', json_object('finalized_at',
               epoch(m.month_start + interval 1 month + interval 1 hour)::bigint))
from cust c cross join months m
where m.month_start + interval 1 month <= now()::timestamp
union all
-- placeholder lines (quantity 0); bench replaces them with the measured quantities
select 'line_item', 'il_' || it.item_id || '_' || strftime(m.month_start, '%Y%m'),
       'in_' || it.customer || '_' || strftime(m.month_start, '%Y%m'), now()::timestamp, false,
       'bench', null, now()::timestamp,
       json_object('id', 'il_' || it.item_id || '_' || strftime(m.month_start, '%Y%m'),
           'object', 'line_item', 'amount', 0, 'currency', 'usd', 'quantity', 0,
           'period', json_object('start', epoch(m.month_start)::bigint,
                                 'end', epoch(m.month_start + interval 1 month)::bigint),
           'pricing', json_object('type', 'price_details',
               'price_details', json_object('price', it.price_id)),
           'parent', json_object('type', 'subscription_item_details',
               'subscription_item_details', json_object('subscription', 'sub_' || it.customer,
                   'subscription_item', it.item_id, 'proration', false)))
from items it cross join months m
where m.month_start + interval 1 month <= now()::timestamp
"""

LINES_SQL = """
insert or replace into raw.stripe_objects
select 'line_item', 'il_' || r.subscription_item_id || '_' || strftime(r.period_start, '%Y%m'),
       'in_' || r.customer_id || '_' || strftime(r.period_start, '%Y%m'), now()::timestamp, false,
       'bench', null, now()::timestamp,
       json_object('id', 'il_' || r.subscription_item_id || '_' || strftime(r.period_start, '%Y%m'),
           'object', 'line_item',
           'invoice', 'in_' || r.customer_id || '_' || strftime(r.period_start, '%Y%m'),
           'amount', r.expected_amount, 'currency', 'usd',
           'quantity_decimal', r.measured_quantity::varchar,
           'period', json_object('start', epoch(r.period_start)::bigint,
                                 'end', epoch(r.period_end)::bigint),
           'pricing', json_object('type', 'price_details',
               'price_details', json_object('price', r.stripe_price_id)),
           'parent', json_object('type', 'subscription_item_details',
               'subscription_item_details', json_object('subscription', r.subscription_id,
                   'subscription_item', r.subscription_item_id, 'proration', false)))
from marts.fct_invoice_reconciliation r
"""


def dbt(*args: str) -> float:
    began = time.perf_counter()
    subprocess.run(
        [DBT_EXECUTABLE, *args, "--quiet"], cwd=DBT_PROJECT_DIR, check=True, env=os.environ.copy()
    )
    return time.perf_counter() - began


def model_times(target: Path) -> dict[str, float]:
    results = json.loads((target / "run_results.json").read_text())["results"]
    return {r["unique_id"].split(".")[-1]: r["execution_time"] for r in results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--events", type=lambda s: int(s.replace("_", "")), default=5_000_000)
    parser.add_argument("--out", type=Path, default=None, help="work dir (default: a temp dir)")
    args = parser.parse_args()

    root = args.out or Path(tempfile.mkdtemp(prefix="mw-bench-billing-"))
    root.mkdir(parents=True, exist_ok=True)
    home = root / "home"
    shutil.rmtree(home, ignore_errors=True)
    catalog_path = root / "catalog.yml"
    catalog_path.write_text(
        yaml.safe_dump({**CATALOG_SPEC, "backdating_days": 120}, sort_keys=False)
    )
    os.environ.update(
        METERWORKS_HOME=str(home),
        DAGSTER_HOME=str(home / "dagster"),
        METERWORKS_CATALOG=str(catalog_path),
    )
    cfg = settings(home)
    from meterworks.jobs import prepare_dbt_manifest, prepare_environment, run_job

    prepare_environment(cfg)
    prepare_dbt_manifest()
    events = root / "events.jsonl"
    generate(events, args.events, 0.05, "jsonl", "b", 3, customers=args.customers, span_days=95)
    batch = ingest_files(cfg.warehouse, [events], load_catalog(catalog_path))
    print(f"ingested {batch.counts()['accepted']:,} events of {args.customers:,} customers")

    price_values = ", ".join(f"('{meter}', '{json.dumps(body)}')" for meter, body in PRICES.items())
    with open_warehouse(cfg.warehouse) as con:
        from meterworks.warehouse import ensure_raw_schema, sync_catalog

        ensure_raw_schema(con)
        sync_catalog(con, load_catalog(catalog_path))
        con.execute(STRIPE_SQL.format(customers=args.customers, price_values=price_values))
    # first pass: the lines say 0, so reconciliation measures and rates every closed month;
    # write those as the lines Stripe invoiced, then time reconciliation for real
    dbt("build", "--exclude-resource-type", "unit_test", "--exclude", "tag:audit")
    with open_warehouse(cfg.warehouse) as con:
        con.execute(LINES_SQL)
        lines = con.execute(
            "select count(*) from raw.stripe_objects where object_type = 'line_item'"
        ).fetchone()[0]
    print(f"stripe: {args.customers:,} subscriptions x 4 metered prices, {lines:,} invoice lines")

    with PeakRss() as rss:
        began = time.perf_counter()
        result = run_job(cfg, "meterworks_build")
        build = time.perf_counter() - began
    assert result.success
    print(f"Dagster build job (every model + data tests): {build:.1f}s, peak RSS {rss.mb:,.0f} MB")

    target = root / "target"
    runs = []
    for _ in range(3):
        seconds = dbt("run", "--select", *BILLING_MODELS, "--target-path", str(target))
        runs.append((seconds, model_times(target)))
    seconds, times = sorted(runs, key=lambda r: r[0])[1]
    with open_warehouse(cfg.warehouse, read_only=True) as con:
        statuses = dict(
            con.execute(
                "select status, count(*) from marts.fct_invoice_reconciliation group by 1"
            ).fetchall()
        )
        projected = con.execute("select count(*) from marts.fct_projected_invoice").fetchone()[0]
    rated = sum(statuses.values())
    print(
        f"billing models alone (median of 3 `dbt run`, incl. ~4 s dbt start-up): {seconds:.1f}s; "
        f"reconciliation {times['fct_invoice_reconciliation']:.2f}s for {rated:,} "
        f"customer-period-meter rows ({statuses}), projection "
        f"{times['fct_projected_invoice']:.2f}s for {projected:,} open charges"
    )
    if args.out is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
