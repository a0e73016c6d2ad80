"""Face detection: downscaled vs full-resolution detection, and the job vs a single-process loop.

Workload: FER-2013 train images upscaled to ``--side`` px (real faces filling the frame, the
shape of the 224-px Kaggle set), or generated pictures without --data.

1. Downscale: the same cascade on full resolution and on a copy at most ``faces.max_side`` px a
   side (the setting's default); speed-up, and agreement = share of images where full
   resolution finds a face whose primary face the downscaled run finds too (IoU >= 0.5).
2. Throughput: ``femo.faces.detection.detect_faces`` on ``local[N]`` (images already ingested; JVM
   start-up excluded) beside a loop calling ``femo.faces.cascade.find_faces`` on the same bytes.

    PYTHONPATH=. .venv/bin/python benchmarks/faces.py --data $FEMO_DATA_DIR/fer2013/train
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
import numpy as np

from femo.faces.cascade import DETECT, DetectorParams, decode_gray, detect, find_faces, load_cascade
from femo.faces.detection import detect_faces, params_of
from femo.ingest.run import ingest, inspect_options
from femo.ingest.sample import encode, face_like
from femo.platform.catalog import init_catalog
from femo.platform.session import build_session
from femo.platform.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]


def workload(data: Path | None, side: int, limit: int, out: Path) -> list[bytes]:
    """``limit`` images at ``side`` px written under ``out/<emotion>/``; returns their bytes."""
    images: list[bytes] = []
    if data is not None:
        paths = sorted(p for p in data.rglob("*.jpg"))[:: max(1, 28709 // limit)][:limit]
        sources = [(p.parent.name, cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)) for p in paths]
    else:
        rng = np.random.default_rng(0)
        sources = [("happy", face_like(rng, 64, color=False)) for _ in range(limit)]
    for i, (label, img) in enumerate(sources):
        big = cv2.resize(img, (side, side), interpolation=cv2.INTER_CUBIC)
        blob = encode(big, ".jpg")
        folder = out / label
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i}.jpg").write_bytes(blob)
        images.append(blob)
    return images


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path)
    parser.add_argument("--side", type=int, default=224)
    parser.add_argument("--limit", type=int, default=2000)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        dest="overrides",
        help="settings override, e.g. --set faces.max_side=128",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="femo-faces-"))
    try:
        images = workload(args.data, args.side, args.limit, work / "images")
        settings = load_settings(
            ROOT / "conf" / "local.yaml",
            [
                f"spark.master=local[{args.cores}]",
                "spark.show_progress=false",
                "spark.conf.spark.ui.enabled=false",
                *args.overrides,
            ],
            environ={"FEMO_HOME": str(work / "home")},
        )
        detector, crop = params_of(settings.faces)
        full = DetectorParams(
            detector.cascade,
            detector.scale_factor,
            detector.min_neighbors,
            detector.min_size,
            max_side=100_000,
        )
        cascade = load_cascade(detector.cascade)
        grays = [g for g in (decode_gray(b) for b in images) if g is not None]

        timings = {}
        found = {}
        for name, params in (("full", full), ("downscaled", detector)):
            start = time.perf_counter()
            found[name] = [detect(g, cascade, params) for g in grays]
            timings[name] = time.perf_counter() - start
        with_face = [i for i, boxes in enumerate(found["full"]) if boxes]
        agree = sum(
            1
            for i in with_face
            if found["downscaled"][i] and found["full"][i][0].iou(found["downscaled"][i][0]) >= 0.5
        )
        print(f"workload: {len(grays)} images at {args.side} px; max_side {detector.max_side}")
        print(
            f"full resolution: {len(grays) / timings['full']:7.0f} images/s, faces in "
            f"{len(with_face)}"
        )
        print(
            f"downscaled:      {len(grays) / timings['downscaled']:7.0f} images/s "
            f"-> speed-up {timings['full'] / timings['downscaled']:.2f}x, same primary face in "
            f"{agree}/{len(with_face)} = {agree / max(1, len(with_face)):.1%}"
        )

        start = time.perf_counter()
        loop_rows = sum(len(find_faces(b, DETECT, cascade, detector, crop)) for b in images)
        loop_s = time.perf_counter() - start

        os.environ["PYTHONPATH"] = str(ROOT)
        spark = build_session(settings)
        init_catalog(spark, settings)
        ingest(
            spark,
            "femo",
            "bench",
            str(work / "images"),
            "folders",
            lambda: inspect_options(spark, "femo", str(work / "images"), "path", settings.ingest),
            settings.ingest,
            uuid.uuid4().hex,
        )
        start = time.perf_counter()
        summary = detect_faces(spark, "femo", settings.faces, ["bench"], uuid.uuid4().hex)
        job_s = time.perf_counter() - start
        print(f"loop (1 process): {len(images) / loop_s:7.0f} images/s ({loop_rows} rows)")
        print(
            f"job  (local[{args.cores}]):  {summary.images / job_s:7.0f} images/s "
            f"({summary.line()})"
        )
        print(f"ratio job/loop: {loop_s / job_s:.2f}x")
        spark.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
