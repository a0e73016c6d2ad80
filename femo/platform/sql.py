"""SQL files from ``sql/``: read by name, run with named parameters, never string formatting."""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import yaml

from femo.platform.errors import SqlFileError

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


#: A parameter declared in a SQL file's header: ``-- :name = default  what it means``.
_PARAM = re.compile(r"^--\s*:([A-Za-z_]\w*)\s*=\s*('(?:[^']|'')*'|\S+)\s*(.*)$")


@dataclass(frozen=True)
class Param:
    """A named parameter of a SQL file, with its default and what it means."""

    name: str
    default: Any
    doc: str


@dataclass(frozen=True)
class SqlDoc:
    """What a SQL file's leading comment says: a title line and its parameters."""

    title: str
    params: tuple[Param, ...]

    def defaults(self) -> dict[str, Any]:
        """Every declared parameter's default value."""
        return {p.name: p.default for p in self.params}


def describe(text: str) -> SqlDoc:
    """The title (first comment line) and parameters (``-- :name = default  doc`` lines) of
    the leading ``--`` comment block of ``text``. Defaults are YAML scalars, like ``--param``
    values: ``48`` is a number, ``''`` an empty string.

    Raises:
        SqlFileError: a parameter line whose default cannot be read.
    """
    title = ""
    params = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("--"):
            break
        match = _PARAM.match(stripped)
        if match:
            name, raw, doc = match.groups()
            try:
                default = yaml.safe_load(raw)
            except yaml.YAMLError as exc:
                raise SqlFileError(f"parameter :{name}: cannot read default {raw!r}") from exc
            params.append(Param(name, default, doc.strip()))
        elif not title:
            title = stripped.lstrip("-").strip()
    return SqlDoc(title, tuple(params))


_MARKER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def markers(text: str) -> set[str]:
    """The named parameters (``:name``) the statement in ``text`` uses; markers inside comments
    and quoted literals do not count, nor ``::`` casts."""
    return set(_MARKER.findall(_TOKENS.sub(" ", statement(text))))


def bind(text: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The parameters to run ``text`` with: its declared defaults, overridden by ``params``."""
    return {**describe(text).defaults(), **(params or {})}


def insights() -> dict[str, SqlDoc]:
    """Every query of ``sql/insights/`` by name (``insights/<file>``), with its description."""
    folder = sql_root() / "insights"
    return {
        f"insights/{path.stem}": describe(path.read_text(encoding="utf-8"))
        for path in sorted(folder.iterdir())
        if path.suffix == ".sql"
    }


def run_sql(spark: SparkSession, name: str, params: Mapping[str, Any] | None = None) -> DataFrame:
    """Run ``sql/<name>.sql`` with named parameters (``:name`` in the file); parameters the
    file declares in its header take their defaults unless given."""
    text = read_sql(name)
    return spark.sql(statement(text), args=bind(text, params))
