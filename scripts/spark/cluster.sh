#!/usr/bin/env bash
# A local Spark standalone cluster from the pyspark install, all on 127.0.0.1: a master, two
# workers and the Spark Thrift Server (the `spark_thrift` dbt target), with every state file
# (metastore, warehouse, logs, pids, Hive scratch) under $METERWORKS_HOME/spark, so the table
# files land where meterworks.engine.compare reads them.
#
#   scripts/spark/cluster.sh start    # master, 2 workers, Thrift Server (application UI on)
#   scripts/spark/cluster.sh status
#   scripts/spark/cluster.sh stop     # stops exactly the processes it started (pid files)
#   scripts/spark/cluster.sh build [compare_engines.py options]
#       start; scripts/spark/compare_engines.py --target spark_thrift on this home (DuckDB build
#       at a fixed as_of, lake export, dbt build through the Thrift Server, every table compared
#       with DuckDB's row for row: $STATE/compare.json); the executors of the Thrift Server's
#       application from its UI's REST API ($STATE/executors.json; fails unless both workers
#       ran tasks); stop, also on failure
#   scripts/spark/cluster.sh dbt [dbt steps, ';'-separated]   # e.g. dbt run --select +fct_mrr
#       start; the dbt steps through spark_thrift (meterworks.engine.spark); executors; stop
#
# Needs the spark extra (it has the Thrift client, PyHive): pip install -e '.[spark]', and Java 17.
#
# Ports (all on 127.0.0.1; each must be free, or start refuses):
#   METERWORKS_SPARK_MASTER_PORT        7077   master RPC
#   METERWORKS_SPARK_MASTER_WEBUI_PORT  8080   master web UI (its /json/ lists the workers)
#   METERWORKS_SPARK_WORKER_WEBUI_PORT  8081   worker 1's web UI; worker 2's is this + 1
#   METERWORKS_SPARK_THRIFT_PORT        10000  Thrift Server (read by the spark_thrift target too)
#   METERWORKS_SPARK_UI_PORT            4040   the Thrift Server application's UI and REST API
# Sizes: METERWORKS_SPARK_WORKER_CORES (1), METERWORKS_SPARK_WORKER_MEMORY (1g, also the
# executor memory), METERWORKS_SPARK_DRIVER_MEMORY (3g, the Thrift Server's driver).
# Other ports (worker and executor RPC, block managers, the driver) are picked by the OS.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/../.." && pwd)"
PY="${PYTHON:-$REPO/.venv/bin/python}"
HOME_DIR="$("$PY" -c 'from meterworks.config import settings; print(settings().home)')"
STATE="${METERWORKS_SPARK_DIR:-$HOME_DIR/spark}"
mkdir -p "$STATE"
STATE="$(cd "$STATE" && pwd)"
SPARK_HOME="$("$PY" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')"
export SPARK_HOME SPARK_LOCAL_IP=127.0.0.1 SPARK_MASTER_HOST=127.0.0.1 SPARK_PUBLIC_DNS=127.0.0.1
export SPARK_LOG_DIR="$STATE/logs" SPARK_PID_DIR="$STATE/pids" SPARK_WORKER_DIR="$STATE/work"
export SPARK_LOCAL_DIRS="$STATE/tmp"
DAEMON_MEMORY="${SPARK_DAEMON_MEMORY:-512m}"  # master and workers
# Marks every JVM of this cluster (daemons, driver, executors) with its state directory.
MARK="-Dmeterworks.spark.state=$STATE"
export SPARK_DAEMON_JAVA_OPTS="$MARK"
# no REST submission server on the master (Spark 4 starts one on the fixed port 6066)
export SPARK_MASTER_OPTS="${SPARK_MASTER_OPTS:-} -Dspark.master.rest.enabled=false"
export PYSPARK_PYTHON="$PY" METERWORKS_SPARK_DIR="$STATE"

MASTER_PORT="${METERWORKS_SPARK_MASTER_PORT:-7077}"
MASTER_WEBUI_PORT="${METERWORKS_SPARK_MASTER_WEBUI_PORT:-8080}"
WORKER_WEBUI_PORT="${METERWORKS_SPARK_WORKER_WEBUI_PORT:-8081}"
THRIFT_PORT="${METERWORKS_SPARK_THRIFT_PORT:-10000}"
UI_PORT="${METERWORKS_SPARK_UI_PORT:-4040}"
export METERWORKS_SPARK_THRIFT_HOST=127.0.0.1 METERWORKS_SPARK_THRIFT_PORT="$THRIFT_PORT"
WORKER_CORES="${METERWORKS_SPARK_WORKER_CORES:-1}"
WORKER_MEMORY="${METERWORKS_SPARK_WORKER_MEMORY:-1g}"
DRIVER_MEMORY="${METERWORKS_SPARK_DRIVER_MEMORY:-3g}"
MASTER="spark://127.0.0.1:$MASTER_PORT"
NAMES=(master worker-1 worker-2 thrift)

