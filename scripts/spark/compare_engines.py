"""Build the demo on DuckDB and on Spark and compare every table row for row.

    .venv/bin/python scripts/spark/compare_engines.py                 # temp home, small demo
    .venv/bin/python scripts/spark/compare_engines.py --home /tmp/h --keep
    .venv/bin/python scripts/spark/compare_engines.py --target spark_thrift --home H  # cluster
    scripts/spark/cluster.sh build     # the same on a local standalone cluster it starts and stops

Steps: the demo through the CLI (DuckDB; skipped when the home already has a warehouse), a
DuckDB ``dbt build`` at a fixed ``as_of`` (so both engines project at the same instant), the lake
export, the Spark build in one process and one Spark session (``meterworks.engine.spark``;
``--empty`` first on a fresh catalog, then ``dbt build`` with every test and unit test), then
``meterworks.engine.compare`` over every table Spark built. Prints one JSON line of results;
exit 0 when every table is equal and every mart exists on both engines.

Every model runs on Spark. ``--metering-from-duckdb`` narrows a difference down: the DuckDB
tables of the metering models are exported to the lake and registered in Spark under the same
names, the metering models are excluded from the Spark build, and only the other models are
compared (a difference that remains is not the metering's).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from meterworks.config import settings  # noqa: E402
from meterworks.engine import spark_dir  # noqa: E402
from meterworks.engine.compare import MARTS, compare_all  # noqa: E402
from meterworks.engine.spark import EMPTY_BUILD, is_fresh  # noqa: E402

PY = sys.executable
DBT = str(Path(PY).with_name("dbt"))

#: The metering models, and the relations --metering-from-duckdb stands in.
METERING_MODELS = (
    "stg_meterworks__events",
    "int_event_corrections",
    "int_event_versions",
    "int_events_effective",
    "int_meter_events",
    "int_timezone_offsets",
    "fct_usage_hourly",
    "fct_usage_daily",
    "fct_meter_totals",
)
METERING_RELATIONS = {
    "staging.stg_meterworks__events": "staging.stg_meterworks__events",
    "intermediate.int_event_corrections": "intermediate.int_event_corrections",
    "intermediate.int_event_versions": "intermediate.int_event_versions",
    "intermediate.int_events_effective": "intermediate.int_events_effective",
    "intermediate.int_meter_events": "intermediate.int_meter_events",
    "intermediate.int_timezone_offsets": "intermediate.int_timezone_offsets",
    "marts.fct_usage_hourly": "marts.fct_usage_hourly",
    "marts.fct_usage_daily": "marts.fct_usage_daily",
    "marts.fct_meter_totals": "marts.fct_meter_totals",
}


def run(cmd: list[str], env: dict[str, str], log: Path) -> float:
    started = time.perf_counter()
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}; see {log}")
    return round(time.perf_counter() - started, 1)


def export_duckdb_relations(warehouse: Path, folder: Path) -> dict[str, str]:
    """The DuckDB metering relations as Parquet folders (for --metering-from-duckdb)."""
    import duckdb

    out = {}
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        con.execute("set TimeZone = 'UTC'")
        for name in METERING_RELATIONS:
            target = folder / name
            target.mkdir(parents=True, exist_ok=True)
            cols = con.execute(f"describe {name}").fetchall()
            select = ", ".join(
                f'timezone(\'UTC\', "{c}") as "{c}"'
                if t.upper() == "TIMESTAMP"
                else f'cast("{c}" as decimal(38, 0)) as "{c}"'
                if t.upper() in ("HUGEINT", "UBIGINT")
                else f'"{c}"'
                for c, t, *_ in cols
            )
            con.execute(
                f"copy (select {select} from {name}) to '{target}/part-0.parquet' (format parquet)"
            )
            out[name] = str(target)
    finally:
        con.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", help="Meterworks home (default: a new temp dir)")
    parser.add_argument("--customers", default="30")
    parser.add_argument("--days", default="70")
    parser.add_argument("--seed", default="7")
    parser.add_argument(
        "--as-of", default=None, help="'YYYY-MM-DD HH:MM:SS' (default: now, to the hour)"
    )
    parser.add_argument("--target", default="spark", choices=["spark", "spark_thrift"])
    parser.add_argument("--metering-from-duckdb", action="store_true")
    parser.add_argument("--skip-duckdb", action="store_true", help="reuse the DuckDB build")
    parser.add_argument("--out", help="also write the JSON result to this file")
    args = parser.parse_args(argv)

    home = Path(args.home or tempfile.mkdtemp(prefix="meterworks-engines-")).resolve()
    cfg = settings(home)
    log = home / "compare_engines.log"
    home.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "METERWORKS_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "METERWORKS_WAREHOUSE": str(cfg.warehouse),
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
    env.pop("METERWORKS_CATALOG", None)
    as_of = args.as_of or time.strftime("%Y-%m-%d %H:00:00", time.gmtime())
    dbt_vars = json.dumps({"as_of": as_of})
    timings: dict[str, float] = {}

    if not cfg.warehouse.exists():
        timings["demo"] = run(
            [PY, "-m", "meterworks.cli", "demo", "--customers", args.customers,
             "--days", args.days, "--seed", args.seed],
            env, log,
        )  # fmt: skip
    if not args.skip_duckdb:
        timings["duckdb_build"] = run(
            [DBT, "build", "--project-dir", str(REPO / "dbt"), "--profiles-dir", str(REPO / "dbt"),
             "--target", "duckdb", "--target-path", str(home / "duckdb-dbt" / "target"),
             "--log-path", str(home / "duckdb-dbt" / "logs"), "--vars", dbt_vars],
            env, log,
        )  # fmt: skip

    fresh = is_fresh(cfg, args.target)
    exclude: list[str] = []
    steps: list[list[str]] = []
    if args.metering_from_duckdb:
        relations = export_duckdb_relations(cfg.warehouse, home / "lake" / "_duckdb_relations")
        steps.append(
            ["run-operation", "register_parquet_relations", "--args",
             json.dumps({"relations": relations})]
        )  # fmt: skip
        exclude = ["--exclude", *METERING_MODELS]
    if fresh:
        steps.append([*EMPTY_BUILD, *exclude])
    steps.append(["build", *exclude, "--vars", dbt_vars])
    spark_cmd = [
        PY,
        "-m",
        "meterworks.engine.spark",
        "--home",
        str(home),
        "--target",
        args.target,
        "--",
    ]
    for i, step in enumerate(steps):
        spark_cmd += ([";"] if i else []) + step
    timings["spark_build"] = run(spark_cmd, env, log)

    started = time.perf_counter()
    diffs = compare_all(cfg.warehouse, spark_dir(cfg) / "warehouse")
    timings["compare"] = round(time.perf_counter() - started, 1)
    compared = {d.table for d in diffs}
    expected = {f"marts.{m}" for m in MARTS}
    if args.metering_from_duckdb:
        expected -= {f"marts.{m}" for m in METERING_MODELS}
        diffs = [d for d in diffs if d.table.split(".")[1] not in METERING_MODELS]
    missing = sorted(expected - compared)
    for diff in diffs:
        print(diff.describe(), file=sys.stderr)
    ok = not missing and all(d.equal for d in diffs)
    result = json.dumps(
        {
            "ok": ok,
            "home": str(home),
            "as_of": as_of,
            "target": args.target,
            "metering_from_duckdb": args.metering_from_duckdb,
            "missing": missing,
            "tables": {d.table: {"rows": d.duckdb_rows, "equal": d.equal} for d in diffs},
            "seconds": timings,
        }
    )
    if args.out:
        Path(args.out).write_text(result + "\n")
    print(result)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
