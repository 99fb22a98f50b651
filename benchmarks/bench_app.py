"""App benchmark: render every page of the Streamlit app on a warehouse of 10 M events.

    # build once (several minutes), keep the work dir, then render every page 7 times
    .venv/bin/python benchmarks/bench_app.py --out /tmp/appbench
    # reuse the home built above (no build); --republish re-publishes the snapshot first
    .venv/bin/python benchmarks/bench_app.py --home /tmp/appbench/home --runs 7

Build (as ``bench_billing.py``, whose machinery it imports): N usage events of C customers over
95 days, ingested; a Stripe account written into ``raw.stripe_objects`` -- one subscription per
customer with the four metered prices of ``bench_billing`` plus a licensed platform fee (1 to 5
seats, changing from month to month for a fifth of the customers, so MRR has movements) and an
invoice per closed month; then the real Dagster build job (``meterworks_build``: every model,
``fct_usage_anomalies``, ``fct_threshold_crossings`` and the ``app_snapshot`` asset).

Render: every page with Streamlit's ``AppTest``, signed in as admin, ``--runs`` times each
(the first a warm-up, left out of the figures) in two modes: *warm* (the app's query cache kept
between renders, as within the cache TTL) and *cold* (the cache cleared before every render, as
the first view after a new snapshot). Pages: overview, customer (the customer with the most
events), reconciliation (with its drill-down on the largest delta), another drill-down row
picked, alerts, adjustments, pipeline health. Prints per-page median and p90 in seconds, the
snapshot's size and publish time, and the load average (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

os.environ.setdefault("STREAMLIT_LOGGER_LEVEL", "error")  # no "missing ScriptRunContext" noise
BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path[:0] = [str(REPO), str(BENCH_DIR)]

from bench_billing import LINES_SQL, PRICES, STRIPE_SQL, dbt  # noqa: E402
from bench_ingest import CATALOG_SPEC, generate  # noqa: E402

APP_SCRIPT = str(REPO / "app" / "streamlit_app.py")

#: a licensed per-seat platform fee on every subscription: MRR (the metered prices are usage)
PLATFORM_SQL = """
insert or replace into raw.stripe_objects
select 'price', 'price_platform', null, now()::timestamp, false, 'bench', null, now()::timestamp,
       json_object('id', 'price_platform', 'object', 'price', 'currency', 'usd',
           'type', 'recurring', 'billing_scheme', 'per_unit', 'unit_amount_decimal', '4900',
           'recurring', json_object('interval', 'month', 'interval_count', 1,
                                    'usage_type', 'licensed'))
"""

#: the platform item added to each subscription, and its line on each closed-month invoice
PLATFORM_ITEMS_SQL = """
update raw.stripe_objects
set data = json_merge_patch(data, json_object('items', json_object('object', 'list',
    'has_more', false, 'data', to_json(list_append(
        from_json(json_extract(data, '$.items.data'), '["JSON"]'),
        json_object('id', 'si_' || (data->>'customer') || '_platform',
            'object', 'subscription_item', 'price', json_object('id', 'price_platform'),
            'quantity', 1 + hash(data->>'customer') % 5,
            'current_period_start', json_extract(data, '$.items.data[0].current_period_start'),
            'current_period_end', json_extract(data, '$.items.data[0].current_period_end'))
    )))))
where object_type = 'subscription';

insert or replace into raw.stripe_objects
with inv as (
    select id, data->>'customer' as customer, created - interval 1 month as month_start
    from raw.stripe_objects where object_type = 'invoice'
),
q as (
    select *, case when hash(customer) % 5 = 0
        then 1 + (hash(customer) + month(month_start)) % 4
        else 1 + hash(customer) % 5 end as seats
    from inv
)
select 'line_item', 'il_si_' || customer || '_platform_' || strftime(month_start, '%Y%m'), id,
       now()::timestamp, false, 'bench', null, now()::timestamp,
       json_object('id', 'il_si_' || customer || '_platform_' || strftime(month_start, '%Y%m'),
           'object', 'line_item', 'invoice', id, 'amount', 4900 * seats, 'currency', 'usd',
           'quantity', seats,
           'period', json_object('start', epoch(month_start)::bigint,
                                 'end', epoch(month_start + interval 1 month)::bigint),
           'pricing', json_object('type', 'price_details',
               'price_details', json_object('price', 'price_platform')),
           'parent', json_object('type', 'subscription_item_details',
               'subscription_item_details', json_object('subscription', 'sub_' || customer,
                   'subscription_item', 'si_' || customer || '_platform', 'proration', false)))
