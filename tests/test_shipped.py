"""The model that ships with femo (femo/ml/models/): loads, predicts, and its card's figures are
real (on the FER-2013 test images where FEMO_DATA_DIR has them)."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from femo.ml.shipped import MAX_BYTES, MODELS_DIR, card, load
from femo.platform.errors import MissingPrerequisiteError

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

#: FER-2013's folder names -> emotion ids.
FER_IDS = {"angry": 0, "disgust": 1, "fear": 2, "happy": 3, "sad": 4, "surprise": 5, "neutral": 6}


def test_the_shipped_model_is_small_described_and_predicts() -> None:
    shipped = load()
    assert shipped.model_path.stat().st_size <= MAX_BYTES
    assert shipped.classes == list(range(7))
    assert shipped.class_names == list(FER_IDS)
    info = shipped.info
    assert info["test"]["examples"] == 7178
    assert info["test"]["accuracy"] > 0.61  # the original project's best CNN
    text = (MODELS_DIR / f"{shipped.name}.md").read_text()
    assert text == card(info)
    assert f"{info['test']['accuracy']:.2%}" in text and info["set_id"] in text
    model = shipped.keras_model()
    assert model.input_shape == (None, 48, 48, 1)
    probabilities = model.predict(np.full((3, 48, 48, 1), 120.0, np.float32), verbose=0)
    assert probabilities.shape == (3, 7)
    assert probabilities.sum(axis=1) == pytest.approx([1.0] * 3, abs=1e-3)


def test_a_missing_model_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(MissingPrerequisiteError, match=f"no shipped model 'x' in {tmp_path}"):
        load("x", tmp_path)


@pytest.mark.realdata
def test_its_test_accuracy_is_what_the_card_says() -> None:
    data = os.environ.get("FEMO_DATA_DIR")
    root = Path(data or "/nonexistent") / "fer2013" / "test"
    if not root.is_dir():
        pytest.skip("FEMO_DATA_DIR has no fer2013/test")
    shipped = load()
    pixels, labels = [], []
    for emotion, emotion_id in FER_IDS.items():
        for path in sorted((root / emotion).glob("*.jpg")):
            pixels.append(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))
            labels.append(shipped.classes.index(emotion_id))
    assert len(labels) == 7178
    x = np.stack(pixels).astype(np.float32)[..., None]
    guess = shipped.keras_model().predict(x, batch_size=512, verbose=0).argmax(axis=1)
    accuracy = float(np.mean(guess == np.array(labels)))
    assert accuracy == pytest.approx(shipped.info["test"]["accuracy"], abs=0.005)
