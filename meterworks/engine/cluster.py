"""Which workers of a Spark standalone cluster ran the tasks of an application.

``scripts/spark/cluster.sh`` runs dbt through the Spark Thrift Server, one Spark application
whose executors run on the cluster's workers (one executor per worker there). After the build it
calls this module, which reads the application UI's REST API
(``/api/v1/applications/<id>/allexecutors``: every executor, also one that was lost, with its
``totalTasks``) and the master's ``/json/`` (the workers), ties each executor to its worker by
the worker web UI address in the executor's log links, prints one line per executor and per
worker, writes the summary as JSON, and exits non-zero unless ``--workers`` workers ran tasks.

    python -m meterworks.engine.cluster --ui http://127.0.0.1:4040 \\
        --master-ui http://127.0.0.1:8080 --workers 2 --out spark/executors.json
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse


def fetch_json(url: str, timeout: float = 10.0) -> Any:
    if urlparse(url).hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"only loopback addresses are read here, not {url}")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    with opener.open(url, timeout=timeout) as response:
        return json.load(response)


def _worker_ui(executor: dict[str, Any]) -> str | None:
    """``host:port`` of the web UI of the worker that launched an executor (its log links)."""
    for url in (executor.get("executorLogs") or {}).values():
        netloc = urlparse(url).netloc
        if netloc:
            return netloc
    return None


def summarize(
    executors: list[dict[str, Any]], workers: list[dict[str, Any]], app: dict[str, Any]
) -> dict[str, Any]:
    """Per executor and per worker task counts (``workers``: the master's ``/json/`` list)."""
    by_ui = {urlparse(w.get("webuiaddress", "")).netloc: w for w in workers}
    rows = []
    per_worker: dict[str, dict[str, Any]] = {}
    for w in workers:
        per_worker[w["id"]] = {
            "host_port": f"{w.get('host')}:{w.get('port')}",
            "web_ui": urlparse(w.get("webuiaddress", "")).netloc,
            "state": w.get("state"),
            "executors": [],
            "totalTasks": 0,
        }
    for e in executors:
        if e.get("id") == "driver":
            continue
        ui = _worker_ui(e)
        worker = by_ui.get(ui or "")
        worker_id = worker["id"] if worker else f"worker at {ui}"
        rows.append(
            {
                "executor": e.get("id"),
                "hostPort": e.get("hostPort"),
                "worker": worker_id,
                "worker_ui": ui,
                "isActive": e.get("isActive"),
                "totalTasks": e.get("totalTasks", 0),
                "completedTasks": e.get("completedTasks", 0),
                "failedTasks": e.get("failedTasks", 0),
                "totalDuration_ms": e.get("totalDuration", 0),
            }
        )
        entry = per_worker.setdefault(
            worker_id,
            {"host_port": None, "web_ui": ui, "state": None, "executors": [], "totalTasks": 0},
        )
        entry["executors"].append(e.get("id"))
        entry["totalTasks"] += e.get("totalTasks", 0)
    return {
        "app_id": app.get("id"),
        "app_name": app.get("name"),
        "executors": rows,
        "workers": per_worker,
        "workers_with_tasks": sum(1 for w in per_worker.values() if w["totalTasks"] > 0),
    }


def collect(ui: str, master_ui: str | None) -> dict[str, Any]:
    ui = ui.rstrip("/")
    apps = fetch_json(f"{ui}/api/v1/applications")
    if not apps:
        raise RuntimeError(f"no application at {ui}")
    app = apps[0]
    executors = fetch_json(f"{ui}/api/v1/applications/{app['id']}/allexecutors")
    workers = fetch_json(f"{master_ui.rstrip('/')}/json/")["workers"] if master_ui else []
    return summarize(executors, workers, app)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m meterworks.engine.cluster", description=__doc__
    )
    parser.add_argument("--ui", default="http://127.0.0.1:4040", help="the application's UI")
    parser.add_argument("--master-ui", help="the standalone master's web UI (lists the workers)")
    parser.add_argument("--workers", type=int, default=2, help="how many workers must run tasks")
    parser.add_argument("--out", help="write the summary as JSON here")
    args = parser.parse_args(argv)
    try:
        summary = collect(args.ui, args.master_ui)
    except Exception as exc:  # the UI is down or has no application: a failed check
        summary = {"error": repr(exc), "executors": [], "workers": {}, "workers_with_tasks": 0}
        print(f"executors: cannot read {args.ui}: {exc!r}", file=sys.stderr)
    summary["required_workers"] = args.workers
    summary["ok"] = summary["workers_with_tasks"] >= args.workers
    for row in summary["executors"]:
        print(
            f"executor {row['executor']} ({row['hostPort']}) on {row['worker']} "
            f"(UI {row['worker_ui']}): {row['totalTasks']} tasks, {row['failedTasks']} failed"
            f"{'' if row['isActive'] else ', lost'}",
            file=sys.stderr,
        )
    for worker_id, w in summary["workers"].items():
        print(
            f"worker {worker_id} ({w['host_port']}, UI {w['web_ui']}): "
            f"{w['totalTasks']} tasks on executors {w['executors']}",
            file=sys.stderr,
        )
    verdict = "ok" if summary["ok"] else "FAILED"
    print(
        f"executors: {summary['workers_with_tasks']} of {args.workers} workers ran tasks: {verdict}",
        file=sys.stderr,
    )
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
