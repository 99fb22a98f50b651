"""Run the dbt project on Apache Spark, every step in one Python process and one Spark session.

Each separate ``dbt`` command on Spark pays the JVM and catalog start-up (11-13 s here); dbt's
programmatic runner (``dbtRunner``) keeps the process, and dbt-spark's ``session`` method keeps
the one ``SparkSession`` (``getOrCreate``) for every step. The session's settings live in the
``spark`` target of ``dbt/profiles.yml``; this module supplies the environment they read
(absolute paths under ``$METERWORKS_HOME/spark``, the lake, ``SPARK_LOCAL_IP``) and exports the
raw tables to the lake first.

    python -m meterworks.engine.spark                       # export the lake, then dbt build
    python -m meterworks.engine.spark -- build --select +fct_mrr   # any dbt steps, ';'-separated
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meterworks.config import DBT_PROJECT_DIR, Settings, settings
from meterworks.engine import dbt_env, lake_dir, spark_dir

#: First step on a fresh Spark catalog: create every relation empty, so that the unit tests
#: (which read the columns of the relations they mock) and incremental models have them. A
#: ``run``, not a ``build``: data tests on empty relations prove nothing and cost Spark a job
#: each (40-170 s for the project's 149 tests on two cores).
EMPTY_BUILD = ["run", "--empty"]


@dataclass
class StepResult:
    args: list[str]
    success: bool
    seconds: float
    failures: list[str] = field(default_factory=list)


def _java_home() -> str | None:
    if os.environ.get("JAVA_HOME"):
        return os.environ["JAVA_HOME"]
    java = shutil.which("java")
    if not java:
        return None
    home = Path(java).resolve().parent.parent
    return str(home) if (home / "bin" / "java").exists() else None


def spark_environment(cfg: Settings) -> dict[str, str]:
    """Environment for dbt on Spark (profile vars, loopback-only networking, this Python)."""
    env = dbt_env(cfg)
    env["SPARK_LOCAL_IP"] = os.environ.get("SPARK_LOCAL_IP", "127.0.0.1")
    env["PYSPARK_PYTHON"] = os.environ.get("PYSPARK_PYTHON", sys.executable)
    env["PYSPARK_DRIVER_PYTHON"] = os.environ.get("PYSPARK_DRIVER_PYTHON", sys.executable)
    java_home = _java_home()
    if java_home:
        env["JAVA_HOME"] = java_home
    return env


def prepare(cfg: Settings, *, export: bool = True, full_export: bool = False) -> dict[str, Any]:
    """Set the environment, create Spark's folders and export the raw tables to the lake."""
    os.environ.update(spark_environment(cfg))
    root = spark_dir(cfg)
    for sub in ("warehouse", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    if not export:
        return {}
    from meterworks.engine.lake import export_lake

    result = export_lake(cfg.warehouse, lake_dir(cfg), full=full_export)
    return {"lake": result.tables, "batches": result.batches, "seconds": result.seconds}


def _built_marker(cfg: Settings, target: str) -> Path:
    return spark_dir(cfg) / f".dbt-built-{target}"


def is_fresh(cfg: Settings, target: str = "spark") -> bool:
    """No successful build on this Spark catalog yet (the first must create the relations)."""
    return not _built_marker(cfg, target).exists()


def _failures(result: Any) -> list[str]:
    out = []
    for node_result in getattr(result.result, "results", None) or []:
        status = str(getattr(node_result, "status", "")).lower()
        if status in ("error", "fail", "runtime error"):
            node = getattr(node_result, "node", None)
            name = getattr(node, "unique_id", "?")
            out.append(f"{name}: {status}: {(node_result.message or '')[:500]}")
    if result.exception is not None:
        out.append(repr(result.exception))
    return out


def run_dbt_steps(
    steps: Iterable[Sequence[str]],
    cfg: Settings | None = None,
    *,
    target: str = "spark",
    stop_on_failure: bool = True,
    project_dir: str | Path = DBT_PROJECT_DIR,
) -> list[StepResult]:
    """Run dbt commands in this process (one Spark session for all). Call ``prepare`` first."""
    from dbt.cli.main import dbtRunner

    cfg = cfg or settings()
    runner = dbtRunner()
    dbt_state = spark_dir(cfg) / "dbt"
    common = [
        "--project-dir",
        str(project_dir),
        "--profiles-dir",
        str(project_dir),
        "--target",
        target,
        "--target-path",
        str(dbt_state / "target"),
        "--log-path",
        str(dbt_state / "logs"),
    ]
    results = []
    for step in steps:
        args = [*step, *common]
        started = time.perf_counter()
        result = runner.invoke(args)
        step_result = StepResult(
            args=list(step),
            success=bool(result.success),
            seconds=round(time.perf_counter() - started, 2),
            failures=_failures(result),
        )
        results.append(step_result)
        if stop_on_failure and not step_result.success:
            break
    if (
        results
        and all(r.success for r in results)
        and any(r.args[:1] == ["build"] for r in results)
    ):
        _built_marker(cfg, target).touch()
    return results


def build_steps(
    cfg: Settings, build_args: Sequence[str] = ("build",), target: str = "spark"
) -> list[list[str]]:
    """The steps of a build: an ``--empty`` build first on a fresh catalog, then ``build_args``."""
    steps = [EMPTY_BUILD] if is_fresh(cfg, target) else []
    return [*steps, list(build_args)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m meterworks.engine.spark", description=__doc__)
    parser.add_argument("--home", help="Meterworks home (default $METERWORKS_HOME or ./data)")
    parser.add_argument("--target", default="spark", help="dbt target (spark or spark_thrift)")
    parser.add_argument("--no-export", action="store_true", help="do not export the lake first")
    parser.add_argument("--full-export", action="store_true", help="rewrite the whole lake")
    parser.add_argument(
        "dbt_args",
        nargs=argparse.REMAINDER,
        help="dbt steps after `--`, separated by ';' (default: build)",
    )
    args = parser.parse_args(argv)
    cfg = settings(args.home)
    exported = prepare(cfg, export=not args.no_export, full_export=args.full_export)
    if exported:
        print(f"lake: {exported}", file=sys.stderr)
    raw = [a for a in args.dbt_args if a != "--"]
    steps: list[list[str]] = [[]]
    for token in raw:
        if token == ";":
            steps.append([])
        else:
            steps[-1].append(token)
    steps = [s for s in steps if s] or [["build"]]
    explicit_empty = any("--empty" in step for step in steps)
    if is_fresh(cfg, args.target) and steps[0][:1] == ["build"] and not explicit_empty:
        steps.insert(0, EMPTY_BUILD)
    ok = True
    for result in run_dbt_steps(steps, cfg, target=args.target):
        print(
            f"dbt {' '.join(result.args)}: {'ok' if result.success else 'FAILED'} "
            f"in {result.seconds}s",
            file=sys.stderr,
        )
        for failure in result.failures:
            print(f"  {failure}", file=sys.stderr)
        ok = ok and result.success
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
