"""Labels and splits from paths; labels to emotion ids; FER-2013 CSV lines. No Spark."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from femo.ingest.fer_csv import FerRow, is_header, parse_line
from femo.ingest.images import Rejection
from femo.ingest.layout import LabelMap, Placement, place, relative_path

LABELS = LabelMap({0: ["angry", "anger"], 3: ["happy", "happiness", "joy"], 7: ["contempt"]})


@pytest.mark.parametrize(
    ("path", "root", "relative"),
    [
        ("file:/data/fer/train/happy/a.jpg", "/data/fer", "train/happy/a.jpg"),
        ("file:///data/fer/happy/a.jpg", "/data/fer/", "happy/a.jpg"),
        ("s3a://bucket/raw/happy/a.jpg", "s3a://bucket/raw", "happy/a.jpg"),
        ("file:/data/fer.csv", "/data/fer.csv", "fer.csv"),
    ],
)
def test_relative_path(path: str, root: str, relative: str) -> None:
    assert relative_path(path, root) == relative


@pytest.mark.parametrize(
    ("relative", "split_from", "expected"),
    [
        ("happy/a.jpg", "path", Placement("happy", "unsplit")),
        ("train/happy/a.jpg", "path", Placement("happy", "train")),
        ("Test/Angry/a.jpg", "path", Placement("Angry", "test")),
        ("validation/joy/a.jpg", "path", Placement("joy", "val")),
        ("train/happy/a.jpg", "none", Placement("happy", "unsplit")),
    ],
)
def test_place(relative: str, split_from: str, expected: Placement) -> None:
    assert place(relative, split_from) == expected


@pytest.mark.parametrize(
    ("relative", "reason"),
    [
        ("a.jpg", "no_label"),
        ("misc/happy/a.jpg", "unknown_split"),
        ("train/x/happy/a.jpg", "unexpected_layout"),
    ],
)
def test_place_rejects(relative: str, reason: str) -> None:
    result = place(relative, "path")
    assert isinstance(result, Rejection) and result.reason == reason


def test_labels_resolve_case_insensitively_and_never_guess() -> None:
    assert LABELS.resolve("HAPPINESS") == 3
    assert LABELS.resolve(" Anger ") == 0
    assert LABELS.resolve("contempt") == 7
    unknown = LABELS.resolve("happyish")
    assert isinstance(unknown, Rejection) and unknown.reason == "unknown_label"
    assert LabelMap.from_names(LABELS.as_dict()).as_dict() == LABELS.as_dict()


def pixels(values: list[int]) -> str:
    return " ".join(str(v) for v in values)


def test_fer_csv_line_becomes_a_png() -> None:
    values = [(i * 7) % 256 for i in range(48 * 48)]
    row = parse_line(f'3,"{pixels(values)}",PublicTest')
    assert isinstance(row, FerRow)
    assert (row.label, row.emotion_id, row.split) == ("3", 3, "test")
    decoded = cv2.imdecode(np.frombuffer(row.png, np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded.shape == (48, 48)
    assert decoded.flatten().tolist() == values  # lossless


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('3,"1 2 3",Training', "bad_pixel_count"),
        (f'3,"{pixels([1] * 2303)} x",Training', "non_numeric_pixels"),
        (f'3,"{pixels([1] * 2303)} 256",Training', "pixel_out_of_range"),
        (f'7,"{pixels([1] * 2304)}",Training', "label_out_of_range"),
        (f'-1,"{pixels([1] * 2304)}",Training', "label_out_of_range"),
        (f'x,"{pixels([1] * 2304)}",Training', "label_out_of_range"),
        (f'3,"{pixels([1] * 2304)}",Holdout', "unknown_usage"),
        ("3,two fields", "malformed_row"),
        ("", "malformed_row"),
    ],
)
def test_fer_csv_defects(line: str, reason: str) -> None:
    result = parse_line(line)
    assert isinstance(result, Rejection) and result.reason == reason


def test_fer_csv_header() -> None:
    assert is_header("emotion,pixels,Usage")
    assert not is_header('0,"1 2",Training')
