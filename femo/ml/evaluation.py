"""Evaluating a classifier on a split: pure numpy over true and predicted class indices.

:func:`evaluate` gives accuracy, macro-F1, per-class precision, recall, F1 and support, and the
confusion matrix; :func:`metric_rows` turns that into the long rows of ``femo.run_metrics``;
:func:`confusion_png` draws the matrix for MLflow. Classes are positions in the model's output;
``classes`` maps them back to emotion ids wherever a result leaves this module.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Evaluation:
    """How a model did on one split. Per-class lists are in class-index order."""

    split: str
    classes: tuple[int, ...]
    accuracy: float
    macro_f1: float
    precision: tuple[float, ...]
    recall: tuple[float, ...]
    f1: tuple[float, ...]
    support: tuple[int, ...]
    #: ``confusion[t][p]``: examples of true class ``t`` predicted as ``p``.
    confusion: tuple[tuple[int, ...], ...]

    @property
    def examples(self) -> int:
        return int(sum(self.support))

    def as_dict(self, names: Sequence[str] | None = None) -> dict[str, Any]:
        """A JSON-ready summary; per-class figures keyed by ``names`` (default: emotion ids)."""
        keys = list(names) if names is not None else [str(c) for c in self.classes]
        return {
            "split": self.split,
            "examples": self.examples,
            "accuracy": round(self.accuracy, 4),
            "macro_f1": round(self.macro_f1, 4),
            "per_class": {
                k: {
                    "precision": round(p, 4),
                    "recall": round(r, 4),
                    "f1": round(f, 4),
                    "support": s,
                }
                for k, p, r, f, s in zip(
                    keys, self.precision, self.recall, self.f1, self.support, strict=True
                )
            },
            "confusion": [list(row) for row in self.confusion],
        }


def evaluate(
    truth: np.ndarray[Any, Any],
    guess: np.ndarray[Any, Any],
    classes: Sequence[int],
    split: str = "test",
) -> Evaluation:
    """Score predicted class indices ``guess`` against ``truth`` (both in ``0..len(classes)``).

    Precision of a class never predicted, and recall of a class absent from ``truth``, are 0;
    macro-F1 is the unweighted mean of the per-class F1.
    """
    n = len(classes)
    truth = np.asarray(truth, dtype=np.int64)
    guess = np.asarray(guess, dtype=np.int64)
    if truth.shape != guess.shape or truth.ndim != 1:
        raise ValueError(f"truth {truth.shape} and guess {guess.shape} must be equal 1-d arrays")
    if truth.size == 0:
        raise ValueError(f"no {split} examples to evaluate")
    if truth.min() < 0 or truth.max() >= n or guess.min() < 0 or guess.max() >= n:
        raise ValueError(f"class indices must lie in 0..{n - 1}")
    confusion = np.zeros((n, n), dtype=np.int64)
    np.add.at(confusion, (truth, guess), 1)
    hits = np.diag(confusion).astype(float)
    predicted = confusion.sum(axis=0).astype(float)
    actual = confusion.sum(axis=1).astype(float)
    precision = np.divide(hits, predicted, out=np.zeros(n), where=predicted > 0)
    recall = np.divide(hits, actual, out=np.zeros(n), where=actual > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros(n), where=both > 0)
    return Evaluation(
        split=split,
        classes=tuple(int(c) for c in classes),
        accuracy=float(hits.sum() / truth.size),
        macro_f1=float(f1.mean()),
        precision=tuple(float(x) for x in precision),
        recall=tuple(float(x) for x in recall),
        f1=tuple(float(x) for x in f1),
        support=tuple(int(x) for x in actual),
        confusion=tuple(tuple(int(x) for x in row) for row in confusion),
    )


def metric_rows(result: Evaluation) -> list[dict[str, Any]]:
    """``result`` as rows of ``femo.run_metrics`` (without the run's columns): one per overall
    metric (``label_id`` and ``predicted_id`` NULL), one per class and per-class metric
    (``label_id`` the emotion id), one per cell of the confusion matrix (``metric`` =
    ``confusion``, ``label_id`` true, ``predicted_id`` predicted, ``value`` the count)."""
    rows: list[dict[str, Any]] = [
        {"metric": name, "label_id": None, "predicted_id": None, "value": value}
        for name, value in (
            ("accuracy", result.accuracy),
            ("macro_f1", result.macro_f1),
            ("examples", float(result.examples)),
        )
    ]
    for i, emotion in enumerate(result.classes):
        for name, values in (
            ("precision", result.precision),
            ("recall", result.recall),
            ("f1", result.f1),
            ("support", result.support),
        ):
            rows.append(
                {"metric": name, "label_id": emotion, "predicted_id": None, "value": values[i]}
            )
        for j, predicted in enumerate(result.classes):
            rows.append(
                {
                    "metric": "confusion",
                    "label_id": emotion,
                    "predicted_id": predicted,
                    "value": float(result.confusion[i][j]),
                }
            )
    for row in rows:
        row["split"] = result.split
        row["value"] = float(row["value"])
    return rows


def confusion_png(result: Evaluation, names: Sequence[str], title: str = "") -> bytes:
    """The confusion matrix as a PNG: rows true, columns predicted, each row as shares of its
    true class (the counts in the cells)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.array(result.confusion, dtype=float)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = 1.0 + 0.8 * len(names)
    figure, axes = plt.subplots(figsize=(size + 1.5, size))
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(len(names)), names, rotation=45, ha="right")
    axes.set_yticks(range(len(names)), names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    for i in range(len(names)):
        for j in range(len(names)):
            axes.text(
                j,
                i,
                f"{int(counts[i, j])}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if shares[i, j] > 0.5 else "black",
            )
    axes.set_title(title or f"{result.split}: accuracy {result.accuracy:.1%}")
    figure.colorbar(image, ax=axes, fraction=0.046, label="share of the true class")
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=110)
    plt.close(figure)
    return out.getvalue()
