"""MRR benchmark: fct_mrr and fct_mrr_movements for C customers x M months of Stripe history.

    .venv/bin/python benchmarks/bench_mrr.py                       # 10,000 customers x 36 months
    .venv/bin/python benchmarks/bench_mrr.py --customers 1000 --months 12

Writes a Stripe account straight into ``raw.stripe_objects`` of a fresh warehouse (current API
shapes): monthly, quarterly and annual licensed prices; one subscription per customer starting
in a random month of the window, a fifth of them cancelled later, a tenth with a second
subscription; one paid invoice with one licensed line per service period. Then times
``dbt run`` of the Stripe staging, the revenue intermediates and the two MRR marts (median of
3, each including ~4 s of dbt start-up) and prints rows and peak RSS of the dbt process.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR.parent)]

from meterworks.config import DBT_EXECUTABLE, DBT_PROJECT_DIR  # noqa: E402
from meterworks.warehouse import ensure_raw_schema, open_warehouse  # noqa: E402

MODELS = "+fct_mrr_movements"

STRIPE_SQL = """
insert or replace into raw.stripe_objects
with params as (
    select date_trunc('month', now()::timestamp) - to_months({months}) as window_start
),
price as (
    select * from (values
        ('price_monthly', 'month', 1, 10000),
        ('price_quarterly', 'month', 3, 27000),
        ('price_annual', 'year', 1, 96000)
    ) p(price_id, interval_name, interval_count, unit_amount)
),
subs as (
    select
        'cus_' || lpad(i::varchar, 6, '0') as customer,
        'sub_' || lpad(i::varchar, 6, '0') || '_' || k as sub_id,
        (['price_monthly', 'price_monthly', 'price_quarterly', 'price_annual'])[
            1 + (hash(i * 3 + k) % 4)::int] as price_id,
        1 + (hash(i * 5 + k) % 3)::int as quantity,
        (select window_start from params) + to_months((hash(i * 7 + k) % {months})::int) as start_at,
        hash(i * 11 + k) % 5 = 0 as cancels
    from range({customers}) t(i), range(2) s(k)
    where k = 0 or hash(i * 13) % 10 = 0
),
sub_periods as (
    select s.*, p.interval_name, p.interval_count, p.unit_amount,
        case when p.interval_name = 'year' then 12 else p.interval_count end as months_per_period
    from subs s join price p using (price_id)
),
ends as (
    select *,
        case when cancels then least(start_at + to_months(months_per_period * (1 + (hash(sub_id) % 6)::int)),
                                      date_trunc('month', now()::timestamp))
        end as ended_at
    from sub_periods
),
periods as (
    select e.*, start_at + to_months(months_per_period * n) as period_start,
        start_at + to_months(months_per_period * (n + 1)) as period_end
    from ends e, range(0, 40) r(n)
    where start_at + to_months(months_per_period * n) < coalesce(ended_at, now()::timestamp)
)
select 'customer', customer, null, now()::timestamp, false, 'bench', null, now()::timestamp,
       json_object('id', customer, 'object', 'customer', 'currency', 'usd')
from (select distinct customer from subs)
union all
select 'price', price_id, null, now()::timestamp, false, 'bench', null, now()::timestamp,
       json_object('id', price_id, 'object', 'price', 'currency', 'usd', 'type', 'recurring',
           'billing_scheme', 'per_unit', 'unit_amount', unit_amount,
           'unit_amount_decimal', unit_amount::varchar,
           'recurring', json_object('interval', interval_name, 'interval_count', interval_count,
               'usage_type', 'licensed'))