die() { echo "cluster.sh: $*" >&2; exit 1; }

java_home() {  # JAVA_HOME, else the JDK of `java` on PATH (as meterworks.engine.spark does)
  local home="${JAVA_HOME:-}"
  if [[ -z "$home" ]]; then
    home="$("$PY" -c 'from meterworks.engine.spark import _java_home; print(_java_home() or "")')"
  fi
  [[ -n "$home" && -x "$home/bin/java" ]] || die "no Java runtime found (Spark 4 needs Java 17)"
  local version major
  version="$("$home/bin/java" -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')"
  major="${version%%.*}"
  [[ "$major" =~ ^[0-9]+$ && "$major" -ge 17 ]] || die "Java $version at $home; Spark 4 needs 17+"
  export JAVA_HOME="$home"
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

alive() {  # name: the pid of a running process recorded in its pid file, else nothing
  local pidfile="$SPARK_PID_DIR/$1.pid" pid
  [[ -f "$pidfile" ]] || return 1
  pid="$(cat "$pidfile")"
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

launch() {  # name, then the command; records the pid (spark-class execs the JVM)
  local name="$1"; shift
  (cd "$STATE" && exec nohup "$@" >"$SPARK_LOG_DIR/$name.log" 2>&1 </dev/null) &
  echo $! >"$SPARK_PID_DIR/$name.pid"
}

wait_port() {  # name, port, seconds: until the port listens; fails early if the process died
  local name="$1" port="$2"
  for _ in $(seq "$3"); do
    if listening "$port"; then return 0; fi
    if ! alive "$name" >/dev/null; then
      tail -n 40 "$SPARK_LOG_DIR/$name.log" >&2 || true
      die "$name exited before listening on 127.0.0.1:$port (log: $SPARK_LOG_DIR/$name.log)"
    fi
    sleep 1
  done
  die "nothing listening on 127.0.0.1:$port after $3 s ($name)"
}

wait_workers() {  # seconds: until the master lists both workers ALIVE
  for _ in $(seq "$1"); do
    if "$PY" - "$MASTER_WEBUI_PORT" <<'EOF' 2>/dev/null; then return 0; fi
import json, sys, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/json/"
state = json.load(urllib.request.urlopen(url, timeout=5))
sys.exit(0 if sum(w["state"] == "ALIVE" for w in state["workers"]) >= 2 else 1)
EOF
    sleep 1
  done
  die "the master does not list 2 live workers after $1 s"
}

start() {
  java_home
  for name in "${NAMES[@]}"; do
    if pid="$(alive "$name")"; then die "$name is already running (pid $pid); stop it first"; fi
  done
  local port
  for port in "$MASTER_PORT" "$MASTER_WEBUI_PORT" "$WORKER_WEBUI_PORT" \
    "$((WORKER_WEBUI_PORT + 1))" "$THRIFT_PORT" "$UI_PORT"; do
    if listening "$port"; then die "127.0.0.1:$port is in use (see the port variables)"; fi
  done
  mkdir -p "$SPARK_LOG_DIR" "$SPARK_PID_DIR" "$SPARK_WORKER_DIR" "$STATE/warehouse" \
    "$STATE/tmp" "$STATE/hive"
  rm -f "$STATE/executors.json"

  launch master env SPARK_DAEMON_MEMORY="$DAEMON_MEMORY" \
    "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.master.Master \
    --host 127.0.0.1 --port "$MASTER_PORT" --webui-port "$MASTER_WEBUI_PORT"
  wait_port master "$MASTER_PORT" 120
  for i in 1 2; do
    launch "worker-$i" env SPARK_DAEMON_MEMORY="$DAEMON_MEMORY" \
      "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.worker.Worker \
      --host 127.0.0.1 --cores "$WORKER_CORES" --memory "$WORKER_MEMORY" \
      --work-dir "$SPARK_WORKER_DIR/$i" --webui-port "$((WORKER_WEBUI_PORT + i - 1))" "$MASTER"
  done
  wait_port master "$MASTER_WEBUI_PORT" 60
  wait_workers 120
  # Spark's launcher gives the Thrift Server SPARK_DAEMON_MEMORY as heap before --driver-memory.
  # Hive deletes a session's resources folder when the session closes: one per session (as
  # Hive's default), else dbt's two threads race ("Couldn't create directory .../resources").
  launch thrift env SPARK_DAEMON_MEMORY="$DRIVER_MEMORY" "$SPARK_HOME/bin/spark-submit" \
    --class org.apache.spark.sql.hive.thriftserver.HiveThriftServer2 \
    --master "$MASTER" --name meterworks-thrift \
    --driver-memory "$DRIVER_MEMORY" \
    --conf spark.driver.host=127.0.0.1 --conf spark.driver.bindAddress=127.0.0.1 \
    --conf spark.executor.memory="$WORKER_MEMORY" \
    --conf spark.cores.max="$((2 * WORKER_CORES))" \
    --conf "spark.sql.warehouse.dir=$STATE/warehouse" \
    --conf "spark.hadoop.javax.jdo.option.ConnectionURL=jdbc:derby:;databaseName=$STATE/metastore_db;create=true" \
    --conf "spark.driver.extraJavaOptions=$MARK -Dderby.system.home=$STATE -Dderby.stream.error.file=$STATE/derby.log" \
    --conf "spark.executor.extraJavaOptions=$MARK" \
    --conf spark.sql.session.timeZone=UTC \
    --conf spark.sql.shuffle.partitions="${METERWORKS_SPARK_SHUFFLE_PARTITIONS:-4}" \
    --conf spark.sql.parquet.inferTimestampNTZ.enabled=false \
    --conf spark.sql.ansi.enabled=false \
    --conf spark.ui.enabled=true --conf spark.ui.port="$UI_PORT" \
    --conf spark.ui.showConsoleProgress=false \
    --conf spark.ui.retainedJobs=200 --conf spark.ui.retainedStages=200 \
    --conf spark.sql.ui.retainedExecutions=100 \
    --conf spark.sql.thriftserver.ui.retainedStatements=100 \
    --conf spark.sql.thriftserver.ui.retainedSessions=50 \
    --conf "spark.local.dir=$STATE/tmp" \
    --hiveconf hive.server2.thrift.bind.host=127.0.0.1 \
    --hiveconf hive.server2.thrift.port="$THRIFT_PORT" \
    --hiveconf "hive.exec.scratchdir=$STATE/hive/scratch" \
    --hiveconf "hive.exec.local.scratchdir=$STATE/hive/local" \
    --hiveconf "hive.downloaded.resources.dir=$STATE/hive/\${hive.session.id}_resources" \
    --hiveconf "hive.server2.logging.operation.log.location=$STATE/hive/operation_logs" \
    --hiveconf "hive.querylog.location=$STATE/hive/querylog" \
    spark-internal
  wait_port thrift "$THRIFT_PORT" 300
  echo "cluster up: $MASTER (UI :$MASTER_WEBUI_PORT), workers (UI :$WORKER_WEBUI_PORT," \
    ":$((WORKER_WEBUI_PORT + 1))), Thrift Server 127.0.0.1:$THRIFT_PORT," \
    "application UI 127.0.0.1:$UI_PORT, state in $STATE"
}

wait_gone() {  # pid, seconds
  for _ in $(seq "$2"); do kill -0 "$1" 2>/dev/null || return 0; sleep 1; done
  return 1
}

terminate() {  # pid: TERM, then KILL after 30 s
  kill "$1" 2>/dev/null || return 0
  wait_gone "$1" 30 || kill -9 "$1" 2>/dev/null || true
}

stop() {
  local name pid child children
  for name in thrift worker-2 worker-1 master; do
    if pid="$(alive "$name")"; then
      # a worker's children are its executors: stopped with it, else here, by pid
      children="$(ps -o pid= --ppid "$pid" 2>/dev/null || true)"
      terminate "$pid"
      for child in $children; do
        if kill -0 "$child" 2>/dev/null; then terminate "$child"; fi
      done
    fi
    rm -f "$SPARK_PID_DIR/$name.pid"
  done
  echo "cluster stopped"
}

status() {
  for name in "${NAMES[@]}"; do
    if pid="$(alive "$name")"; then echo "$name: running (pid $pid)"; else echo "$name: stopped"; fi
  done
}

executors() {  # per executor / worker task counts from the application's REST API
  "$PY" -m meterworks.engine.cluster \
    --ui "http://127.0.0.1:$UI_PORT" --master-ui "http://127.0.0.1:$MASTER_WEBUI_PORT" \
    --workers 2 --out "$STATE/executors.json"
}

on_exit() {
  local rc=$?
  trap - EXIT INT TERM
  stop || true
  exit "$rc"
}

command="${1:-}"
shift || true
case "$command" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  build | dbt)
    trap on_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    start
    rc=0
    if [[ "$command" == build ]]; then
      rm -f "$STATE/compare.json"
      "$PY" "$REPO/scripts/spark/compare_engines.py" --home "$HOME_DIR" --target spark_thrift \
        --out "$STATE/compare.json" "$@" || rc=$?
      if [[ "$rc" != 0 && -f "$HOME_DIR/compare_engines.log" ]]; then
        tail -n 60 "$HOME_DIR/compare_engines.log" >&2
      fi
    else
      "$PY" -m meterworks.engine.spark --target spark_thrift -- "${@:-build}" || rc=$?
    fi
    executors || { [[ "$rc" != 0 ]] || rc=1; }
    exit "$rc"
    ;;
  *) echo "usage: $0 start|stop|status|build [compare options]|dbt [dbt steps]" >&2; exit 2 ;;
esac
