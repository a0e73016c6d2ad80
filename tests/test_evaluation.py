"""femo.ml.evaluation: figures worked out by hand on a small confusion matrix."""

from __future__ import annotations

import numpy as np
import pytest

from femo.ml.evaluation import confusion_png, evaluate, metric_rows

CLASSES = [0, 3, 6]  # angry, happy, neutral as class indices 0, 1, 2
# true 0: 3 right, 1 taken for 1; true 1: 4 right; true 2: 1 right, 1 taken for 0, 2 for 1
TRUTH = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
GUESS = np.array([0, 0, 0, 1, 1, 1, 1, 1, 2, 0, 1, 1])


def test_accuracy_precision_recall_f1_and_confusion() -> None:
    result = evaluate(TRUTH, GUESS, CLASSES)
    assert result.accuracy == pytest.approx(8 / 12)
    assert result.confusion == ((3, 1, 0), (0, 4, 0), (1, 2, 1))
    assert result.precision == pytest.approx((3 / 4, 4 / 7, 1.0))
    assert result.recall == pytest.approx((3 / 4, 1.0, 1 / 4))
    f1 = (0.75, 2 * (4 / 7) / (1 + 4 / 7), 2 * 0.25 / 1.25)
    assert result.f1 == pytest.approx(f1)
    assert result.macro_f1 == pytest.approx(sum(f1) / 3)
    assert result.support == (4, 4, 4)


def test_a_class_never_predicted_or_absent_scores_zero_not_nan() -> None:
    result = evaluate(np.array([0, 0, 1]), np.array([0, 0, 0]), [4, 5, 6])
    assert result.precision == (pytest.approx(2 / 3), 0.0, 0.0)
    assert result.recall == (1.0, 0.0, 0.0)
    assert result.support == (2, 1, 0)
    assert not np.isnan(result.macro_f1)


def test_rows_for_run_metrics_carry_emotion_ids() -> None:
    rows = metric_rows(evaluate(TRUTH, GUESS, CLASSES, split="val"))
    assert {r["split"] for r in rows} == {"val"}
    cells = {
        (r["label_id"], r["predicted_id"]): r["value"] for r in rows if r["metric"] == "confusion"
    }
    assert cells[(6, 3)] == 2.0 and cells[(0, 0)] == 3.0 and len(cells) == 9
    overall = {r["metric"]: r["value"] for r in rows if r["label_id"] is None}
    assert overall == {
        "accuracy": pytest.approx(8 / 12),
        "macro_f1": pytest.approx(evaluate(TRUTH, GUESS, CLASSES).macro_f1),
        "examples": 12.0,
    }
    recall = {r["label_id"]: r["value"] for r in rows if r["metric"] == "recall"}
    assert recall == pytest.approx({0: 0.75, 3: 1.0, 6: 0.25})


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="no test examples"):
        evaluate(np.array([], int), np.array([], int), CLASSES)
    with pytest.raises(ValueError, match="must lie in 0..2"):
        evaluate(np.array([0, 3]), np.array([0, 1]), CLASSES)
    with pytest.raises(ValueError, match="equal 1-d arrays"):
        evaluate(np.array([0, 1]), np.array([0]), CLASSES)


def test_the_confusion_png_is_a_picture() -> None:
    png = confusion_png(evaluate(TRUTH, GUESS, CLASSES), ["angry", "happy", "neutral"])
    import cv2

    picture = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert picture is not None and picture.shape[0] > 200 and picture.shape[1] > 200
