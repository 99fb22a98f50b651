"""Engine benchmark: the full dbt build of the project on DuckDB and on a local Spark cluster.

    .venv/bin/python benchmarks/bench_engines.py                      # 10 M and 50 M events
    .venv/bin/python benchmarks/bench_engines.py --events 1000000 --engines duckdb

For each size: generate the benchmark events (``bench_ingest.generate``, Parquet, ~5 %
redeliveries, ~2,000 customers, 4 meters), ingest them into a fresh warehouse, then build
the whole dbt project (every model, data test and unit test) from that warehouse

- on DuckDB: one ``dbt build`` (the ``duckdb`` target, as ``meterworks build`` runs it);
- on Spark: ``scripts/spark/cluster.sh start`` (master + 2 workers + Thrift Server on
  127.0.0.1), the lake export, ``dbt build`` through the ``spark_thrift`` target (on a fresh
  catalog a ``run --empty`` first, reported apart), then ``cluster.sh stop``.

Printed per engine: wall time of the build, peak memory (summed RSS of every process of the
engine: the dbt process and, on Spark, the master, workers, executors and Thrift Server), and
the Spark-to-DuckDB ratio; with two or more sizes, each engine's marginal cost per million
events (a line through its smallest and largest size) and where the two lines cross, if they
do. One 2-core machine shows the path, not scale.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb
import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_ingest import generate  # noqa: E402
from bench_metering import PeakRss, write_catalog  # noqa: E402

from meterworks.catalog import load_catalog  # noqa: E402
from meterworks.config import DBT_PROJECT_DIR, settings  # noqa: E402
from meterworks.engine import dbt_env, spark_dir  # noqa: E402
from meterworks.ingest import ingest_files  # noqa: E402
from meterworks.warehouse import connect, sync_catalog  # noqa: E402

CLUSTER = REPO / "scripts" / "spark" / "cluster.sh"


@dataclass
class EngineRun:
    engine: str
    events: int
    build_s: float
    peak_mb: float
    ok: bool
    detail: dict


def _run(cmd: list[str], env: dict[str, str], log: Path, timeout: float) -> tuple[int, str]:
    """Run ``cmd`` with its output in ``log``; (exit code, the whole output)."""
    with log.open("w") as out:
        proc = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
    return proc.returncode, log.read_text()


def bench_duckdb(cfg, events: int, timeout: float) -> EngineRun:
    env = {**os.environ, **dbt_env(cfg)}
    target_path = cfg.home / "bench-dbt" / "target"
    cmd = [
        str(Path(sys.executable).parent / "dbt"),
        "build",
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target",
        "duckdb",
        "--target-path",
        str(target_path),
        "--log-path",
        str(cfg.home / "bench-dbt" / "logs"),
        "--full-refresh",  # a full build even on a warehouse an earlier run built
    ]
    me = os.getpid()
    began = time.perf_counter()
    with PeakRss(0.2, lambda: [child.pid for child in psutil.Process(me).children()]) as mem:
        code, output = _run(cmd, env, cfg.home / "bench-duckdb.log", timeout)
    seconds = time.perf_counter() - began
    done = re.search(r"Done\. (PASS=\d+ WARN=\d+ ERROR=\d+ SKIP=\d+.*)", output)
    return EngineRun(
        "duckdb",
        events,
        seconds,
        mem.mb,
        code == 0,
        {"dbt": done.group(1) if done else output[-3000:]},
    )


def _cluster_pids(state: Path) -> list[int]:
    pids = []
    for pidfile in (state / "pids").glob("*.pid"):
        with contextlib.suppress(ValueError, OSError):
            pids.append(int(pidfile.read_text().strip()))
    return pids


def bench_spark(cfg, events: int, timeout: float, worker_memory: str) -> EngineRun:
    state = spark_dir(cfg)
    shutil.rmtree(state, ignore_errors=True)  # a fresh catalog: the full build from scratch
    shutil.rmtree(cfg.home / "lake", ignore_errors=True)
    env = {
        **os.environ,
        **dbt_env(cfg),
        "METERWORKS_HOME": str(cfg.home),
        "METERWORKS_SPARK_WORKER_MEMORY": worker_memory,
    }
    me = os.getpid()
    detail: dict = {}
    began = time.perf_counter()
    roots = lambda: [c.pid for c in psutil.Process(me).children()] + _cluster_pids(state)  # noqa: E731
    with PeakRss(0.2, roots) as mem:
        try:
            started = time.perf_counter()
            code, tail = _run(
                ["bash", str(CLUSTER), "start"], env, cfg.home / "bench-spark-start.log", 600
            )
            detail["cluster_start_s"] = round(time.perf_counter() - started, 1)
            if code != 0:
                raise RuntimeError(f"cluster start failed:\n{tail[-3000:]}")
            cmd = [sys.executable, "-m", "meterworks.engine.spark", "--target", "spark_thrift"]
            code, tail = _run(cmd, env, cfg.home / "bench-spark.log", timeout)
            for name, seconds in re.findall(r"^dbt (.+?): (?:ok|FAILED) in ([\d.]+)s", tail, re.M):
                detail["dbt " + name] = float(seconds)
            lake = re.search(r"'seconds': ([\d.]+)", tail)
            detail["lake_export_s"] = float(lake.group(1)) if lake else None
            ok = code == 0
            if not ok:
                detail["error"] = tail[-1500:]
        finally:
            _run(["bash", str(CLUSTER), "stop"], env, cfg.home / "bench-spark-stop.log", 300)
    total = time.perf_counter() - began
    detail["total_with_cluster_s"] = round(total, 1)
    build = sum(v for k, v in detail.items() if k.startswith("dbt ") and "--empty" not in k)
    return EngineRun("spark", events, build, mem.mb, ok, detail)


def prepare_home(root: Path, events: int) -> tuple:
    """A fresh home with ``events`` benchmark events ingested; (settings, ingest seconds)."""
    data = root / f"events-{events}.parquet"
    if not data.exists():
        began = time.perf_counter()
        rows = generate(data, events, 0.05, "parquet", "a", 1)
        print(f"generated {rows:,} rows in {time.perf_counter() - began:.1f}s", flush=True)
    home = root / f"home-{events}"
    os.environ["METERWORKS_HOME"] = str(home)
    os.environ["METERWORKS_CATALOG"] = str(root / "catalog.yml")
    cfg = settings(home)
    catalog = load_catalog(root / "catalog.yml")
    ingested = home / ".bench-ingested"
    if ingested.exists():  # a previous run's warehouse: the builds below start from scratch
        seconds = float(ingested.read_text())
    else:
        shutil.rmtree(home, ignore_errors=True)
        cfg.ensure_dirs()
        seconds = ingest_files(cfg.warehouse, [data], catalog).seconds
        ingested.write_text(f"{seconds:.1f}")
    with connect(cfg.warehouse) as con:  # what the catalog_meters asset does before a build
        sync_catalog(con, catalog)
    return cfg, seconds


def meter_totals_rows(cfg, engine: str) -> int:
    """Rows of the built ``fct_meter_totals`` (a build over an empty catalog would be cheap)."""
    if engine == "duckdb":
        with connect(cfg.warehouse, read_only=True) as con:
            return con.execute("select count(*) from marts.fct_meter_totals").fetchone()[0]
    folder = spark_dir(cfg) / "warehouse" / "marts.db" / "fct_meter_totals"
    with duckdb.connect() as con:
        return con.execute(f"select count(*) from read_parquet('{folder}/*.parquet')").fetchone()[0]


def crossover_lines(results: list[EngineRun]) -> list[str]:
    """Where the engines' build times would cross, from a line through each engine's smallest
    and largest size: ``time = fixed + marginal * events``. Empty with fewer than two sizes."""
    fits: dict[str, tuple[float, float]] = {}
    lines = []
    for engine in ("duckdb", "spark"):
        runs = sorted((r for r in results if r.engine == engine and r.ok), key=lambda r: r.events)
        if len(runs) < 2 or runs[0].events == runs[-1].events:
            continue
        small, large = runs[0], runs[-1]
        marginal = (large.build_s - small.build_s) / (large.events - small.events) * 1e6
        fixed = small.build_s - marginal * small.events / 1e6
        fits[engine] = (fixed, marginal)
        lines.append(
            f"{engine}: {marginal:.1f}s per million events + {fixed:.1f}s fixed "
            f"({small.events:,} -> {large.events:,} events)"
        )
    if len(fits) == 2:
        (d_fixed, d_marginal), (s_fixed, s_marginal) = fits["duckdb"], fits["spark"]
        if s_marginal >= d_marginal:
            lines.append(
                f"no crossover on this machine: Spark's marginal cost is "
                f"{s_marginal / d_marginal:.1f}x DuckDB's"
            )
        else:
            at = (s_fixed - d_fixed) / (d_marginal - s_marginal) * 1e6
            lines.append(f"crossover at ~{at:,.0f} events (extrapolated)")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, nargs="+", default=[10_000_000, 50_000_000])
    parser.add_argument("--engines", nargs="+", default=["duckdb", "spark"])
    parser.add_argument("--out", type=Path, default=Path("/tmp/meterworks-bench-engines"))
    parser.add_argument("--timeout", type=float, default=4 * 3600, help="per build, seconds")
    parser.add_argument("--worker-memory", default="4g", help="each Spark worker's memory")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    write_catalog(args.out / "catalog.yml")
    results: list[EngineRun] = []
    for events in args.events:
        cfg, ingest_s = prepare_home(args.out, events)
        print(
            f"[{events:,} events] ingested into DuckDB in {ingest_s:.1f}s (not part of the builds)",
            flush=True,
        )
        for name in args.engines:
            run = (
                bench_duckdb(cfg, events, args.timeout)
                if name == "duckdb"
                else bench_spark(cfg, events, args.timeout, args.worker_memory)
            )
            if run.ok:
                run.detail["fct_meter_totals_rows"] = meter_totals_rows(cfg, name)
                run.ok = run.detail["fct_meter_totals_rows"] > 0
            results.append(run)
            print(
                f"[{events:,} events] {name}: full dbt build {run.build_s:.1f}s, peak memory "
                f"{run.peak_mb:,.0f} MB, "
                f"{'ok' if run.ok else 'FAILED'} {json.dumps(run.detail)}",
                flush=True,
            )
        by_engine = {r.engine: r for r in results if r.events == events and r.ok}
        if {"duckdb", "spark"} <= by_engine.keys():
            ratio = by_engine["spark"].build_s / by_engine["duckdb"].build_s
            print(f"[{events:,} events] Spark / DuckDB wall time: {ratio:.1f}x", flush=True)
    for line in crossover_lines(results):
        print(line, flush=True)
    (args.out / "results.json").write_text(json.dumps([asdict(r) for r in results], indent=2))
    print(f"results: {args.out / 'results.json'}")
    if not all(r.ok for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
