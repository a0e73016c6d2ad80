"""Where a file sits says its label and split; labels map to emotion ids. Pure functions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from femo.ingest.images import Rejection
from femo.platform.files import local_path

#: How the split of a file is found.
SPLIT_FROM: Final = ("path", "usage", "none")

TRAIN: Final = "train"
TEST: Final = "test"
VAL: Final = "val"
UNSPLIT: Final = "unsplit"

#: Folder names (lower case) that name a split, and the split they name.
SPLIT_NAMES: Final[dict[str, str]] = {
    "train": TRAIN,
    "training": TRAIN,
    "test": TEST,
    "testing": TEST,
    "publictest": TEST,
    "privatetest": TEST,
    "val": VAL,
    "valid": VAL,
    "validation": VAL,
}

#: FER-2013 CSV ``Usage`` values. Both official test halves are ``test``, as in the Kaggle
#: folder copy, whose ``test/`` holds PublicTest_* and PrivateTest_* files.
USAGE_SPLITS: Final[dict[str, str]] = {
    "training": TRAIN,
    "publictest": TEST,
    "privatetest": TEST,
}

NO_LABEL: Final = "no_label"
UNKNOWN_LABEL: Final = "unknown_label"
UNKNOWN_SPLIT: Final = "unknown_split"
UNEXPECTED_LAYOUT: Final = "unexpected_layout"


@dataclass(frozen=True)
class Placement:
    """Label (as written by the source) and split of one file."""

    label: str
    split: str


def relative_path(path: str, root: str) -> str:
    """``path`` relative to ``root`` (both plain paths or URIs of the same scheme)."""
    plain, base = local_path(path), local_path(root).rstrip("/")
    if plain.startswith(base + "/"):
        return plain[len(base) + 1 :]
    return plain.rsplit("/", 1)[-1] if base == plain else plain


def place(relative: str, split_from: str) -> Placement | Rejection:
    """Label and split of a file from its path under the collection root.

    Layouts: ``<label>/<file>`` and ``<split>/<label>/<file>``. With ``split_from="path"`` the
    first of two folders must name a split (train, test, val, ...); with ``"none"`` the split is
    ``unsplit`` and the label is the innermost folder.
    """
    folders = relative.split("/")[:-1]
    if not folders:
        return Rejection(NO_LABEL, f"{relative} is not inside a label folder")
    if split_from == "none":
        return Placement(folders[-1], UNSPLIT)
    if len(folders) == 1:
        return Placement(folders[0], UNSPLIT)
    if len(folders) > 2:
        return Rejection(
            UNEXPECTED_LAYOUT, f"{relative}: expected <label>/<file> or <split>/<label>/<file>"
        )
    split = SPLIT_NAMES.get(folders[0].lower())
    if split is None:
        return Rejection(
            UNKNOWN_SPLIT,
            f"folder {folders[0]!r} names no split " f"({', '.join(sorted(set(SPLIT_NAMES)))})",
        )
    return Placement(folders[1], split)


class LabelMap:
    """Label names to emotion ids, case-insensitively, from the ``emotions`` synonyms."""

    def __init__(self, synonyms: Mapping[int, Iterable[str]]) -> None:
        self._ids: dict[str, int] = {}
        for emotion_id, names in synonyms.items():
            for name in names:
                self._ids[name.strip().lower()] = emotion_id

    @classmethod
    def from_names(cls, ids: Mapping[str, int]) -> LabelMap:
        """From ``{label name: emotion id}`` as :meth:`as_dict` returns it."""
        grouped: dict[int, list[str]] = {}
        for name, emotion_id in ids.items():
            grouped.setdefault(emotion_id, []).append(name)
        return cls(grouped)

    def resolve(self, label: str) -> int | Rejection:
        """The emotion id of ``label``, or an ``unknown_label`` rejection (never a guess)."""
        found = self._ids.get(label.strip().lower())
        if found is None:
            return Rejection(UNKNOWN_LABEL, f"label {label!r} matches no emotion synonym")
        return found

    def as_dict(self) -> dict[str, int]:
        """Every known label name and its id."""
        return dict(self._ids)
