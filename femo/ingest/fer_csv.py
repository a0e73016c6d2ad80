"""The original FER-2013 CSV (``emotion,pixels,Usage``): one line to one 48x48 PNG. Pure."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np

from femo.ingest.images import Rejection
from femo.ingest.layout import USAGE_SPLITS

SIDE: Final = 48
HEADER: Final = ("emotion", "pixels", "usage")
MAX_LABEL: Final = 6

MALFORMED_ROW: Final = "malformed_row"
BAD_PIXEL_COUNT: Final = "bad_pixel_count"
NON_NUMERIC_PIXELS: Final = "non_numeric_pixels"
PIXEL_OUT_OF_RANGE: Final = "pixel_out_of_range"
LABEL_OUT_OF_RANGE: Final = "label_out_of_range"
UNKNOWN_USAGE: Final = "unknown_usage"


@dataclass(frozen=True)
class FerRow:
    """One good CSV row: label id, split and the image as PNG bytes."""

    label: str
    emotion_id: int
    split: str
    png: bytes


def is_header(line: str) -> bool:
    """Whether ``line`` is the CSV header."""
    fields = next(csv.reader([line]), [])
    return tuple(f.strip().lower() for f in fields) == HEADER


def parse_line(line: str) -> FerRow | Rejection:
    """Parse one data line of ``fer2013.csv``; every defect is a rejection, never an exception."""
    try:
        fields = next(csv.reader([line]))
    except (csv.Error, StopIteration) as exc:
        return Rejection(MALFORMED_ROW, f"not a CSV line: {exc}")
    if len(fields) != 3:
        return Rejection(MALFORMED_ROW, f"{len(fields)} fields, expected 3 (emotion,pixels,Usage)")
    label, pixels, usage = (f.strip() for f in fields)
    if not label.isdigit() or int(label) > MAX_LABEL:
        return Rejection(LABEL_OUT_OF_RANGE, f"emotion {label!r} is not an id 0-{MAX_LABEL}")
    split = USAGE_SPLITS.get(usage.lower())
    if split is None:
        return Rejection(
            UNKNOWN_USAGE, f"Usage {usage!r} is not Training, PublicTest or " "PrivateTest"
        )
    values = pixels.split()
    if len(values) != SIDE * SIDE:
        return Rejection(BAD_PIXEL_COUNT, f"{len(values)} pixel values, expected {SIDE * SIDE}")
    try:
        gray = np.array([int(v) for v in values], dtype=np.int64)
    except ValueError:
        bad = next(v for v in values if not v.lstrip("-").isdigit())
        return Rejection(NON_NUMERIC_PIXELS, f"pixel value {bad[:20]!r} is not an integer")
    if gray.min() < 0 or gray.max() > 255:
        return Rejection(PIXEL_OUT_OF_RANGE, "pixel values must lie in 0-255")
    ok, png = cv2.imencode(".png", gray.astype(np.uint8).reshape(SIDE, SIDE))
    if not ok:  # pragma: no cover - encoding a valid 48x48 uint8 array does not fail
        return Rejection(MALFORMED_ROW, "could not encode the pixels as PNG")
    return FerRow(label=label, emotion_id=int(label), split=split, png=png.tobytes())
