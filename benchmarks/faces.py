"""Face detection: downscaled vs full-resolution detection, and the job vs a single-process loop.

1. ``--photos``: recall of candidate detection settings against full-resolution detection, on
   real faces of varied sizes (single process, no Spark):
   - ``photos``: scikit-image's astronaut and matplotlib's Grace Hopper, whole, resized so their
     longer side is 256 to 1024 px (faces of 18 % and 45 % of the shorter side);
   - ``reframed``: the same two photos scaled so the face is 10 to 50 % of the shorter side of a
     640x480, 512x512 or 1024x768 frame, pasted at a random place on a real background (other
     scikit-image pictures, seed 0);
   - ``lfw``: scikit-image's 100 ``lfw_subset`` faces (25 px) upscaled to 10 to 50 % of such a
     frame and pasted the same way (twice each);
   - ``fer``: with ``--data``, FER-2013 train images upscaled to ``--side`` px (the face fills
     the picture);
   - ``non_faces``: the 100 ``lfw_subset`` non-faces pasted the same way, and the backgrounds
     alone at the three frame sizes: only false faces count there.
   Recall: of the pictures where full resolution finds the face (IoU >= 0.5 with where it is:
   the pasted box, the photo's known face box, or for FER full resolution's largest face), the
   share where the candidate finds it too. False faces: boxes not holding the face's centre.
   Time: each picture goes through every candidate in turn (so the machine's drift hits all
   alike); speed-up = full resolution's seconds / the candidate's.
2. Without ``--photos``, the downscale on FER-2013 (``--data``) or generated faces, with the
   settings' defaults: speed-up and agreement; then throughput, ``detect_faces`` on
   ``local[N]`` (images already ingested; JVM start-up excluded) beside a loop calling
   ``femo.faces.cascade.find_faces`` on the same bytes.

    PYTHONPATH=. .venv/bin/python benchmarks/faces.py --photos --data $FEMO_DATA_DIR/fer2013/train
    PYTHONPATH=. .venv/bin/python benchmarks/faces.py --data $FEMO_DATA_DIR/fer2013/train
"""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import matplotlib.cbook
import numpy as np
import numpy.typing as npt
from PIL import Image
from skimage import data as skdata

from benchmarks._common import bench_settings, ingest_folders, start
from femo.faces.cascade import (
    DETECT,
    Box,
    DetectorParams,
    Gray,
    decode_gray,
    detect,
    find_faces,
    load_cascade,
)
from femo.faces.detection import detect_faces, params_of
from femo.ingest.sample import encode, face_like

#: Faces as a share of the frame's shorter side, and the frames (height, width) they sit in.
FRACTIONS = (0.1, 0.125, 0.15, 0.175, 0.2, 0.25, 0.35, 0.5)
FRAMES = ((480, 640), (512, 512), (768, 1024))
SIDES = (256, 320, 400, 512, 640, 800, 1024)


@dataclass(frozen=True)
class Picture:
    """One picture of a workload and where its face is (None: no face, or not known)."""

    gray: Gray
    face: Box | None


def _gray(rgb: npt.NDArray[np.uint8]) -> Gray:
    return np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), np.uint8)


def real_photos() -> list[tuple[Gray, Box]]:
    """Photos with one frontal face that ship in a package, and the face's box (full
    resolution's detection on the original)."""
    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    hopper = np.asarray(Image.open(str(path)).convert("L"), np.uint8)
    return [(_gray(skdata.astronaut()), Box(177, 67, 93, 93)), (hopper, Box(149, 100, 231, 231))]


def backgrounds() -> list[Gray]:
    """Real pictures without a face (scikit-image), grayscale."""
    return [
        _gray(skdata.coffee()),
        _gray(skdata.chelsea()),
        _gray(skdata.rocket()),
        skdata.brick(),
        skdata.grass(),
        skdata.gravel(),
        _gray(skdata.hubble_deep_field()),
        skdata.coins(),
        skdata.moon(),
        _gray(skdata.immunohistochemistry()),
        _gray(skdata.stereo_motorcycle()[0]),
        skdata.clock(),
    ]


def _resize(img: Gray, width: int, height: int) -> Gray:
    shrink = width * height < img.shape[0] * img.shape[1]
    method = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    return np.asarray(cv2.resize(img, (width, height), interpolation=method), np.uint8)


