#!/usr/bin/env bash
# `make demo`: run every stage of the pipeline that exists on the embedded default, on the data
# under FEMO_DATA_DIR, and say where the results are and how to query them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

submit=./spark-submit.sh
py=${FEMO_VENV:-.venv}/bin/python
export FEMO_CONF=${FEMO_CONF:-$PWD/conf/local.yaml}
setting() { PYTHONPATH=. "$py" -m femo.platform.settings --get "$1"; }

home=$(setting home)
data_dir=$(setting data_dir)
echo "== femo demo: home $home"

# The generated sample is always written (small): the image-API mirror and the everyday-emotions
# stage use it; the image stages use it only when FER-2013 is not there.
PYTHONPATH=. "$py" -m femo.ingest.sample "$home/sample"
if [[ -n "$data_dir" && -d "$data_dir/fer2013/train" ]]; then
  echo "== FER-2013 found under $data_dir/fer2013"
  source=fer2013
  images="$data_dir/fer2013"
  csv=""
else
  cat <<MSG
== No FER-2013 under FEMO_DATA_DIR (${data_dir:-unset}).
   To run on the real data, download the Kaggle dataset msambare/fer2013 (train/<emotion>/*.jpg,
   test/<emotion>/*.jpg), unpack it as <dir>/fer2013 and run: FEMO_DATA_DIR=<dir> make demo
   Running every stage on a small generated sample instead.
MSG
  source=sample
  images="$home/sample/images"
  csv="$home/sample/fer2013.csv"
fi
if [[ -n "$data_dir" && -f "$data_dir/everyday_emotions.csv" ]]; then
  everyday="$data_dir/everyday_emotions.csv"
else
  echo "== No everyday_emotions.csv under FEMO_DATA_DIR: using the generated one (see README)"
  everyday="$home/sample/everyday_emotions.csv"
fi

echo "== 1/10 catalog: database, emotions, sources"
$submit jobs/init_catalog.py

echo "== 2/10 downloads: the Pixabay job against a local mirror of generated pictures"
echo "   (for pixabay.com itself: export PIXABAY_API_KEY=... and leave out the base_url --set)"
mirror_log=$(mktemp)
PYTHONPATH=. "$py" -m femo.sources.mirror "$home/sample/images/train" >"$mirror_log" 2>&1 &
mirror_pid=$!
trap 'kill "$mirror_pid" 2>/dev/null || true; rm -f "$mirror_log"' EXIT
for _ in $(seq 100); do grep -q '^mirror: ' "$mirror_log" && break; sleep 0.1; done
mirror_url=$(sed -n 's/^mirror: \(http[^ ]*\) .*/\1/p' "$mirror_log")
PIXABAY_API_KEY=local-mirror $submit jobs/fetch_api_images.py --source pixabay \
  --emotions angry,disgust,fear,happy,sad,surprise,neutral --per-emotion 3 \
  --set "fetch.connectors.pixabay.base_url=$mirror_url" --set "http.allow_networks=[127.0.0.0/8]"
kill "$mirror_pid" 2>/dev/null || true

echo "== 3/10 ingest: decode, measure and quarantine $images and the downloads"
$submit jobs/ingest_images.py --source "$source" --path "$images"
if [[ -n "$csv" ]]; then
  $submit jobs/ingest_images.py --source sample_csv --path "$csv" --layout fer_csv
fi
$submit jobs/ingest_images.py --source pixabay --path "$home/landing/pixabay"

echo "== 4/10 faces: Haar cascade per source policy, 48x48 crops"
$submit jobs/detect_faces.py

echo "== 5/10 training set: labelled faces, test leaks and label conflicts out of train"
$submit jobs/build_training_set.py --source "$source"

echo "== 6/10 training: a small model for two epochs on two Horovod ranks, tracked in MLflow"
echo "   (the accuracy recipe is in BENCHMARKS.md; a second demo finds this run recorded)"
$submit jobs/train.py --model compact --epochs 2 --num-proc 2 --set training.warmup_epochs=1

echo "== 7/10 FACS action units from the iMotions guide (a saved copy when offline)"
if ! $submit jobs/scrape_facs.py --set http.retries=1 --set http.connect_timeout_s=3; then
  echo "   the page is not reachable from here: reading the copy in tests/fixtures/facs/"
  $submit jobs/scrape_facs.py --html tests/fixtures/facs/imotions_facs.html
fi

echo "== 8/10 everyday emotions: clean $everyday"
$submit jobs/ingest_everyday.py --path "$everyday"

echo "== 9/10 EDA report"
$submit jobs/eda_report.py

echo "== 10/10 a few insights (jobs/query.py --list shows them all)"
echo "-- images per emotion and split"
$submit jobs/query.py --file sql/insights/images_per_emotion_and_split.sql --param "source=$source"
echo "-- quarantine by reason"
$submit jobs/query.py --file sql/insights/quarantine_by_reason.sql
echo "-- face detection rate per source and emotion"
$submit jobs/query.py --file sql/insights/face_detection_rate.sql
echo "-- the training set: emotions per split and their class weights"
$submit jobs/query.py --file sql/insights/training_set_balance.sql
echo "-- training runs and how the newest did per emotion on the test split"
$submit jobs/query.py --file sql/insights/training_runs.sql
$submit jobs/query.py --file sql/insights/model_per_class.sql
echo "-- the action units of happiness"
$submit jobs/query.py --file sql/insights/action_units_of_emotion.sql --param emotion=happy
echo "-- everyday emotions: positive vs negative by weekday"
$submit jobs/query.py --file sql/insights/everyday_valence_by_weekday.sql

cat <<MSG

== Done. Everything femo wrote is under $home:
   warehouse/  Delta tables of the database femo     metastore/  embedded Derby metastore
   landing/    downloaded images and their journal   reports/eda.html  the EDA report
   models/     training runs' checkpoints             mlflow/  MLflow runs and the model registry
Query the tables and views by name (images, quarantine, faces, downloads, action_units,
everyday_emotions, training_sets, training_examples, training_runs, run_metrics, all_images, all_data, faces_current, images_<source>, ...):
   ./spark-submit.sh jobs/query.py --list
   ./spark-submit.sh jobs/query.py --file sql/insights/label_conflicts.sql --format csv
   make sql-server   then any JDBC/ODBC client on jdbc:hive2://127.0.0.1:10000/femo
   or from a notebook: notebooks/eda.ipynb, notebooks/quickstart.ipynb
Browse runs and registered models: .venv/bin/mlflow ui --backend-store-uri sqlite:///$home/mlflow/mlflow.db
MSG