from q
"""


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def build(root: Path, customers: int, events: int) -> Path:
    """A home with ``events`` events of ``customers`` customers, Stripe, and every model."""
    from bench_metering import PeakRss

    from meterworks.catalog import load_catalog
    from meterworks.config import settings
    from meterworks.ingest import ingest_files
    from meterworks.jobs import prepare_dbt_manifest, prepare_environment, run_job
    from meterworks.warehouse import ensure_raw_schema, open_warehouse, sync_catalog

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
    prepare_environment(cfg)
    prepare_dbt_manifest()
    began = time.perf_counter()
    path = root / "events.jsonl"
    generate(path, events, 0.05, "jsonl", "a", 5, customers=customers, span_days=95)
    batch = ingest_files(cfg.warehouse, [path], load_catalog(catalog_path))
    path.unlink()
    print(
        f"generated and ingested {batch.counts()['accepted']:,} events of {customers:,} "
        f"customers in {time.perf_counter() - began:.0f}s ({load()})",
        flush=True,
    )
    price_values = ", ".join(f"('{meter}', '{json.dumps(body)}')" for meter, body in PRICES.items())
    with open_warehouse(cfg.warehouse) as con:
        ensure_raw_schema(con)
        sync_catalog(con, load_catalog(catalog_path))
        con.execute(STRIPE_SQL.format(customers=customers, price_values=price_values))
        con.execute(PLATFORM_SQL)
        con.execute(PLATFORM_ITEMS_SQL)
    # as bench_billing: a first pass rates the closed months, whose amounts become the lines
    began = time.perf_counter()
    dbt("build", "--exclude-resource-type", "unit_test", "--exclude", "tag:audit")
    with open_warehouse(cfg.warehouse) as con:
        con.execute(LINES_SQL)
        # a little drift, so reconciliation has something to flag (1 line in 50)
        con.execute(
            "update raw.stripe_objects set data = json_merge_patch(data, json_object('quantity_decimal', "
            "((data->>'quantity_decimal')::decimal(38, 9) * 0.97)::varchar)) "
            "where object_type = 'line_item' and data->>'quantity_decimal' is not null "
            "and hash(id) % 50 = 0"
        )
    print(f"first dbt build (rating the lines): {time.perf_counter() - began:.0f}s", flush=True)
    with PeakRss() as rss:
        began = time.perf_counter()
        result = run_job(cfg, "meterworks_build")
        seconds = time.perf_counter() - began
    assert result.success
    print(
        f"Dagster build job (every model + the snapshot): {seconds:.0f}s, peak RSS "
        f"{rss.mb:,.0f} MB ({load()})",
        flush=True,
    )
    return home


def app_test(query: dict[str, str] | None = None):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP_SCRIPT, default_timeout=300)
    at.session_state["mw_user"] = {
        "user_id": "bench", "name": "bench", "roles": ["admin"], "method": "password",
    }  # fmt: skip
    if query:
        at.query_params.update(query)
    return at


def check(at, page: str) -> None:
    if at.exception or at.error:
        raise SystemExit(f"{page}: {[e.value for e in at.exception]} {[e.value for e in at.error]}")


def render(page: str, query: dict[str, str] | None, cold: bool) -> tuple[float, float]:
    """Wall and CPU seconds of one run of ``page`` (after the entrypoint's own first run)."""
    import streamlit as st

    at = app_test(query)
    at.run()  # sign-in, navigation and the default page (the overview)
    check(at, "entrypoint")
    if cold:
        st.cache_data.clear()
    at.switch_page(f"app_pages/{page}.py")
    began, cpu = time.perf_counter(), time.process_time()
    at.run()
    seconds = time.perf_counter() - began, time.process_time() - cpu
    check(at, page)
    return seconds


def drill_down(cold: bool) -> tuple[float, float]:
    """Seconds to pick another charge-period in the reconciliation drill-down."""
    import streamlit as st

    at = app_test()
    at.run()
    at.switch_page("app_pages/reconciliation.py")
    at.run()
    check(at, "reconciliation")
    pick = at.selectbox(key="recon_pick")
    if cold:
        st.cache_data.clear()
    began, cpu = time.perf_counter(), time.process_time()
    pick.select_index(min(7, len(pick.options) - 1)).run()
    seconds = time.perf_counter() - began, time.process_time() - cpu
    check(at, "reconciliation drill-down")
    return seconds


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--events", type=lambda s: int(s.replace("_", "")), default=10_000_000)
    parser.add_argument("--out", type=Path, default=None, help="work dir to build in and keep")
    parser.add_argument("--home", type=Path, default=None, help="reuse a built home (no build)")
    parser.add_argument("--runs", type=int, default=7, help="renders per page, the first a warm-up")
    parser.add_argument(
        "--republish", action="store_true", help="publish the snapshot again before rendering"
    )
    parser.add_argument("--pages", default="", help="comma-separated subset of the pages")
    parser.add_argument("--modes", default="warm,cold", help="warm, cold or both")
    args = parser.parse_args()

    if args.home is None:
        root = args.out or Path(tempfile.mkdtemp(prefix="mw-bench-app-"))
        home = build(root, args.customers, args.events)
    else:
        home = args.home.resolve()
    from meterworks.snapshot import publish_from_warehouse, snapshot_path

    seconds = None
    if args.republish:
        result = publish_from_warehouse(home / "warehouse.duckdb", snapshot_path(home))
        seconds = result["seconds"]
        print(f"snapshot republished in {seconds:.1f}s ({load()})", flush=True)

    os.environ.update(
        METERWORKS_HOME=str(home),
        DAGSTER_HOME=str(home / "dagster"),
        METERWORKS_STATE_URL=f"sqlite:///{home / 'bench-state.db'}",
    )
    os.environ.pop("STRIPE_API_KEY", None)
    import duckdb

    snap = snapshot_path(home)
    con = duckdb.connect(str(snap), read_only=True)
    events = con.execute("select sum(events) from app.raw_event_counts").fetchone()[0]
    big = con.execute(
        "select customer_id from app.raw_event_counts group by 1 order by sum(events) desc limit 1"
    ).fetchone()[0]
    published = con.execute("select published_at from app.snapshot_info").fetchone()[0]
    rows = dict(con.execute("select * from app.snapshot_tables").fetchall())
    con.close()
    meta = home / "dagster"
    if seconds is None and meta.is_dir():
        import dagster as dg

        with dg.DagsterInstance.from_config(str(meta)) as instance:
            event = instance.get_latest_materialization_event(dg.AssetKey("app_snapshot"))
        if event is not None:
            seconds = event.asset_materialization.metadata["seconds"].value
    print(
        f"snapshot {snap}: {snap.stat().st_size / 2**20:,.0f} MiB, published {published:%Y-%m-%d %H:%M}"
        + (f" (publish: {seconds:.1f}s)" if seconds is not None else "")
        + f"; {events:,} raw events; biggest customer {big}"
    )
    print("  " + ", ".join(f"{t} {n:,}" for t, n in sorted(rows.items())))

    cases = {
        "overview": lambda cold: render("overview", None, cold),
        "customer": lambda cold: render("customer", {"customer": big}, cold),
        "reconciliation": lambda cold: render("reconciliation", None, cold),
        "reconciliation drill-down": drill_down,
        "alerts": lambda cold: render("alerts", None, cold),
        "adjustments": lambda cold: render("adjustments", None, cold),
        "pipeline health": lambda cold: render("pipeline_health", None, cold),
    }
    if args.pages:
        wanted = [p.strip() for p in args.pages.split(",")]
        cases = {k: v for k, v in cases.items() if k in wanted}
    print(
        f"\n{'page':<27} {'mode':<5} {'median':>7} {'p90':>7} {'cpu':>7} {'warm-up':>8}"
        f"  (wall seconds, medians of {max(1, args.runs - 1)} runs; cpu: median CPU seconds)"
    )
    worst = 0.0
    for mode in [m.strip() for m in args.modes.split(",")]:
        for name, case in cases.items():
            times = [case(mode == "cold") for _ in range(args.runs)]
            measured = times[1:] or times
            wall = [w for w, _ in measured]
            median = statistics.median(wall)
            worst = max(worst, median)
            print(
                f"{name:<27} {mode:<5} {median:>6.3f}s {p90(wall):>6.3f}s "
                f"{statistics.median(c for _, c in measured):>6.3f}s {times[0][0]:>7.3f}s"
                f"  {load()}",
                flush=True,
            )
    print(f"\nslowest page median: {worst:.3f}s (target < 1 s)")


if __name__ == "__main__":
    main()
