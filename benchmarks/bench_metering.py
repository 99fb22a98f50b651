"""Metering benchmark: N events -> fresh meter totals, then 100k-event batches on top.

    make bench                                   # 10 M events, JSON Lines and Parquet
    .venv/bin/python benchmarks/bench_metering.py --events 1000000 --format jsonl

For each format, in a fresh Meterworks home:

1. generate N events (``bench_ingest.generate``: ~2,000 customers in six time zones, four
   meters -- count, sum grouped by model, max, unique_count -- five export shapes in JSONL,
   ~5 % redeliveries);
2. ingest them (``meterworks.ingest.ingest_files``, what the ``raw_events`` asset calls) and
   materialize every dbt model with the real Dagster build job (``dbt build``: models, data
   tests and unit tests) -- "time to fresh meter totals" is the sum;
3. ``--followups`` times: ingest one more 100k-event batch -- events of the last
   ``--followup-span-hours`` (24 by default: what an hourly feed delivers, late events
   included) -- and run the usage build job again (incremental models), the figures the issue
   bounds by history size.

Peak RSS is sampled every 50 ms over this process and its children (dbt runs in this process,
or as a child with ``METERWORKS_DBT_IN_PROCESS=0``), summed. Figures are printed, never
asserted: this is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import yaml

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR.parent), str(BENCH_DIR)]

from bench_ingest import CATALOG_SPEC, generate  # noqa: E402

from meterworks.catalog import load_catalog  # noqa: E402
from meterworks.config import settings  # noqa: E402
from meterworks.ingest import ingest_files  # noqa: E402

TIMEZONES = [
    "UTC",
    "America/New_York",
    "Europe/Berlin",
    "Asia/Tokyo",
    "America/Los_Angeles",
    "Asia/Kolkata",
]


class PeakRss:
    """Largest summed RSS of process trees, sampled in a thread: by default this process and
    its descendants. ``roots`` (called at every sample, so processes started meanwhile count
    as soon as they exist) names other trees' root pids instead."""

    def __init__(
        self, interval: float = 0.05, roots: Callable[[], list[int]] | None = None
    ) -> None:
        self.interval = interval
        self.roots = roots or (lambda: [os.getpid()])
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        seen: dict[int, int] = {}
        for pid in self.roots():
            with contextlib.suppress(psutil.Error):
                root = psutil.Process(pid)
                for proc in [root, *root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        seen[proc.pid] = proc.memory_info().rss
        return sum(seen.values())

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mb(self) -> float:
        return self.peak / 1e6


def write_catalog(path: Path) -> None:
    customers = [
        {"id": f"cust-{i:05d}", "timezone": TIMEZONES[i % len(TIMEZONES)]} for i in range(2000)
    ]
    path.write_text(yaml.safe_dump({**CATALOG_SPEC, "customers": customers}, sort_keys=False))


def meterworks_dbt_project_manifest() -> Path:
    from dagster_project.defs.transform.project import meterworks_dbt_project

    return meterworks_dbt_project.manifest_path


def run_build(cfg, job: str = "meterworks_usage_build") -> tuple[float, float, float]:
    """A Dagster build job -- by default the usage path the inbox sensor runs -- as (seconds
    until fct_meter_totals was materialized, until fct_usage_hourly was, the whole job)."""
    from meterworks.jobs import run_job

    began_wall, began = time.time(), time.perf_counter()
    result = run_job(cfg, job)
    if not result.success:
        raise SystemExit("the build job failed")
    total = time.perf_counter() - began
    # the asset timestamps are wall-clock: a clock step during the job would skew them
    stepped = (time.time() - began_wall) - total
    if abs(stepped) > 0.25:
        print(f"warning: the wall clock moved {stepped:+.2f}s against the monotonic clock "
              "during the build; its in-job times are off by up to that much")  # fmt: skip
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        events = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)

    def materialized_after(asset: str) -> float:
        stamps = [
            entry.timestamp for entry in events if entry.dagster_event.asset_key.path[-1] == asset
        ]
        return max(stamps) - began_wall if stamps else total

    return materialized_after("fct_meter_totals"), materialized_after("fct_usage_hourly"), total


