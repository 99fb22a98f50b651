#!/usr/bin/env bash
# A local Spark standalone cluster from the pyspark install, all on 127.0.0.1: a master, two
# workers and the Spark Thrift Server (the `spark_thrift` dbt target), with every state file
# (metastore, warehouse, logs, pids) under $METERWORKS_HOME/spark, so the table files land where
# meterworks.engine.compare reads them.
#
#   scripts/spark/cluster.sh start    # master :7077, workers, Thrift Server :10000
#   scripts/spark/cluster.sh status
#   scripts/spark/cluster.sh stop     # stops exactly the processes it started (pid files)
#   scripts/spark/cluster.sh build    # start, export the lake, dbt build via spark_thrift, stop
#
# Needs the spark extra plus the Thrift client: pip install -e '.[spark]' 'dbt-spark[PyHive]<1.12'
set -euo pipefail

REPO="$(cd "$(dirname "$0")/../.." && pwd)"
PY="${PYTHON:-$REPO/.venv/bin/python}"
HOME_DIR="$("$PY" -c 'from meterworks.config import settings; print(settings().home)')"
STATE="${METERWORKS_SPARK_DIR:-$HOME_DIR/spark}"
SPARK_HOME="$("$PY" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')"
export SPARK_HOME SPARK_LOCAL_IP=127.0.0.1 SPARK_MASTER_HOST=127.0.0.1
export SPARK_LOG_DIR="$STATE/logs" SPARK_PID_DIR="$STATE/pids" SPARK_WORKER_DIR="$STATE/work"
export PYSPARK_PYTHON="$PY"
MASTER="spark://127.0.0.1:${SPARK_MASTER_PORT:-7077}"
THRIFT_PORT="${METERWORKS_SPARK_THRIFT_PORT:-10000}"
WORKER_CORES="${SPARK_WORKER_CORES:-1}"
WORKER_MEMORY="${SPARK_WORKER_MEMORY:-1g}"

mkdir -p "$SPARK_LOG_DIR" "$SPARK_PID_DIR" "$SPARK_WORKER_DIR" "$STATE/warehouse" "$STATE/tmp"

launch() {  # name, then the command; records the pid
  local name="$1"; shift
  nohup "$@" >"$SPARK_LOG_DIR/$name.log" 2>&1 &
  echo $! >"$SPARK_PID_DIR/$name.pid"
}

wait_port() {  # port, seconds
  for _ in $(seq "$2"); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 1
  done
  echo "nothing listening on 127.0.0.1:$1 after $2 s" >&2
  return 1
}

start() {
  launch master "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.master.Master \
    --host 127.0.0.1 --port "${SPARK_MASTER_PORT:-7077}" --webui-port "${SPARK_MASTER_WEBUI_PORT:-8080}"
  wait_port "${SPARK_MASTER_PORT:-7077}" 120
  for i in 1 2; do
    launch "worker-$i" "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.worker.Worker \
      --host 127.0.0.1 --cores "$WORKER_CORES" --memory "$WORKER_MEMORY" \
      --work-dir "$SPARK_WORKER_DIR/$i" --webui-port "$((8080 + i))" "$MASTER"
  done
  launch thrift "$SPARK_HOME/bin/spark-submit" \
    --class org.apache.spark.sql.hive.thriftserver.HiveThriftServer2 \
    --master "$MASTER" --name meterworks-thrift \
    --conf spark.driver.host=127.0.0.1 --conf spark.driver.bindAddress=127.0.0.1 \
    --conf spark.executor.memory="$WORKER_MEMORY" --conf spark.cores.max=2 \
    --conf "spark.sql.warehouse.dir=$STATE/warehouse" \
    --conf "spark.hadoop.javax.jdo.option.ConnectionURL=jdbc:derby:;databaseName=$STATE/metastore_db;create=true" \
    --conf "spark.driver.extraJavaOptions=-Dderby.system.home=$STATE -Dderby.stream.error.file=$STATE/derby.log" \
    --conf spark.sql.session.timeZone=UTC \
    --conf spark.sql.shuffle.partitions=4 \
    --conf spark.sql.parquet.inferTimestampNTZ.enabled=false \
    --conf spark.ui.enabled=false --conf spark.ui.showConsoleProgress=false \
    --conf "spark.local.dir=$STATE/tmp" \
    --hiveconf hive.server2.thrift.bind.host=127.0.0.1 \
    --hiveconf hive.server2.thrift.port="$THRIFT_PORT" \
    spark-internal
  wait_port "$THRIFT_PORT" 300
  echo "cluster up: $MASTER, Thrift Server 127.0.0.1:$THRIFT_PORT, state in $STATE"
}

stop() {
  for name in thrift worker-2 worker-1 master; do
    local pidfile="$SPARK_PID_DIR/$name.pid"
    if [[ -f "$pidfile" ]]; then
      local pid; pid="$(cat "$pidfile")"
      if kill -0 "$pid" 2>/dev/null; then kill "$pid"; fi
      for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
      rm -f "$pidfile"
    fi
  done
  echo "cluster stopped"
}

status() {
  for name in master worker-1 worker-2 thrift; do
    local pidfile="$SPARK_PID_DIR/$name.pid"
    if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "$name: running (pid $(cat "$pidfile"))"
    else
      echo "$name: stopped"
    fi
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  build)
    trap stop EXIT
    start
    shift
    "$PY" -m meterworks.engine.spark --target spark_thrift -- "${@:-build}"
    ;;
  *) echo "usage: $0 start|stop|status|build [dbt args]" >&2; exit 2 ;;
esac