def paste(
    rng: np.random.Generator,
    background: Gray,
    frame: tuple[int, int],
    img: Gray,
    face: Box,
    side: int,
) -> Picture:
    """``img`` scaled so ``face`` is ``side`` px wide, pasted on ``background`` (resized to
    ``frame``) with the face at a random place inside the frame; what falls outside is cut."""
    height, width = frame
    canvas = _resize(background, width, height).copy()
    k = side / face.w
    scaled = _resize(img, max(1, round(img.shape[1] * k)), max(1, round(img.shape[0] * k)))
    fx, fy = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
    ox, oy = fx - round(face.x * k), fy - round(face.y * k)  # where the scaled image's corner goes
    x0, y0 = max(0, ox), max(0, oy)
    x1, y1 = min(width, ox + scaled.shape[1]), min(height, oy + scaled.shape[0])
    canvas[y0:y1, x0:x1] = scaled[y0 - oy : y1 - oy, x0 - ox : x1 - ox]
    return Picture(canvas, Box(fx, fy, side, side))


def photos() -> Iterator[Picture]:
    """The real photos, whole, at every size of ``SIDES`` (longer side)."""
    for img, face in real_photos():
        height, width = img.shape
        for side in SIDES:
            k = side / max(height, width)
            yield Picture(
                _resize(img, round(width * k), round(height * k)),
                Box(round(face.x * k), round(face.y * k), round(face.w * k), round(face.h * k)),
            )


def reframed(rng: np.random.Generator, bgs: list[Gray]) -> Iterator[Picture]:
    """The real photos with their face at every share of ``FRACTIONS`` of every frame."""
    n = 0
    for img, face in real_photos():
        for fraction in FRACTIONS:
            for frame in FRAMES:
                n += 1
                side = round(fraction * min(frame))
                yield paste(rng, bgs[n % len(bgs)], frame, img, face, side)


def lfw(rng: np.random.Generator, bgs: list[Gray], faces: bool, rounds: int) -> Iterator[Picture]:
    """``lfw_subset``'s faces (or non-faces) pasted at the shares of ``FRACTIONS`` in turn."""
    subset = (skdata.lfw_subset() * 255).astype(np.uint8)  # 100 faces, then 100 non-faces
    crops = subset[:100] if faces else subset[100:]
    n = 0
    for _ in range(rounds):
        for crop in crops:
            frame = FRAMES[int(rng.integers(len(FRAMES)))]
            side = round(FRACTIONS[n % len(FRACTIONS)] * min(frame))
            n += 1
            picture = paste(rng, bgs[n % len(bgs)], frame, crop, Box(0, 0, 25, 25), side)
            yield picture if faces else Picture(picture.gray, None)


