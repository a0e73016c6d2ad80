"""SQL files from ``sql/``: read by name, run with named parameters, never string formatting."""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from femo.errors import SqlFileError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

_NAME = re.compile(r"^[a-z0-9_]+(/[a-z0-9_]+)*$")
_TOKENS = re.compile(
    r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`[^`]*`|--[^\n]*|/\*.*?\*/", re.DOTALL
)


def sql_root() -> Path:
    """The ``sql/`` folder beside the ``femo`` package (also inside the zip spark-submit ships)."""
    package = importlib.resources.files("femo")
    return cast(Path, package.parent / "sql")  # type: ignore[attr-defined]


def read_sql(name: str) -> str:
    """Text of ``sql/<name>.sql``, e.g. ``read_sql("seed/emotions")``.

    Raises:
        SqlFileError: the name is malformed or no such file exists.
    """
    if not _NAME.match(name):
        raise SqlFileError(f"bad SQL name {name!r}: use lower-case path parts like 'seed/emotions'")
    path = sql_root() / f"{name}.sql"
    if not path.is_file():
        raise SqlFileError(f"no SQL file {name}.sql under {sql_root()}")
    return path.read_text(encoding="utf-8")


def statement(text: str) -> str:
    """The single statement in ``text``, without a trailing ``;``.

    Comments (``--`` and ``/* */``) and quoted literals are masked before looking for ``;``, so a
    semicolon inside a string does not count.

    Raises:
        SqlFileError: the text is empty or holds more than one statement.
    """
    masked = _TOKENS.sub(lambda m: ("x" if m.group()[0] in "'\"`" else " ") * len(m.group()), text)
    if not masked.strip(" \t\r\n;"):
        raise SqlFileError("the SQL text is empty")
    cuts = [i for i, ch in enumerate(masked) if ch == ";"]
    if cuts and masked[cuts[0] + 1 :].strip(" \t\r\n;"):
        raise SqlFileError("one statement per SQL file or --sql, please: found ';' between two")
    return (text[: cuts[0]] if cuts else text).strip()


def run_sql(spark: SparkSession, name: str, params: Mapping[str, Any] | None = None) -> DataFrame:
    """Run ``sql/<name>.sql`` with named parameters (``:name`` in the file)."""
    return spark.sql(statement(read_sql(name)), args=dict(params or {}))
