"""Run one SQL statement against the catalog and render the result for people or scripts."""

from __future__ import annotations

import base64
import datetime
import io
import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from femo.platform.errors import FemoError
from femo.platform.sql import statement

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

FORMATS: tuple[str, ...] = ("table", "csv", "json")


def run_query(spark: SparkSession, text: str, params: Mapping[str, Any] | None = None) -> DataFrame:
    """The result of one statement, with ``:name`` parameters bound by Spark (never formatted)."""
    return spark.sql(statement(text), args=dict(params or {}))


def _jsonable(value: Any) -> Any:
    """A JSON-ready copy of one cell as pandas hands it over from Arrow."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, np.ndarray | list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    return value


def render(frame: pd.DataFrame, fmt: str) -> str:
    """Render a result: ``table`` (aligned text), ``csv`` (with header) or ``json`` (one object
    per line). Every row of ``frame`` is rendered; limiting is the caller's choice.

    Raises:
        FemoError: unknown format.
    """
    if fmt == "table":
        if frame.empty:
            return " | ".join(map(str, frame.columns)) + "\n(no rows)"
        return str(frame.to_string(index=False, max_colwidth=80))
    if fmt == "csv":
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False, lineterminator="\n")
        return buffer.getvalue().rstrip("\n")
    if fmt == "json":
        return "\n".join(
            json.dumps({k: _jsonable(v) for k, v in row.items()}, ensure_ascii=False, default=str)
            for row in frame.to_dict(orient="records")
        )
    raise FemoError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
