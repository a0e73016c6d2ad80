#!/usr/bin/env bash
# Submit a femo job to Spark: local[*] by default, or any master (spark://, yarn, k8s://).
#
#   ./spark-submit.sh [spark-submit options] jobs/<job>.py [job options]
#
# Examples:
#   ./spark-submit.sh jobs/init_catalog.py
#   ./spark-submit.sh jobs/query.py --sql "SELECT * FROM emotions" --format csv
#   ./spark-submit.sh --master spark://10.0.0.5:7077 jobs/init_catalog.py --conf conf/my-cluster.yaml
#
# Options before the job file go to spark-submit (they win over the settings); options after it
# go to the job (--conf FILE, --set key=value, and the job's own). The job's settings decide the
# master, the Delta jars (--jars), the executors' Python, the catalog and every other Spark
# property; femo and sql/ travel to the executors as a zip (--py-files).
#
# Environment: FEMO_VENV (default ./.venv), FEMO_CONF (default conf/local.yaml), FEMO_HOME,
# FEMO_DATA_DIR, FEMO_JARS_DIR.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${FEMO_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"

usage() { sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

if [[ ! -x "$PY" ]]; then
  echo "error: no Python environment at $VENV: run 'make venv' (or set FEMO_VENV)" >&2
  exit 2
fi

submit_opts=()
job=""
while (($#)); do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --verbose|-v|--supervise) submit_opts+=("$1"); shift ;;
    --*=*) submit_opts+=("$1"); shift ;;
    -*)
      if (($# < 2)); then echo "error: spark-submit option $1 needs a value" >&2; exit 2; fi
      submit_opts+=("$1" "$2"); shift 2 ;;
    *) job="$1"; shift; break ;;
  esac
done
if [[ -z "$job" ]]; then
  echo "error: no job given" >&2; usage >&2; exit 2
fi
if [[ ! -f "$job" ]]; then
  echo "error: no such job file: $job" >&2; exit 2
fi

export FEMO_CONF="${FEMO_CONF:-$ROOT/conf/local.yaml}"
export PYSPARK_DRIVER_PYTHON="$PY"
export PYSPARK_PYTHON="${PYSPARK_PYTHON:-$PY}"
SPARK_HOME="${SPARK_HOME:-$("$PY" -c 'import importlib.util as u; print(u.find_spec("pyspark").submodule_search_locations[0])')}"
export SPARK_HOME

zip="$ROOT/build/femo.zip"
derived_file="$(mktemp)"
env_file="$(mktemp)"
trap 'rm -f "$derived_file" "$env_file"' EXIT
# The job's own settings, turned into spark-submit options (NUL-separated) and the driver's
# environment (NAME=VALUE lines, e.g. SPARK_LOCAL_IP); also builds the zip.
PYTHONPATH="$ROOT" "$PY" -m femo.platform.submit --zip "$zip" --log4j "$ROOT/conf/log4j2.properties" \
  --env "$env_file" -- "$@" > "$derived_file"
mapfile -d '' derived < "$derived_file"
# A variable already set in the environment wins over the settings.
while IFS='=' read -r name value; do
  [[ -n "${!name:-}" ]] || export "$name=$value"
done < "$env_file"

# Not exec: the EXIT trap must still remove the temp file.
"$SPARK_HOME/bin/spark-submit" "${derived[@]}" --py-files "$zip" "${submit_opts[@]}" "$job" "$@"
