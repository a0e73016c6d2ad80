"""Rendering query results for people (table) and scripts (csv, json), without Spark."""

from __future__ import annotations

import datetime
import json

import numpy as np
import pandas as pd
import pytest

from femo.analytics.query import render
from femo.platform.errors import FemoError


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "emotion_id": pd.Series([0, 3], dtype="int32"),
            "name": ["angry", "happy"],
            "synonyms": [np.array(["anger", "mad"]), np.array(["joy"])],
            "score": [0.5, float("nan")],
            "seen_at": [pd.Timestamp("2026-01-02 03:04:05"), pd.NaT],
            "day": [datetime.date(2026, 1, 2), None],
            "raw": [b"\x00\xff", None],
        }
    )


def test_json_is_one_valid_object_per_row(frame: pd.DataFrame) -> None:
    lines = render(frame, "json").splitlines()
    assert [json.loads(line) for line in lines] == [
        {
            "emotion_id": 0,
            "name": "angry",
            "synonyms": ["anger", "mad"],
            "score": 0.5,
            "seen_at": "2026-01-02T03:04:05",
            "day": "2026-01-02",
            "raw": "AP8=",
        },
        {
            "emotion_id": 3,
            "name": "happy",
            "synonyms": ["joy"],
            "score": None,
            "seen_at": None,
            "day": None,
            "raw": None,
        },
    ]


def test_csv_has_a_header_and_every_row(frame: pd.DataFrame) -> None:
    lines = render(frame[["emotion_id", "name"]], "csv").splitlines()
    assert lines == ["emotion_id,name", "0,angry", "3,happy"]


def test_table_is_aligned_text(frame: pd.DataFrame) -> None:
    lines = render(frame[["emotion_id", "name"]], "table").splitlines()
    assert lines[0].split() == ["emotion_id", "name"]
    assert lines[2].split() == ["3", "happy"]
    assert len({len(line) for line in lines}) == 1


def test_empty_result_says_so() -> None:
    empty = pd.DataFrame({"a": pd.Series([], dtype="int64")})
    assert render(empty, "table") == "a\n(no rows)"
    assert render(empty, "json") == ""
    assert render(empty, "csv") == "a"


def test_unknown_format() -> None:
    with pytest.raises(FemoError, match="unknown format 'xml'"):
        render(pd.DataFrame(), "xml")
