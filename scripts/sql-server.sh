#!/usr/bin/env bash
# Spark's Thrift server (HiveServer2 protocol) over the femo catalog, for JDBC/ODBC clients.
#
#   scripts/sql-server.sh start|stop|status [--conf FILE] [--set key=value ...]
#
# start   starts it in the background with the jobs' settings (Delta, warehouse, metastore) and
#         waits until sql_server.host:sql_server.port answers (FEMO_SQL_SERVER_WAIT seconds,
#         default 180); on failure prints the log's tail and exits 1.
# stop    stops it (and is a no-op when it is not running).
# status  exits 0 when it runs, 3 when it does not.
#
# Connect with: "$SPARK_HOME"/bin/beeline -u jdbc:hive2://127.0.0.1:10000/femo -n "$USER"
# With the embedded Derby metastore, stop the server before running batch jobs (one process at
# a time): see docs/sql-server.md. Pid file: <home>/run/sql-server.pid; log:
# <home>/logs/sql-server.log. Environment: FEMO_VENV, FEMO_CONF, FEMO_HOME, FEMO_JARS_DIR.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FEMO_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
WAIT="${FEMO_SQL_SERVER_WAIT:-180}"

usage() { sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

if (($# < 1)); then usage >&2; exit 2; fi
command="$1"; shift
case "$command" in
  start|stop|status) ;;
  -h|--help|help) usage; exit 0 ;;
  *) echo "error: unknown command $command (start, stop or status)" >&2; exit 2 ;;
esac
if [[ ! -x "$PY" ]]; then
  echo "error: no Python environment at $VENV: run 'make venv' (or set FEMO_VENV)" >&2
  exit 2
fi

export FEMO_CONF="${FEMO_CONF:-$ROOT/conf/local.yaml}"
femo() { PYTHONPATH="$ROOT" "$PY" -m femo.analytics.sql_server "$@"; }

# pid_file, log_file, host, port, url, metastore, local_ip (shell-quoted by femo.analytics.sql_server)
assignments="$(femo paths "$@")"
eval "$assignments"

# The pid in the pid file, if that process is still our Thrift server.
running_pid() {
  local pid
  [[ -f "$pid_file" ]] || return 1
  pid="$(<"$pid_file")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  grep -qa org.apache.spark.sql.hive.thriftserver.HiveThriftServer2 "/proc/$pid/cmdline" \
    2>/dev/null || return 1
  echo "$pid"
}

probe_host() { if [[ "$host" == "0.0.0.0" || "$host" == "::" ]]; then echo 127.0.0.1; else echo "$host"; fi; }
port_open() { (exec 3<>"/dev/tcp/$(probe_host)/$port") 2>/dev/null; }

stop_pid() {
  local pid="$1" i
  # The server runs in its own session (setsid): signal its whole process group.
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 30; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 1
  done
  echo "sql-server (pid $pid) ignored SIGTERM for 30 s: killing it" >&2
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
}

fail_with_log() {
  echo "error: $1" >&2
  if [[ -f "$log_file" ]]; then
    if grep -q "XSDB6" "$log_file"; then
      echo "error: the embedded Derby metastore ($metastore) is open in another process (a batch" \
        "job, notebook or pyspark shell with the same home): stop it first, or share a metastore" \
        "(docs/sql-server.md); full log: $log_file" >&2
      exit 1
    fi
    echo "--- last lines of $log_file (without stack frames):" >&2
    grep -v '^[[:space:]]*at ' "$log_file" | tail -n 25 >&2
  fi
  exit 1
}

case "$command" in
  status)
    if pid="$(running_pid)"; then
      echo "sql-server running (pid $pid): $url, metastore $metastore, log $log_file"
      exit 0
    fi
    echo "sql-server not running ($url)"
    exit 3
    ;;

  stop)
    if pid="$(running_pid)"; then
      stop_pid "$pid"
      echo "sql-server stopped (pid $pid)"
    else
      echo "sql-server not running"
    fi
    rm -f "$pid_file"
    ;;

  start)
    if pid="$(running_pid)"; then
      echo "sql-server already running (pid $pid): $url"
      exit 0
    fi
    if port_open; then
      echo "error: $(probe_host):$port is already in use by another program:" \
        "choose another port with --set sql_server.port=N" >&2
      exit 1
    fi
    SPARK_HOME="${SPARK_HOME:-$("$PY" -c 'import importlib.util as u; print(u.find_spec("pyspark").submodule_search_locations[0])')}"
    export SPARK_HOME
    export PYSPARK_PYTHON="${PYSPARK_PYTHON:-$PY}"
    if [[ -n "$local_ip" ]]; then export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-$local_ip}"; fi
    args_file="$(mktemp)"
    trap 'rm -f "$args_file"' EXIT
    femo args --log4j "$ROOT/conf/log4j2.properties" "$@" > "$args_file"
    mapfile -d '' args < "$args_file"
    mkdir -p "$(dirname "$pid_file")" "$(dirname "$log_file")"
    # Its own session, so stop can signal the JVM and anything it started; spark-submit execs
    # the JVM, so $! is the server's pid.
    setsid "$SPARK_HOME/bin/spark-submit" "${args[@]}" >"$log_file" 2>&1 </dev/null &
    pid=$!
    echo "$pid" > "$pid_file"
    for ((waited = 0; waited < WAIT; waited++)); do
      if ! kill -0 "$pid" 2>/dev/null; then
        rm -f "$pid_file"
        fail_with_log "sql-server exited while starting"
      fi
      if port_open; then
        echo "sql-server running (pid $pid): $url, metastore $metastore, log $log_file"
        exit 0
      fi
      sleep 1
    done
    stop_pid "$pid"
    rm -f "$pid_file"
    fail_with_log "sql-server did not answer on $(probe_host):$port within $WAIT s"
    ;;
esac
