"""How a training set is chosen, pure: its parameters, its id, perceptual hashes of crops, class
weights. The Spark side is :mod:`femo.ml.training_set`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final

import cv2
import numpy as np
import pandas as pd

from femo.ingest.layout import TEST, TRAIN, VAL
from femo.platform.errors import FemoError

#: Bumped when the selection rules change, so an old set id never names a set built otherwise.
SELECTION_VERSION: Final = 1

#: Why a candidate face is not in the set (``training_sets.excluded``).
IN_TEST: Final = "in_test"  # its bytes are a test image's
SIMILAR_TO_TEST: Final = "similar_to_test"  # its perceptual hash is a test image's
LABEL_CONFLICT: Final = "label_conflict"  # the same picture under two labels in train/val
DUPLICATE: Final = "duplicate"  # another copy of a picture already in train/val
MISSING_CROP: Final = "missing_crop"  # a face row without a crop, or one that does not decode
NOT_SAMPLED: Final = "not_sampled"  # left out by --per-emotion or --fraction


class TrainingSetError(FemoError):
    """A training set that cannot be built as asked (no rows, a class without examples, ...)."""


@dataclass(frozen=True)
class SelectionParams:
    """What ``jobs/build_training_set.py`` was asked for.

    Attributes:
        per_emotion: at most this many faces per emotion in each split (None: all).
        fraction: keep this share of each split, stratified by emotion (None: all).
        seed: salt of the sampling hash: another seed, another sample.
        val_fraction: share of the train split carved out as validation.
        test_fraction: share of images without a split of their own (``unsplit``) held out
            as test; images of a dataset with a test split keep theirs.
        sources: only faces of these sources (empty: all).
    """

    per_emotion: int | None = None
    fraction: float | None = None
    seed: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.15
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.per_emotion is not None and self.per_emotion < 1:
            raise TrainingSetError(f"--per-emotion must be at least 1, got {self.per_emotion}")
        if self.fraction is not None and not 0 < self.fraction <= 1:
            raise TrainingSetError(f"--fraction must be in (0, 1], got {self.fraction}")
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise TrainingSetError(f"{name} must be in [0, 1), got {value}")

    def as_json(self) -> str:
        """The parameters as canonical JSON (``training_sets.params``)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SelectionParams:
        """The parameters :meth:`as_json` wrote."""
        values: dict[str, Any] = json.loads(text)
        values["sources"] = tuple(values.get("sources", ()))
        return cls(**values)


def set_id(params: SelectionParams, table_versions: Mapping[str, int]) -> str:
    """The id of the set ``params`` select from the tables at ``table_versions``: a hash of
    both and of :data:`SELECTION_VERSION`, so building from the same versions gives the same
    id, and anything else another."""
    canonical = json.dumps(
        {
            "selection": SELECTION_VERSION,
            "params": json.loads(params.as_json()),
            "tables": dict(sorted(table_versions.items())),
        },
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def perceptual_hash(png: bytes | None) -> int | None:
    """64-bit DCT perceptual hash of an image (None for missing or undecodable bytes).

    The grayscale picture shrunk to 32x32, its 2-D DCT, the 8x8 lowest frequencies against
    their median (the DC term left out of the median): re-encoding, small brightness and
    contrast changes and resizing keep the hash, so copies of one face that differ in their
    bytes still meet. A flat picture hashes to 0. Returned as a signed 64-bit integer.
    """
    if not png:
        return None
    pixels = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    if pixels is None:
        return None
    small = cv2.resize(pixels, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8].flatten()
    bits = low > np.median(low[1:])
    if np.ptp(small) == 0:
        bits[:] = False
    value = int(np.packbits(bits).view(">u8")[0])
    return value - (1 << 64) if value >= 1 << 63 else value


def perceptual_hashes(crops: pd.Series[Any]) -> pd.Series[Any]:
    """:func:`perceptual_hash` of each crop, as nullable int64."""
    return pd.Series([perceptual_hash(c) for c in crops], dtype="Int64")


def hash_frames(frames: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """``face_id`` and the ``phash`` of each ``crop`` of every frame (``mapInPandas``' body)."""
    for frame in frames:
        yield pd.DataFrame({"face_id": frame["face_id"], "phash": perceptual_hashes(frame["crop"])})


def class_weights(counts: Mapping[int, int]) -> dict[int, float]:
    """Weights that make every class count as much in the loss: rows / (classes x rows of
    the class), 1.0 on average over the rows (the demo's FER-2013 set: happy 0.54, disgust
    10.98)."""
    present = {label: n for label, n in counts.items() if n > 0}
    total = sum(present.values())
    return {label: total / (len(present) * n) for label, n in sorted(present.items())}


def check_classes(split_classes: Mapping[str, Mapping[int, int]]) -> list[int]:
    """The classes a set trains (those of its train split, sorted), after checking that the
    set has rows and that every class of val and test has training examples."""
    train = {label for label, n in split_classes.get(TRAIN, {}).items() if n > 0}
    if not any(n for counts in split_classes.values() for n in counts.values()):
        raise TrainingSetError("the training set has no rows: no labelled face matched")
    if not train:
        raise TrainingSetError("the training set has no train rows")
    if len(train) < 2:
        raise TrainingSetError(f"the train split holds one class only ({min(train)})")
    for split in (VAL, TEST):
        unseen = sorted(set(split_classes.get(split, {})) - train)
        if unseen:
            raise TrainingSetError(
                f"emotion id(s) {unseen} occur in {split} but have no train examples"
            )
    return sorted(train)


def bucket_expr(column: str, salt: str) -> str:
    """Spark SQL for a stable pseudo-random number in [0, 1) from ``column`` and ``salt``: the
    first 52 bits of sha256(salt:value). Same value and salt, same number, on every run."""
    if not salt.replace("_", "").isalnum():
        raise ValueError(f"salt must be alphanumeric, got {salt!r}")
    return (
        f"CAST(conv(substr(sha2(concat('{salt}:', {column}), 256), 1, 13), 16, 10) AS DOUBLE)"
        f" / {float(1 << 52)!r}"
    )
