"""A small generated image collection, for the demo and the tests (no download needed).

``python -m femo.ingest.sample OUT`` writes ``OUT/images`` in the Kaggle FER-2013 folder layout
(48x48 grayscale JPEGs, a few 224 px colour PNGs) with one file of every kind of bad input
beside them, ``OUT/fer2013.csv`` in the original CSV layout with some malformed rows, and
``OUT/everyday_emotions.csv`` shaped like the study "Emotions in everyday life" (21 columns,
original spellings) with the dirt such a file has. The pictures are synthetic (drawn ellipses
and noise); everything is deterministic for a seed.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import cv2
import numpy as np

from femo.ingest.fer_csv import SIDE

#: FER-2013 folder names, in id order.
FER_FOLDERS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def face_like(rng: np.random.Generator, side: int, color: bool) -> np.ndarray:  # type: ignore[type-arg]
    """A drawn face-ish picture: background gradient, an oval, eyes and a mouth, some noise."""
    y, x = np.mgrid[0:side, 0:side]
    base = (x * rng.uniform(0.5, 2.0) + y * rng.uniform(0.5, 2.0)) % 256
    img = np.stack([base] * 3, axis=-1).astype(np.uint8)
    center = (side // 2 + int(rng.integers(-2, 3)), side // 2 + int(rng.integers(-2, 3)))
    skin = tuple(int(v) for v in rng.integers(120, 230, 3)) if color else (180, 180, 180)
    cv2.ellipse(img, center, (side // 3, side * 2 // 5), 0, 0, 360, skin, -1)
    for dx in (-side // 8, side // 8):
        cv2.circle(
            img, (center[0] + dx, center[1] - side // 10), max(1, side // 24), (30, 30, 30), -1
        )
    cv2.ellipse(
        img,
        (center[0], center[1] + side // 6),
        (side // 8, side // 20),
        0,
        0,
        180,
        (40, 40, 40),
        max(1, side // 48),
    )
    noise = rng.normal(0, 6, img.shape)
    img = np.clip(img + noise, 0, 255).astype(np.uint8)
    return img if color else np.asarray(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))


def encode(img: np.ndarray, ext: str) -> bytes:  # type: ignore[type-arg]
    """Image bytes in the format of ``ext`` (".jpg", ".png", ...)."""
    ok, buf = cv2.imencode(ext, img)
    if not ok:  # pragma: no cover - encoding a uint8 array does not fail
        raise ValueError(f"could not encode {ext}")
    return bytes(buf.tobytes())


@dataclass(frozen=True)
class Sample:
    """Where the sample is and what it holds."""

    images: Path
    csv: Path
    good_files: int
    bad_files: dict[str, str]  # relative path -> the reason femo must give
    good_rows: int
    bad_rows: int


def write_images(root: Path, per_class: int = 4, seed: int = 13) -> tuple[int, dict[str, str]]:
    """The folder collection; returns the number of good files and the bad ones with reasons."""
    rng = np.random.default_rng(seed)
    good = 0
    for split in ("train", "test"):
        for name in FER_FOLDERS:
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            count = per_class if split == "train" else max(1, per_class // 2)
            for i in range(count):
                (folder / f"{split}_{name}_{i}.jpg").write_bytes(
                    encode(face_like(rng, SIDE, color=False), ".jpg")
                )
                good += 1
    photos = root / "train" / "happy"
    for i in range(2):  # larger colour photos, PNG
        (photos / f"photo_{i}.png").write_bytes(encode(face_like(rng, 224, color=True), ".png"))
        good += 1
    # A colour-encoded picture whose three channels are equal: grayscale by its pixels.
    gray3 = cv2.cvtColor(face_like(rng, 64, color=False), cv2.COLOR_GRAY2BGR)
    (photos / "gray_in_bgr.png").write_bytes(encode(gray3, ".png"))
    # A PNG named .jpg: accepted, format sniffed from the bytes.
    (photos / "really_a_png.jpg").write_bytes(encode(face_like(rng, SIDE, color=False), ".png"))
    # The same bytes under a second label, as FER-2013 has them: a label conflict to find.
    twin = (root / "train" / "happy" / "train_happy_0.jpg").read_bytes()
    (root / "train" / "sad" / "twin_of_train_happy_0.jpg").write_bytes(twin)
    good += 3

    jpeg = encode(face_like(rng, SIDE, color=False), ".jpg")
    png = encode(face_like(rng, 96, color=True), ".png")
    bad = {
        "train/sad/empty.jpg": (b"", "empty_file"),
        "train/sad/truncated.jpg": (jpeg[: len(jpeg) // 2], "truncated"),
        "train/sad/truncated.png": (png[: len(png) // 2], "truncated"),
        "train/fear/random_bytes.jpg": (rng.bytes(2048), "not_an_image"),
        "train/fear/notes.txt": (b"label me later\n", "not_an_image"),
        "train/fear/one_pixel.png": (encode(np.zeros((1, 1), np.uint8), ".png"), "too_small"),
        # 48 megapixels (over the default 40 MP guard) of zeros: a tiny file.
        "train/surprise/huge.png": (
            encode(np.zeros((6000, 8000), np.uint8), ".png"),
            "too_many_pixels",
        ),
        "train/bored/unknown_label.jpg": (jpeg, "unknown_label"),
        "misc/happy/unknown_split.jpg": (jpeg, "unknown_split"),
        "loose_at_root.jpg": (jpeg, "no_label"),
    }
    for relative, (data, _) in bad.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return good, {relative: reason for relative, (_, reason) in bad.items()}


def write_fer_csv(path: Path, rows: int = 20, seed: int = 7) -> tuple[int, int]:
    """A small ``fer2013.csv`` with ``rows`` good rows and one of each malformed kind."""
    rng = np.random.default_rng(seed)
    usages = ("Training", "PublicTest", "PrivateTest")
    lines = ["emotion,pixels,Usage"]
    for i in range(rows):
        pixels = " ".join(str(v) for v in face_like(rng, SIDE, color=False).flatten())
        lines.append(f'{i % 7},"{pixels}",{usages[i % 3]}')
    good_pixels = " ".join(["128"] * (SIDE * SIDE))
    lines += [
        f'3,"{" ".join(["128"] * 100)}",Training',  # bad_pixel_count
        f'3,"{good_pixels[:-3]}abc",Training',  # non_numeric_pixels
        f'9,"{good_pixels}",Training',  # label_out_of_range
        f'2,"{good_pixels}",Validation',  # unknown_usage
        "4,only two fields",  # malformed_row
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return rows, 5


#: The header of the study's CSV exactly as published, misspellings (Ofense, Embarassment)
#: included. Written out here, not taken from femo.sources.everyday, so tests check one against
#: the other.
EVERYDAY_HEADER: Final = (
    "id", "Hours", "Day",
    "Pride", "Love", "Hope", "Gratitude", "Joy", "Satisfaction", "Awe", "Amusement", "Alertness",
    "Anxiety", "Disdain", "Ofense", "Guilt", "Disgust", "Fear", "Embarassment", "Sadness", "Anger",
)  # fmt: skip
_WEEKDAY_NAMES: Final = (
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
)  # fmt: skip
#: How often each emotion (header order) is flagged in generated rows: made up, everyday-like.
_EVERYDAY_RATES: Final = (
    0.10, 0.25, 0.20, 0.12, 0.30, 0.22, 0.04, 0.15, 0.20,
    0.18, 0.04, 0.03, 0.05, 0.03, 0.04, 0.03, 0.07, 0.08,
)  # fmt: skip
#: Relative number of reports in each hour 0-23: few at night.
_HOUR_WEIGHTS: Final = (
    1,
    1,
    1,
    1,
    1,
    2,
    4,
    7,
    9,
    10,
    10,
    10,
    10,
    10,
    10,
    10,
    10,
    10,
    10,
    10,
    9,
    8,
    6,
    3,
)

#: The kinds of dirt write_everyday_csv puts into rows, with the reason femo must give each.
EVERYDAY_DIRT: Final[dict[str, str]] = {
    "blank_flag": "incomplete_row",  # a flag is ' ', as in the study's file
    "empty_hour": "incomplete_row",  # an empty cell
    "na_day": "incomplete_row",  # NA, as R writes a missing value
    "short_row": "malformed_row",  # the last field is missing
    "long_row": "malformed_row",  # one field too many
    "open_quote": "malformed_row",  # a quote that never closes
    "flag_two": "bad_value",  # a flag that is not 0/1
    "flag_text": "bad_value",
    "hour_25": "bad_value",
    "bad_weekday": "bad_value",
    "day_zero": "bad_value",  # weekday numbers are 1-7
}


@dataclass(frozen=True)
class EverydaySample:
    """A generated everyday-emotions CSV and what a correct cleaner must make of it."""

    path: Path
    rows: int  # data rows written (the header and blank lines aside)
    kept: int
    dropped: dict[str, int]  # reason -> rows
    blank_lines: int
    bad_lines: dict[int, str]  # line number (1-based, the header is 1) -> reason
    felt: dict[str, int]  # published column name -> kept rows flagging it
    weekdays: dict[str, int]  # weekday name -> kept rows
    hours: dict[int, int]  # hour -> kept rows


def _everyday_dirt(kind: str, fields: list[str], rng: np.random.Generator) -> list[str]:
    """``fields`` (one good row) spoilt the way ``kind`` says."""
    flag = 3 + int(rng.integers(0, 18))
    spoilt = list(fields)
    changes = {
        "blank_flag": (flag, " "),
        "empty_hour": (1, ""),
        "na_day": (2, "NA"),
        "open_quote": (2, '"' + fields[2]),
        "flag_two": (flag, "2"),
        "flag_text": (flag, "yes"),
        "hour_25": (1, "25"),
        "bad_weekday": (2, "Funday"),
        "day_zero": (2, "0"),
    }
    if kind == "short_row":
        return spoilt[:-1]
    if kind == "long_row":
        return [*spoilt, "0"]
    index, value = changes[kind]
    spoilt[index] = value
    return spoilt


def write_everyday_csv(
    path: Path, rows: int = 300, seed: int = 11, dirt_every: int = 23, blank_every: int = 101
) -> EverydaySample:
    """An ``everyday_emotions.csv`` with ``rows`` data rows in the study's 21 columns.

    Good rows write Day in every accepted style (``Monday``, ``monday``, ``MONDAY``, ``Mon``,
    ``1`` = Monday) and every seventh row fully quoted. Every ``dirt_every``-th row carries one
    kind of :data:`EVERYDAY_DIRT` in turn; a blank line (empty or spaces) comes before every
    ``blank_every``-th row. The returned :class:`EverydaySample` is the generator's own record
    of what it wrote.
    """
    rng = np.random.default_rng(seed)
    hour_p = np.array(_HOUR_WEIGHTS, dtype=float) / sum(_HOUR_WEIGHTS)
    kinds = list(EVERYDAY_DIRT)
    lines = [",".join(EVERYDAY_HEADER)]
    dropped: Counter[str] = Counter()
    bad_lines: dict[int, str] = {}
    felt: Counter[str] = Counter()
    weekdays: Counter[str] = Counter()
    hours: Counter[int] = Counter()
    blank_lines = 0
    for i in range(rows):
        if i and i % blank_every == 0:
            lines.append("" if blank_lines % 2 == 0 else "   ")
            blank_lines += 1
        hour = int(rng.choice(24, p=hour_p))
        weekday = int(rng.integers(0, 7))
        name = _WEEKDAY_NAMES[weekday]
        day = (name, name.lower(), name.upper(), name[:3], str(weekday + 1))[
            int(rng.integers(0, 5))
        ]
        flags = [int(rng.random() < rate) for rate in _EVERYDAY_RATES]
        fields = [str(1 + i // 6), str(hour), day, *map(str, flags)]
        if i % dirt_every == dirt_every // 2:
            kind = kinds[(i // dirt_every) % len(kinds)]
            lines.append(",".join(_everyday_dirt(kind, fields, rng)))
            dropped[EVERYDAY_DIRT[kind]] += 1
            bad_lines[len(lines)] = EVERYDAY_DIRT[kind]
            continue
        quoted = i % 7 == 3
        lines.append(",".join(f'"{f}"' if quoted else f for f in fields))
        felt.update(c for c, f in zip(EVERYDAY_HEADER[3:], flags, strict=True) if f)
        weekdays[name] += 1
        hours[hour] += 1
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return EverydaySample(
        path=path,
        rows=rows,
        kept=rows - sum(dropped.values()),
        dropped=dict(dropped),
        blank_lines=blank_lines,
        bad_lines=bad_lines,
        felt=dict(felt),
        weekdays=dict(weekdays),
        hours=dict(hours),
    )


def write_sample(out: Path, per_class: int = 4) -> Sample:
    """Write the whole sample under ``out``."""
    images = out / "images"
    good, bad = write_images(images, per_class)
    csv = out / "fer2013.csv"
    good_rows, bad_rows = write_fer_csv(csv)
    return Sample(images, csv, good, bad, good_rows, bad_rows)


def main(argv: list[str] | None = None) -> int:
    """``python -m femo.ingest.sample OUT [--per-class N]``"""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--per-class", type=int, default=4)
    parser.add_argument(
        "--everyday-rows", type=int, default=300, help="data rows of everyday_emotions.csv"
    )
    args = parser.parse_args(argv)
    sample = write_sample(args.out, args.per_class)
    everyday = write_everyday_csv(args.out / "everyday_emotions.csv", args.everyday_rows)
    print(
        f"sample: {sample.good_files} good and {len(sample.bad_files)} bad files under "
        f"{sample.images}; {sample.good_rows} good and {sample.bad_rows} bad rows in "
        f"{sample.csv}; {everyday.kept} good and {everyday.rows - everyday.kept} bad rows in "
        f"{everyday.path}",
        file=sys.stdout,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
