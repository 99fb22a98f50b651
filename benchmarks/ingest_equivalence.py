"""Ingestion equivalence and CPU check: the same files through two versions of the code.

Ingests FILES (one batch each, in order) into a fresh warehouse with the ``meterworks``
package found first on ``sys.path`` (set ``PYTHONPATH`` to a checkout of another commit to
run that one), prints CPU seconds (all threads) and the CPU of the slowest statements, and
dumps ``raw.events``, ``raw.quarantine`` and ``raw.ingest_batches`` (without their
wall-clock columns) to Parquet under OUT. ``--compare A B`` counts the rows of two dumps that
the other does not have (both ways; 0 and 0 = identical results).

    mkdir /tmp/base && git archive HEAD~1 meterworks | tar -x -C /tmp/base
    PYTHONPATH=/tmp/base python benchmarks/ingest_equivalence.py /tmp/eq/old f.jsonl
    python benchmarks/ingest_equivalence.py /tmp/eq/new f.jsonl
    python benchmarks/ingest_equivalence.py --compare /tmp/eq/old /tmp/eq/new

On a shared machine CPU seconds vary by a third between identical runs: compare medians of
runs interleaved with the other version.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

TABLES = {
    "events": "select * exclude (ingested_at) from raw.events order by event_seq",
    "quarantine": "select * exclude (quarantined_at) from raw.quarantine "
    "order by batch_id, source_file, source_line",
    "batches": "select * exclude (started_at, committed_at) from raw.ingest_batches",
}


def run(out: Path, files: list[str], catalog_path: str, now: datetime, dump: bool) -> None:
    import meterworks.ingest.core as core
    from meterworks.catalog import load_catalog
    from meterworks.ingest import ingest_files

    cpu_by_statement: list[tuple[str, float]] = []
    execute = core._Timed.execute

    def timed(self, sql, params=None):
        began = time.process_time()
        try:
            return execute(self, sql, params)
        finally:
            cpu_by_statement.append((" ".join(sql.split())[:60], time.process_time() - began))

    core._Timed.execute = timed
    out.mkdir(parents=True, exist_ok=True)
    db = out / "warehouse.duckdb"
    for stale in (db, Path(f"{db}.wal")):
        stale.unlink(missing_ok=True)
    catalog = load_catalog(catalog_path)
    print(f"meterworks from {Path(core.__file__).parent.parent}", file=sys.stderr)
    for path in files:
        cpu_by_statement.clear()
        began_cpu, began = time.process_time(), time.perf_counter()
        result = ingest_files(db, [path], catalog, now=now)
        cpu, wall = time.process_time() - began_cpu, time.perf_counter() - began
        print(f"{Path(path).name}: {cpu:.2f} CPU-s, {wall:.2f} s; {json.dumps(result.counts())}")
        for label, seconds in sorted(cpu_by_statement, key=lambda t: -t[1])[:6]:
            print(f"    {seconds:6.2f} CPU-s  {label}")
    if dump:
        con = duckdb.connect(str(db), read_only=True)
        for name, sql in TABLES.items():
            con.execute(f"copy ({sql}) to '{out / name}.parquet' (format parquet)")
        con.close()
    db.unlink(missing_ok=True)


def compare(a: Path, b: Path) -> bool:
    con = duckdb.connect()
    same = True
    for name in TABLES:
        pa, pb = f"{a / name}.parquet", f"{b / name}.parquet"
        counts = [con.execute(f"select count(*) from '{p}'").fetchone()[0] for p in (pa, pb)]
        a_b, b_a = (
            con.execute(f"select count(*) from (from '{x}' except all from '{y}')").fetchone()[0]
            for x, y in ((pa, pb), (pb, pa))
        )
        same = same and a_b == b_a == 0
        print(f"{name:10s} rows {counts[0]} / {counts[1]}; only in A: {a_b}, only in B: {b_a}")
    return same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="output directory (or A with --compare)")
    parser.add_argument("files", nargs="*", help="files to ingest, one batch each (or B)")
    parser.add_argument("--catalog", default="/tmp/mwbench/catalog.yml")
    parser.add_argument("--now", default="2026-12-02T04:40:00", help="fixed 'now' (UTC)")
    parser.add_argument("--no-dump", action="store_true", help="timing only")
    parser.add_argument("--compare", action="store_true", help="compare dumps OUT and FILES[0]")
    args = parser.parse_args()
    if args.compare:
        sys.exit(0 if compare(args.out, Path(args.files[0])) else 1)
    now = datetime.fromisoformat(args.now).replace(tzinfo=UTC)
    run(args.out, args.files, args.catalog, now, not args.no_dump)


if __name__ == "__main__":
    main()