def fer_images(data: Path | None, side: int, limit: int) -> list[tuple[str, Gray]]:
    """``limit`` FER-2013 images (every n-th train file), or generated faces without ``data``,
    upscaled to ``side`` px, with their emotion folder."""
    if data is not None:
        paths = sorted(p for p in data.rglob("*.jpg"))[:: max(1, 28709 // limit)][:limit]
        sources = [(p.parent.name, cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)) for p in paths]
    else:
        rng = np.random.default_rng(0)
        sources = [("happy", face_like(rng, 64, color=False)) for _ in range(limit)]
    return [(label, _resize(img, side, side)) for label, img in sources]


def full_resolution(params: DetectorParams) -> DetectorParams:
    """The same cascade on the pictures as they are."""
    return replace(params, max_side=100_000, min_face_ratio=0.0, downscaled_min_neighbors=None)


def candidates(defaults: DetectorParams, only: str = "") -> dict[str, DetectorParams]:
    """The settings compared (those whose name matches ``only``, the old defaults and the
    settings' defaults always): copy size, ratio, the scale rule's headroom, neighbours."""
    base = replace(defaults, max_side=320)
    grid = {
        "old": replace(base, min_face_ratio=0.2, min_face_windows=1.0, downscaled_min_neighbors=2),
        "320 px only, n 5": replace(base, min_face_ratio=0.0, downscaled_min_neighbors=None),
        "640 px only, n 5": replace(
            base, max_side=640, min_face_ratio=0.0, downscaled_min_neighbors=None
        ),
    }
    for side, ratio, windows, neighbors in (
        (320, 0.2, 1.5, 2),
        (640, 0.15, 1.5, 2),
        (640, 0.1, 1.0, 2),
        (640, 0.1, 1.25, 2),
        (640, 0.1, 1.5, 2),
        (640, 0.1, 1.5, 3),
        (640, 0.1, 1.75, 2),
        (640, 0.1, 2.0, 2),
        (640, 0.1, 2.0, 3),
        (640, 0.1, 2.0, 5),
    ):
        grid[f"{side} px, ratio {ratio}, {windows} windows, n {neighbors}"] = replace(
            base,
            max_side=side,
            min_face_ratio=ratio,
            min_face_windows=windows,
            downscaled_min_neighbors=neighbors,
        )
    grid["defaults"] = defaults
    return {k: v for k, v in grid.items() if k in ("old", "defaults") or re.search(only, k)}


@dataclass
class Tally:
    """One candidate on one workload."""

    pictures: int = 0
    found: int = 0  # faces found where full resolution finds them
    extra: int = 0  # faces found where full resolution does not
    false_faces: int = 0
    seconds: float = 0.0
    #: Per face share (``FRACTIONS``, nearest): pictures where full resolution finds the face,
    #: and of those where this setting finds it too.
    by_share: dict[float, list[int]] = field(default_factory=dict)


def _hit(boxes: list[Box], face: Box | None) -> bool:
    return face is not None and any(box.iou(face) >= 0.5 for box in boxes)


def _false(boxes: list[Box], face: Box | None) -> int:
    if face is None:
        return len(boxes)
    cx, cy = face.x + face.w / 2, face.y + face.h / 2
    return sum(1 for b in boxes if not (b.x <= cx <= b.x + b.w and b.y <= cy <= b.y + b.h))


def study(
    workloads: dict[str, Callable[[], Iterator[Picture]]], params: dict[str, DetectorParams]
) -> dict[str, dict[str, Tally]]:
    """Every picture of every workload through full resolution and every candidate."""
    cascade = load_cascade(next(iter(params.values())).cascade)
    runs = {"full resolution": full_resolution(next(iter(params.values()))), **params}
    tallies: dict[str, dict[str, Tally]] = {}
    for workload, pictures in workloads.items():
        tally = tallies[workload] = {name: Tally() for name in runs}
        for picture in pictures():
            found = {}
            for name, run in runs.items():
                start_s = time.perf_counter()
                found[name] = detect(picture.gray, cascade, run)
                tally[name].seconds += time.perf_counter() - start_s
            face = picture.face
            if face is None and workload == "fer" and found["full resolution"]:
                face = found["full resolution"][0]
            full_hit = _hit(found["full resolution"], face)
            for name, boxes in found.items():
                t = tally[name]
                t.pictures += 1
                t.found += full_hit and _hit(boxes, face)
                t.extra += not full_hit and _hit(boxes, face)
                t.false_faces += _false(boxes, face)
                if full_hit and face is not None and picture.face is not None:
                    share = face.w / min(picture.gray.shape)
                    near = min(FRACTIONS, key=lambda f: abs(f - share))
                    counts = t.by_share.setdefault(near, [0, 0])
                    counts[0] += 1
                    counts[1] += _hit(boxes, face)
        print(f"{workload}: {tally['full resolution'].pictures} pictures", flush=True)
    return tallies


def report(tallies: dict[str, dict[str, Tally]]) -> None:
    """One table per workload, and the real-photo workloads pooled."""
    photo = [w for w in tallies if w not in ("fer", "non_faces")]
    pooled: dict[str, Tally] = {}
    for name in tallies[photo[0]]:
        parts = [tallies[w][name] for w in photo]
        pooled[name] = Tally(
            *(sum(getattr(t, f) for t in parts) for f in ("pictures", "found", "extra")),
            sum(t.false_faces for t in parts),
            sum(t.seconds for t in parts),
            {
                f: [sum(t.by_share.get(f, [0, 0])[i] for t in parts) for i in (0, 1)]
                for f in FRACTIONS
            },
        )
    pooled_name = "real photos pooled (" + "+".join(photo) + ")"
    for workload, tally in {**tallies, pooled_name: pooled}.items():
        full = tally["full resolution"]
        print(f"\n{workload}: {full.pictures} pictures, full resolution finds {full.found}")
        print(
            f"{'setting':40s} {'recall':>16s} {'extra':>5s} {'false':>5s} {'ms/img':>7s} speed-up"
        )
        for name, t in tally.items():
            recall = f"{t.found}/{full.found} {t.found / max(1, full.found):6.1%}"
            print(
                f"{name:40s} {recall:>16s} {t.extra:5d} {t.false_faces:5d} "
                f"{1000 * t.seconds / max(1, t.pictures):7.1f} {full.seconds / t.seconds:6.2f}"
            )
    print("\nreal photos pooled, recall by face share of the shorter side (pictures):")
    full = pooled["full resolution"].by_share
    print(f"{'setting':40s} " + " ".join(f"{f:>5.3g} ({full[f][0]:3d})" for f in FRACTIONS))
    for name, t in pooled.items():
        cells = (t.by_share[f][1] / max(1, t.by_share[f][0]) for f in FRACTIONS)
        print(f"{name:40s} " + " ".join(f"{c:>11.0%}" for c in cells))


def photo_study(args: argparse.Namespace, defaults: DetectorParams) -> None:
    """Part 1 of the module docstring."""
    bgs = backgrounds()
    fer = fer_images(args.data, args.side, args.limit) if args.data else []
    workloads: dict[str, Callable[[], Iterator[Picture]]] = {
        "photos": photos,
        "reframed": lambda: reframed(np.random.default_rng(0), bgs),
        "lfw": lambda: lfw(np.random.default_rng(1), bgs, faces=True, rounds=2),
        "non_faces": lambda: (
            p
            for bg in [
                *(p.gray for p in lfw(np.random.default_rng(2), bgs, faces=False, rounds=1)),
                *(_resize(b, w, h) for b in bgs for h, w in FRAMES),
            ]
            for p in [Picture(bg, None)]
        ),
    }
    if fer:
        workloads["fer"] = lambda: (Picture(g, None) for _, g in fer)
    report(study(workloads, candidates(defaults, args.only)))


def job_study(args: argparse.Namespace) -> None:
    """Part 2 of the module docstring."""
    work = Path(tempfile.mkdtemp(prefix="femo-faces-"))
    try:
        settings = bench_settings(work / "home", args.cores, args.overrides)
        images = []
        for i, (label, img) in enumerate(fer_images(args.data, args.side, args.limit)):
            blob = encode(img, ".jpg")
            folder = work / "images" / label
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{i}.jpg").write_bytes(blob)
            images.append(blob)
        detector, crop = params_of(settings.faces)
        full = full_resolution(detector)
        cascade = load_cascade(detector.cascade)
        grays = [g for g in (decode_gray(b) for b in images) if g is not None]

        timings = {}
        found = {}
        for name, params in (("full", full), ("downscaled", detector)):
            start_s = time.perf_counter()
            found[name] = [detect(g, cascade, params) for g in grays]
            timings[name] = time.perf_counter() - start_s
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

        start_s = time.perf_counter()
        loop_rows = sum(len(find_faces(b, DETECT, cascade, detector, crop)) for b in images)
        loop_s = time.perf_counter() - start_s

        spark = start(settings)
        ingest_folders(spark, settings, "bench", work / "images")
        start_s = time.perf_counter()
        summary = detect_faces(spark, "femo", settings.faces, ["bench"], "bench")
        job_s = time.perf_counter() - start_s
        print(f"loop (1 process): {len(images) / loop_s:7.0f} images/s ({loop_rows} rows)")
        print(
            f"job  (local[{args.cores}]):  {summary.images / job_s:7.0f} images/s "
            f"({summary.line()})"
        )
        print(f"ratio job/loop: {loop_s / job_s:.2f}x")
        spark.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", action="store_true", help="the recall study (part 1)")
    parser.add_argument("--data", type=Path)
    parser.add_argument("--only", default="", help="--photos: settings whose name matches this")
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
    if args.photos:
        settings = bench_settings(Path(tempfile.gettempdir()), args.cores, args.overrides)
        photo_study(args, params_of(settings.faces)[0])
    else:
        job_study(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
