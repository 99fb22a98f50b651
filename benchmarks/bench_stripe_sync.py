"""Stripe sync benchmark: a full sync of N invoices through the real SDK into a fresh DuckDB.

    .venv/bin/python benchmarks/bench_stripe_sync.py                      # 100,000 invoices
    .venv/bin/python benchmarks/bench_stripe_sync.py --invoices 10000 --lines 5

Starts ``tests/stripe_server.py`` as a child process (so the figures are the sync's own, not
the server's) holding N invoices of ``--lines`` lines each, customers with subscriptions on a
flat, a tiered and a metered price (about 10 % canceled), a credit note for 1 % of the invoices
and a billing meter with usage; then runs ``sync_stripe(con, StripeApiSource(...), full=True)``
into a new warehouse file (``meterworks.warehouse.connect``: UTC, memory limit) and prints the
objects per second, the requests, the rows per object type (checked against what the server
holds) and the peak RSS of this process (``resource.getrusage``). ``--incremental`` adds a
follow-up incremental sync with nothing new (the cost of an idle poll). Figures are printed,
never asserted: this is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from meterworks.stripe_sync import StripeApiSource, sync_stripe  # noqa: E402
from meterworks.warehouse import connect  # noqa: E402
from tests.stripe_server import BASE_TIME, DEFAULT_KEY  # noqa: E402


def _peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # KiB on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--lines", type=int, default=3, help="lines per invoice")
    parser.add_argument("--customers", type=int, default=None)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--incremental", action="store_true", help="then an idle incremental")
    args = parser.parse_args(argv)

    cmd = [
        sys.executable,
        str(REPO / "tests" / "stripe_server.py"),
        "--invoices",
        str(args.invoices),
        "--lines",
        str(args.lines),
    ]
    if args.customers:
        cmd += ["--customers", str(args.customers)]
    t0 = time.perf_counter()
    server = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        first = server.stdout.readline().split(maxsplit=1)
        if len(first) != 2:
            raise SystemExit("the test server did not start")
        url, expected = first[0], json.loads(first[1])
        print(f"server: {url}, {expected} (generated in {time.perf_counter() - t0:.1f} s)")

        with tempfile.TemporaryDirectory(prefix="bench_stripe_") as tmp:
            con = connect(Path(tmp) / "warehouse.duckdb")
            source = StripeApiSource(DEFAULT_KEY, api_base=url, page_size=args.page_size)
            now = datetime.fromtimestamp(BASE_TIME, UTC)
            result = sync_stripe(con, source, full=True, now=now)
            rows = dict(
                con.execute(
                    "select object_type, count(*) from raw.stripe_objects group by 1"
                ).fetchall()
            )
            print(f"full sync: {result.total_objects:,} objects in {result.seconds:.1f} s")
            print(f"  {result.objects_per_second:,.0f} objects/s")
            print(f"  {result.requests:,} requests, {result.retries} retries")
            print(f"  counts: {result.counts()}")
            checks = {
                "customer": expected["customers"],
                "subscription": expected["subscriptions"],
                "invoice": expected["invoices"],
                "line_item": expected["line_items"],
                "credit_note": expected["credit_notes"],
            }
            bad = {k: (rows.get(k), v) for k, v in checks.items() if rows.get(k) != v}
            print(f"  rows match the server: {bad or 'yes'}")
            if args.incremental:
                inc = sync_stripe(con, source, now=now)
                print(
                    f"incremental (nothing new): {inc.seconds:.2f} s, {inc.requests} requests, "
                    f"{inc.total_objects} objects"
                )
            con.close()
            db_mb = (Path(tmp) / "warehouse.duckdb").stat().st_size / 2**20
            print(f"warehouse file: {db_mb:,.0f} MB")
    finally:
        if server.stdin:
            server.stdin.close()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
    print(f"peak RSS: {_peak_rss_mb():,.0f} MB (sync process)")
    print(f"peak RSS: {_peak_rss_mb(resource.RUSAGE_CHILDREN):,.0f} MB (test server)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
