#!/usr/bin/env bash
# `make demo`: run every stage of the pipeline that exists on the embedded default, on the data
# under FEMO_DATA_DIR, and say where the results are and how to query them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

submit=./spark-submit.sh
py=${FEMO_VENV:-.venv}/bin/python
export FEMO_CONF=${FEMO_CONF:-$PWD/conf/local.yaml}
setting() { PYTHONPATH=. "$py" -m femo.settings --get "$1"; }

home=$(setting home)
data_dir=$(setting data_dir)
echo "== femo demo: home $home"

if [[ -n "$data_dir" && -d "$data_dir/fer2013/train" ]]; then
  echo "== FER-2013 found under $data_dir/fer2013"
else
  cat <<MSG
== No FER-2013 under FEMO_DATA_DIR (${data_dir:-unset}).
   To run on the real data, download the Kaggle dataset msambare/fer2013 (train/<emotion>/*.jpg,
   test/<emotion>/*.jpg), unpack it as <dir>/fer2013 and run: FEMO_DATA_DIR=<dir> make demo
MSG
fi

echo "== 1/1 catalog: database, emotions, sources"
$submit jobs/init_catalog.py

echo "== the emotions every source maps its labels to"
$submit jobs/query.py --sql "SELECT emotion_id, name, valence, synonyms FROM emotions ORDER BY emotion_id"

cat <<MSG

== Done. Everything femo wrote is under $home:
   warehouse/   Delta tables of the database femo   metastore/   embedded Derby metastore
Query the tables by name:
   ./spark-submit.sh jobs/query.py --sql "SELECT * FROM sources"
   ./spark-submit.sh jobs/query.py --file sql/<query>.sql --param name=value --format csv
   .venv/bin/pyspark ... or a notebook: see README.md, "Querying"
MSG
