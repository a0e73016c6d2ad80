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
  PYTHONPATH=. "$py" -m femo.sample "$home/sample"
  images="$home/sample/images"
  csv="$home/sample/fer2013.csv"
fi

echo "== 1/3 catalog: database, emotions, sources"
$submit jobs/init_catalog.py

echo "== 2/3 ingest: decode, measure and quarantine $images"
$submit jobs/ingest_images.py --source "$source" --path "$images"
if [[ -n "$csv" ]]; then
  $submit jobs/ingest_images.py --source sample_csv --path "$csv" --layout fer_csv
fi

echo "== 3/3 faces: Haar cascade per source policy, 48x48 crops"
$submit jobs/detect_faces.py

echo "== images per emotion and split"
$submit jobs/query.py --file sql/insights/images_per_emotion_and_split.sql --param "source=$source"
echo "== quarantine by reason"
$submit jobs/query.py --file sql/insights/quarantine_by_reason.sql
echo "== face detection rate per source and emotion"
$submit jobs/query.py --file sql/insights/face_detection_rate.sql
echo "== identical images under different labels (first 5)"
$submit jobs/query.py --file sql/insights/label_conflicts.sql --limit 5

cat <<MSG

== Done. Everything femo wrote is under $home:
   warehouse/   Delta tables of the database femo   metastore/   embedded Derby metastore
Query the tables and views by name (images, quarantine, faces, all_images, faces_current,
images_<source>, ...):
   ./spark-submit.sh jobs/query.py --sql "SELECT emotion, count(*) FROM all_images GROUP BY 1"
   ./spark-submit.sh jobs/query.py --file sql/insights/duplicates.sql --format csv
   or from a notebook: notebooks/quickstart.ipynb
MSG
