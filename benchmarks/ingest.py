"""Ingest throughput: the Spark job beside a single-process Python loop doing the same work.

Both sides take the same files, do the same per-image work (read, place, label, sniff, guard,
decode, measure, hash: ``femo.ingest.inspect_files_frame``) and write the same rows; the loop
writes them to Parquet with pyarrow (the seed's way), the job lists, skips known files,
inspects in mapInPandas on ``local[N]`` and MERGEs into Delta. JVM start-up and catalog set-up
are outside the timing; each side runs on a fresh table and a warm page cache.

    PYTHONPATH=. .venv/bin/python benchmarks/ingest.py --data $FEMO_DATA_DIR/fer2013/train
    PYTHONPATH=. .venv/bin/python benchmarks/ingest.py --data ... --upscale 224

Without --data it runs on a generated sample (small; for a smoke test, not for figures).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import cv2
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from femo.catalog import init_catalog
from femo.ingest import InspectOptions, ingest, inspect_files_frame, inspect_options
from femo.layout import LabelMap
from femo.sample import write_images
from femo.session import build_session
from femo.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]


def upscale(source: Path, target: Path, side: int) -> int:
    """Copy the collection with every image resized to ``side`` px (JPEG, quality 90)."""
    count = 0
    for path in sorted(source.rglob("*")):
        if not path.is_file():
            continue
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        out = target / path.relative_to(source)
        out.parent.mkdir(parents=True, exist_ok=True)
        if img is None:
            shutil.copy(path, out)
        else:
            big = cv2.resize(img, (side, side), interpolation=cv2.INTER_CUBIC)
            cv2.imwrite(str(out.with_suffix(".jpg")), big, [cv2.IMWRITE_JPEG_QUALITY, 90])
        count += 1
    return count


def warm(root: Path) -> int:
    """Read every file once so both sides start from the page cache."""
    total = 0
    for path in root.rglob("*"):
        if path.is_file():
            total += len(path.read_bytes())
    return total


def loop(root: Path, options: InspectOptions, out: Path) -> int:
    """The single-process baseline: walk, read, inspect, write Parquet with pyarrow."""
    labels = LabelMap.from_names(options.labels)
    records = []
    for path in sorted(root.rglob("*")):
        if path.is_file():
            stat = path.stat()
            records.append(
                {
                    "path": f"file:{path}",
                    "modificationTime": pd.Timestamp(stat.st_mtime, unit="s"),
                    "length": stat.st_size,
                    "content": path.read_bytes(),
                }
            )
    frame = inspect_files_frame(pd.DataFrame.from_records(records), options, labels)
    pq.write_table(
        pa.Table.from_pandas(frame, preserve_index=False),
        out / "images.parquet",
        coerce_timestamps="us",
        allow_truncated_timestamps=True,
    )
    return len(frame)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="image folder collection (e.g. FER train/)")
    parser.add_argument("--upscale", type=int, default=0, help="resize images to N px first")
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="femo-bench-"))
    try:
        data = args.data
        if data is None:
            data = work / "sample"
            write_images(data, per_class=40)
        if args.upscale:
            scaled = work / f"up{args.upscale}"
            print(f"upscaling {data} to {args.upscale} px ...", flush=True)
            upscale(data, scaled, args.upscale)
            data = scaled
        files = sum(1 for p in data.rglob("*") if p.is_file())
        print(f"workload: {files} files, {warm(data) / 1e6:.1f} MB under {data}", flush=True)

        settings = load_settings(
            ROOT / "conf" / "local.yaml",
            [
                f"spark.master=local[{args.cores}]",
                "spark.show_progress=false",
                "spark.conf.spark.ui.enabled=false",
            ],
            environ={"FEMO_HOME": str(work / "home")},
        )
        os.environ["PYTHONPATH"] = str(ROOT)
        spark = build_session(settings)
        init_catalog(spark, settings)
        guards = settings.ingest
        options = inspect_options(spark, "femo", str(data), "path", guards)

        start = time.perf_counter()
        loop_rows = loop(data, options, work)
        loop_s = time.perf_counter() - start

        start = time.perf_counter()
        summary = ingest(
            spark, "femo", "bench", str(data), "folders", options, guards, uuid.uuid4().hex
        )
        job_s = time.perf_counter() - start
        job_rows = summary.accepted + sum(summary.quarantined.values())
        assert job_rows == loop_rows == files, (job_rows, loop_rows, files)

        print(
            f"loop (1 process, pyarrow Parquet): {loop_rows / loop_s:8.0f} images/s "
            f"({loop_s:.1f} s)"
        )
        print(
            f"job  (local[{args.cores}], Delta MERGE):     {job_rows / job_s:8.0f} images/s "
            f"({job_s:.1f} s)"
        )
        print(f"ratio job/loop: {loop_s / job_s:.2f}x")
        spark.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
