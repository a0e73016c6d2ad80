"""femo.ml.selection: set ids, perceptual hashes, class weights, parameter checks. No Spark."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest
from skimage import data

from femo.ingest.sample import encode
from femo.ml.selection import (
    SelectionParams,
    TrainingSetError,
    bucket_expr,
    check_classes,
    class_weights,
    perceptual_hash,
    perceptual_hashes,
    set_id,
)

VERSIONS = {"emotions": 0, "faces": 4, "images": 7}


def face(side: int = 48) -> np.ndarray:
    gray = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)[40:200, 150:310]
    return cv2.resize(gray, (side, side), interpolation=cv2.INTER_AREA)


def test_same_parameters_and_versions_same_id() -> None:
    first = set_id(SelectionParams(per_emotion=200, seed=3), VERSIONS)
    again = set_id(SelectionParams(per_emotion=200, seed=3), dict(reversed(VERSIONS.items())))
    assert first == again
    assert len(first) == 32 and int(first, 16) >= 0


@pytest.mark.parametrize(
    ("params", "versions"),
    [
        (SelectionParams(per_emotion=200, seed=4), VERSIONS),
        (SelectionParams(per_emotion=201, seed=3), VERSIONS),
        (SelectionParams(per_emotion=200, seed=3, val_fraction=0.2), VERSIONS),
        (SelectionParams(per_emotion=200, seed=3, sources=("fer2013",)), VERSIONS),
        (SelectionParams(per_emotion=200, seed=3), {**VERSIONS, "faces": 5}),
    ],
)
def test_another_parameter_or_version_another_id(
    params: SelectionParams, versions: dict[str, int]
) -> None:
    assert set_id(params, versions) != set_id(SelectionParams(per_emotion=200, seed=3), VERSIONS)


def test_params_survive_their_json() -> None:
    params = SelectionParams(per_emotion=5, fraction=0.5, seed=2, sources=("a", "b"))
    assert SelectionParams.from_json(params.as_json()) == params


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"per_emotion": 0}, "--per-emotion must be at least 1"),
        ({"fraction": 0.0}, r"--fraction must be in \(0, 1\]"),
        ({"fraction": 1.5}, r"--fraction must be in \(0, 1\]"),
        ({"val_fraction": 1.0}, r"val_fraction must be in \[0, 1\)"),
        ({"test_fraction": -0.1}, r"test_fraction must be in \[0, 1\)"),
    ],
)
def test_bad_parameters_are_named(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(TrainingSetError, match=message):
        SelectionParams(**kwargs)  # type: ignore[arg-type]


def test_perceptual_hash_keeps_copies_that_differ_in_bytes() -> None:
    pixels = face()
    png = encode(pixels, ".png")
    original = perceptual_hash(png)
    brighter = np.clip(pixels.astype(np.int16) + 3, 0, 255).astype(np.uint8)
    assert perceptual_hash(encode(brighter, ".png")) == original
    assert perceptual_hash(encode(pixels, ".jpg")) == original  # re-encoded, lossy
    assert perceptual_hash(encode(face(96), ".png")) == original  # resized
    assert encode(brighter, ".png") != png


def test_perceptual_hash_tells_faces_apart() -> None:
    rng = np.random.default_rng(1)
    hashes = {perceptual_hash(encode(face(), ".png"))}
    hashes |= {
        perceptual_hash(encode(rng.integers(0, 256, (48, 48), dtype=np.uint8), ".png"))
        for _ in range(50)
    }
    hashes.add(perceptual_hash(encode(np.fliplr(face()), ".png")))
    assert len(hashes) == 52
    assert all(-(2**63) <= h < 2**63 for h in hashes if h is not None)


def test_flat_missing_and_undecodable_crops() -> None:
    assert perceptual_hash(encode(np.full((48, 48), 128, np.uint8), ".png")) == 0
    hashes = perceptual_hashes(pd.Series([None, b"", b"not a png", encode(face(), ".png")]))
    assert hashes.isna().tolist() == [True, True, True, False]
    assert str(hashes.dtype) == "Int64"


def test_class_weights_balance_the_loss() -> None:
    weights = class_weights({0: 3, 3: 9, 4: 6, 1: 0})
    assert weights == pytest.approx({0: 2.0, 3: 2 / 3, 4: 1.0})
    assert sum(weights[c] * n for c, n in {0: 3, 3: 9, 4: 6}.items()) == pytest.approx(18)


def test_classes_of_a_set() -> None:
    assert check_classes({"train": {3: 2, 0: 1}, "test": {0: 1}}) == [0, 3]
    with pytest.raises(TrainingSetError, match="no rows"):
        check_classes({})
    with pytest.raises(TrainingSetError, match="no train rows"):
        check_classes({"test": {0: 2}})
    with pytest.raises(TrainingSetError, match="one class only"):
        check_classes({"train": {0: 2}})
    with pytest.raises(TrainingSetError, match=r"\[5\] occur in test but have no train"):
        check_classes({"train": {0: 2, 3: 1}, "test": {5: 1, 0: 1}})


def test_bucket_salt_cannot_inject_sql() -> None:
    assert "sha2(concat('val:', image_id), 256)" in bucket_expr("image_id", "val")
    with pytest.raises(ValueError, match="alphanumeric"):
        bucket_expr("image_id", "x'); DROP TABLE faces; --")
