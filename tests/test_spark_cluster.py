"""The demo built on a local Spark standalone cluster (master + 2 workers + Thrift Server, all on
127.0.0.1) through the ``spark_thrift`` dbt target by ``scripts/spark/cluster.sh build``: both
workers ran tasks (the application UI's REST API), every table equals DuckDB's row for row, and
no process of the cluster is left afterwards.

The end-to-end test is marked ``spark`` (not in the default run): it needs the ``spark`` extra (with PyHive) and Java 17,
and takes 10-30 minutes on two cores. ``make test-spark`` / ``.venv/bin/pytest -m spark``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from meterworks.engine.cluster import main as executors_main
from meterworks.engine.cluster import summarize
from meterworks.engine.compare import MARTS

REPO = Path(__file__).resolve().parent.parent
CLUSTER = REPO / "scripts" / "spark" / "cluster.sh"
SMALL_DEMO = ["--customers", "30", "--days", "70", "--seed", "7"]
BUILD_TIMEOUT = 3300  # s: the --empty build of a fresh catalog plus the build, on 2 busy cores


def _free_ports(count: int) -> list[int]:
    """``count`` loopback ports free now; the last two consecutive (the workers' UIs)."""
    with ExitStack() as stack:
        ports: list[int] = []
        while len(ports) < count - 2:
            s = stack.enter_context(socket.socket())
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
        for _ in range(200):
            s = stack.enter_context(socket.socket())
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
            if base + 1 in ports or base in ports:
                continue
            try:
                nxt = stack.enter_context(socket.socket())
                nxt.bind(("127.0.0.1", base + 1))
            except OSError:
                continue
            return [*ports, base, base + 1]
    raise RuntimeError("no two consecutive free ports")


def _cluster_jvms(state: Path) -> list[int]:
    """Processes carrying this cluster's marker (cluster.sh puts it on every JVM it starts)."""
    import psutil

    marker = f"-Dmeterworks.spark.state={state}"
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if marker in (proc.info["cmdline"] or []):
                found.append(proc.info["pid"])
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def test_executor_summary_ties_executors_to_workers(tmp_path: Path) -> None:
    workers = [
        {"id": f"worker-{i}", "host": "127.0.0.1", "port": 40000 + i, "state": "ALIVE",
         "webuiaddress": f"http://127.0.0.1:{18080 + i}"}
        for i in (1, 2)
    ]  # fmt: skip

    def executor(id_: str, worker: int, tasks: int, active: bool = True) -> dict:
        logs = f"http://127.0.0.1:{18080 + worker}/logPage/?appId=a&executorId={id_}&logType="
        return {"id": id_, "hostPort": f"127.0.0.1:{5000 + int(id_)}", "isActive": active,
                "totalTasks": tasks, "completedTasks": tasks, "failedTasks": 0,
                "executorLogs": {"stdout": logs + "stdout", "stderr": logs + "stderr"}}  # fmt: skip

    driver = {"id": "driver", "hostPort": "127.0.0.1:4999", "totalTasks": 0, "executorLogs": {}}
    app = {"id": "app-1", "name": "meterworks-thrift"}
    both = summarize([driver, executor("0", 1, 7), executor("1", 2, 0, False),
                      executor("2", 2, 5)], workers, app)  # fmt: skip
    assert both["workers_with_tasks"] == 2
    assert {w: v["totalTasks"] for w, v in both["workers"].items()} == {
        "worker-1": 7,
        "worker-2": 5,
    }
    assert [r["worker"] for r in both["executors"]] == ["worker-1", "worker-2", "worker-2"]
    one = summarize([driver, executor("0", 1, 12), executor("1", 2, 0)], workers, app)
    assert one["workers_with_tasks"] == 1
    # nothing listening: the check fails (and says so in its file) instead of raising
    out = tmp_path / "executors.json"
    assert executors_main(["--ui", "http://127.0.0.1:9", "--out", str(out)]) == 1
    assert json.loads(out.read_text())["ok"] is False


@pytest.mark.spark
@pytest.mark.timeout(BUILD_TIMEOUT + 1200)  # + the demo and the stop
def test_cluster_build_runs_on_both_workers_and_equals_duckdb(tmp_path: Path) -> None:
    if (
        importlib.util.find_spec("pyspark") is None
        or importlib.util.find_spec("dbt.adapters.spark") is None
        or importlib.util.find_spec("pyhive") is None
    ):
        pytest.skip("the spark extra is not installed (pip install -e .[spark])")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("no Java runtime (Spark needs Java 17)")

    home = tmp_path / "home"
    state = home / "spark"
    master, master_ui, thrift, app_ui, worker_ui, _ = _free_ports(6)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("METERWORKS_CATALOG", "METERWORKS_SPARK_DIR", "METERWORKS_LAKE")
    }
    env.update(
        METERWORKS_HOME=str(home),
        DAGSTER_HOME=str(home / "dagster"),
        PYTHON=sys.executable,
        METERWORKS_SPARK_MASTER_PORT=str(master),
        METERWORKS_SPARK_MASTER_WEBUI_PORT=str(master_ui),
        METERWORKS_SPARK_WORKER_WEBUI_PORT=str(worker_ui),
        METERWORKS_SPARK_THRIFT_PORT=str(thrift),
        METERWORKS_SPARK_UI_PORT=str(app_ui),
    )
    subprocess.run(
        [sys.executable, "-m", "meterworks.cli", "demo", *SMALL_DEMO],
        env=env,
        check=True,
        timeout=900,
        capture_output=True,
    )

    proc = subprocess.Popen(
        ["bash", str(CLUSTER), "build"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        try:
            out, err = proc.communicate(timeout=BUILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)  # the script's trap stops the cluster
            try:
                out, err = proc.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                out, err = proc.communicate()
            pytest.fail(f"cluster.sh build took over {BUILD_TIMEOUT} s:\n{err[-4000:]}")
    finally:
        # whatever happened: stop what the pid files name (a no-op when the script did)
        subprocess.run(["bash", str(CLUSTER), "stop"], env=env, timeout=300, capture_output=True)
    log = home / "compare_engines.log"
    assert proc.returncode == 0, (
        err[-6000:] + out[-2000:] + (log.read_text()[-4000:] if log.exists() else "")
    )

    executors = json.loads((state / "executors.json").read_text())
    assert executors["ok"] and executors["workers_with_tasks"] == 2, executors
    assert len(executors["workers"]) == 2
    assert all(w["totalTasks"] > 0 for w in executors["workers"].values()), executors
    assert {row["worker"] for row in executors["executors"]} == set(executors["workers"])

    result = json.loads((state / "compare.json").read_text())
    assert result["ok"] and not result["missing"] and result["target"] == "spark_thrift", result
    for mart in MARTS:
        assert result["tables"][f"marts.{mart}"]["equal"], mart
    assert all(t["equal"] for t in result["tables"].values())

    assert not list((state / "pids").glob("*.pid"))
    deadline = time.monotonic() + 30
    while _cluster_jvms(state) and time.monotonic() < deadline:
        time.sleep(1)
    assert _cluster_jvms(state) == [], "cluster processes left after cluster.sh build"
