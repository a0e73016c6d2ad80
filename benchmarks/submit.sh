#!/usr/bin/env bash
# Wall time of the ingest job as a user runs it, cold JVM included: on a fresh home with the
# catalog made, `./spark-submit.sh jobs/ingest_images.py` on a collection, then the re-run that
# finds nothing new (what a scheduled run costs when no file arrived).
#   benchmarks/submit.sh $FEMO_DATA_DIR/fer2013/train
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:?usage: benchmarks/submit.sh PATH}
FEMO_HOME=$(mktemp -d)
export FEMO_HOME
trap 'rm -rf "$FEMO_HOME"' EXIT
./spark-submit.sh jobs/init_catalog.py >/dev/null 2>&1
for run in "first ingest" "re-run"; do
  start=$(date +%s.%N)
  ./spark-submit.sh jobs/ingest_images.py --source bench --path "$data" 2>/dev/null | tail -1
  end=$(date +%s.%N)
  awk -v run="$run" -v s="$start" -v e="$end" 'BEGIN { printf "%s: %.1f s\n", run, e - s }'
done