from price
union all
select 'subscription', sub_id, null, start_at, false, 'bench', null, now()::timestamp,
       json_object('id', sub_id, 'object', 'subscription', 'customer', customer,
           'status', case when ended_at is null then 'active' else 'canceled' end,
           'currency', 'usd', 'start_date', epoch(start_at)::bigint,
           'billing_cycle_anchor', epoch(start_at)::bigint,
           'ended_at', epoch(ended_at)::bigint, 'canceled_at', epoch(ended_at)::bigint,
           'items', json_object('object', 'list', 'has_more', false, 'data', [json_object(
               'id', 'si_' || sub_id, 'object', 'subscription_item',
               'price', json_object('id', price_id), 'quantity', quantity,
               'current_period_start', epoch((select max(p.period_start) from periods p
                                              where p.sub_id = e.sub_id))::bigint,
               'current_period_end', epoch((select max(p.period_end) from periods p
                                            where p.sub_id = e.sub_id))::bigint)]))
from ends e
union all
select 'invoice', 'in_' || sub_id || '_' || strftime(period_start, '%Y%m'), null, period_start,
       false, 'bench', null, now()::timestamp,
       json_object('id', 'in_' || sub_id || '_' || strftime(period_start, '%Y%m'),
           'object', 'invoice', 'customer', customer, 'status', 'paid', 'currency', 'usd',
           'parent', json_object('subscription_details', json_object('subscription', sub_id)),
           'status_transitions', json_object('finalized_at', epoch(period_start)::bigint))
from periods
union all
select 'line_item', 'il_' || sub_id || '_' || strftime(period_start, '%Y%m'),
       'in_' || sub_id || '_' || strftime(period_start, '%Y%m'), period_start, false, 'bench',
       null, now()::timestamp,
       json_object('id', 'il_' || sub_id || '_' || strftime(period_start, '%Y%m'),
           'object', 'line_item', 'amount', unit_amount * quantity, 'currency', 'usd',
           'quantity', quantity,
           'period', json_object('start', epoch(period_start)::bigint,
                                 'end', epoch(period_end)::bigint),
           'pricing', json_object('type', 'price_details',
               'price_details', json_object('price', price_id)),
           'parent', json_object('type', 'subscription_item_details',
               'subscription_item_details', json_object('subscription', sub_id,
                   'subscription_item', 'si_' || sub_id, 'proration', false)))
from periods
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--out", type=Path, default=None, help="work dir (default: a temp dir)")
    args = parser.parse_args()

    root = args.out or Path(tempfile.mkdtemp(prefix="mw-bench-mrr-"))
    root.mkdir(parents=True, exist_ok=True)
    warehouse = root / "warehouse.duckdb"
    warehouse.unlink(missing_ok=True)
    os.environ["METERWORKS_WAREHOUSE"] = str(warehouse)
    with open_warehouse(warehouse) as con:
        ensure_raw_schema(con)
        con.execute(STRIPE_SQL.format(customers=args.customers, months=args.months))
        counts = dict(
            con.execute(
                "select object_type, count(*) from raw.stripe_objects group by 1"
            ).fetchall()
        )
    print(
        f"stripe: {counts.get('customer', 0):,} customers, {counts.get('subscription', 0):,} "
        f"subscriptions, {counts.get('invoice', 0):,} invoices / lines over {args.months} months"
    )
    target = root / "target"
    seconds = []
    for _ in range(3):
        began = time.perf_counter()
        subprocess.run(
            [DBT_EXECUTABLE, "run", "--select", MODELS, "--target-path", str(target), "--quiet"],
            cwd=DBT_PROJECT_DIR,
            check=True,
        )
        seconds.append(time.perf_counter() - began)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    with open_warehouse(warehouse, read_only=True) as con:
        rows = con.execute("select count(*) from marts.fct_mrr").fetchone()[0]
        last = con.execute(
            "select month, ending_mrr / 100, ending_customers from marts.fct_mrr_movements "
            "order by month desc limit 1"
        ).fetchone()
    print(
        f"dbt run {MODELS}: median {statistics.median(seconds):.1f}s of "
        f"{', '.join(f'{s:.1f}' for s in seconds)} (incl. dbt start-up); fct_mrr {rows:,} "
        f"customer-months; {last[0]:%Y-%m} ending MRR {last[1]:,.2f} USD, {last[2]:,} customers; "
        f"peak RSS of dbt {peak_mb:,.0f} MB"
    )
    if args.out is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