def bench_format(args: argparse.Namespace, fmt: str, root: Path) -> None:
    home = root / f"home-{fmt}"
    shutil.rmtree(home, ignore_errors=True)
    os.environ["METERWORKS_HOME"] = str(home)
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    os.environ["METERWORKS_CATALOG"] = str(root / "catalog.yml")
    cfg = settings(home)
    cfg.ensure_dirs()
    catalog = load_catalog(root / "catalog.yml")
    # parse with this home's profile so every build reuses dbt's partial parse
    from meterworks.jobs import prepare_dbt_manifest, prepare_environment

    prepare_environment(cfg)
    Path(meterworks_dbt_project_manifest()).unlink(missing_ok=True)
    prepare_dbt_manifest()

    suffix = "jsonl" if fmt == "jsonl" else "parquet"
    big = root / f"events-{args.events}.{suffix}"
    if not big.exists():
        began = time.perf_counter()
        rows = generate(big, args.events, args.dup_rate, fmt, "a", 1)
        print(f"[{fmt}] generated {rows:,} rows in {time.perf_counter() - began:.1f}s")
    followups = []
    for k in range(args.followups):
        path = root / f"followup-{k}.{suffix}"
        if not path.exists():
            generate(
                path,
                args.followup,
                args.dup_rate,
                fmt,
                f"f{k}",
                100 + k,
                span_days=args.followup_span_hours / 24,
            )
        followups.append(path)

    with PeakRss() as rss:
        first = ingest_files(cfg.warehouse, [big], catalog)
        reflected, hourly, build = run_build(cfg)
    counts = first.counts()
    print(
        f"[{fmt}] {counts['rows_read']:,} events: ingest {first.seconds:.1f}s "
        f"({counts['rows_read'] / first.seconds:,.0f} events/s, {counts['duplicates']:,} "
        f"duplicates dropped) + build: fct_meter_totals materialized after {reflected:.1f}s = "
        f"fresh meter totals in {first.seconds + reflected:.1f}s (the hourly mart after "
        f"{hourly:.1f}s, the whole build job with every model and data test {build:.1f}s); "
        f"peak RSS {rss.mb:,.0f} MB"
    )

    ingest_s, reflected_s, build_s = [], [], []
    with PeakRss() as rss:
        for path in followups:
            batch = ingest_files(cfg.warehouse, [path], catalog)
            ingest_s.append(batch.seconds)
            reflected, _, build = run_build(cfg)
            reflected_s.append(reflected)
            build_s.append(build)
    print(
        f"[{fmt}] +{args.followup:,}-event batch on {counts['accepted']:,} events of history, "
        f"median of {len(followups)}: ingest {statistics.median(ingest_s):.2f}s, reflected in "
        f"fct_meter_totals {statistics.median(reflected_s):.1f}s into the build job "
        f"(whole job {statistics.median(build_s):.1f}s; all: ingest "
        f"{', '.join(f'{s:.2f}' for s in ingest_s)}; reflected "
        f"{', '.join(f'{s:.1f}' for s in reflected_s)}); peak RSS {rss.mb:,.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=lambda s: int(s.replace("_", "")), default=10_000_000)
    parser.add_argument("--format", choices=["jsonl", "parquet", "both"], default="both")
    parser.add_argument("--dup-rate", type=float, default=0.05)
    parser.add_argument("--followup", type=int, default=100_000, help="size of each later batch")
    parser.add_argument("--followups", type=int, default=3, help="how many later batches")
    parser.add_argument(
        "--followup-span-hours",
        type=float,
        default=24,
        help="later batches carry events of the last N hours (an hourly batch: mostly recent)",
    )
    parser.add_argument("--out", type=Path, default=None, help="work dir (default: a temp dir)")
    args = parser.parse_args()

    root = args.out or Path(tempfile.mkdtemp(prefix="mw-bench-metering-"))
    root.mkdir(parents=True, exist_ok=True)
    write_catalog(root / "catalog.yml")
    print(f"machine: {os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB")
    formats = ["jsonl", "parquet"] if args.format == "both" else [args.format]
    try:
        for fmt in formats:
            bench_format(args, fmt, root)
    finally:
        if args.out is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
