"""The entity-relationship diagram of the ``femo`` database, generated from the table specs.

:func:`render_erd` turns :class:`~femo.platform.schemas.TableSpec` constants into a Mermaid
``erDiagram``: every table with its columns and types, ``PK`` on key columns, ``FK`` on the
columns named in ``references``, column comments as Mermaid attribute comments, and one relation
per reference. :func:`render_document` wraps it in the Markdown page ``docs/ERD.md``, with a
table list and the views defined under ``sql/views/``.

``python -m femo.analytics.erd`` writes that page (``make erd``); ``--check FILE`` exits 1 when
``FILE`` differs from what the code generates, so the committed diagram cannot drift from the
schemas.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql.types import ArrayType, DataType, MapType, StructField, StructType

from femo.platform.errors import EXIT_USAGE, FemoError, exit_code
from femo.platform.schemas import TableSpec

#: Identifiers Mermaid accepts as entity and attribute names without quoting.
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Characters a Mermaid attribute type may hold besides letters and digits.
_TYPE_UNSAFE = re.compile(r"[^A-Za-z0-9_\-\[\]()]")
#: ``CREATE [OR REPLACE] VIEW name`` and the view's ``COMMENT '...'`` in a SQL file.
_VIEW = re.compile(r"CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\s+(?:IF\s+NOT\s+EXISTS\s+)?([\w$]+)", re.I)
_VIEW_COMMENT = re.compile(r"^\s*COMMENT\s+'((?:[^'\\]|\\.)*)'", re.I | re.M)

#: Where the generated page lives, relative to the repository root.
DEFAULT_OUTPUT = Path("docs/ERD.md")


class ErdError(FemoError):
    """A table spec cannot be drawn: a bad name, or a reference to a missing table or column."""


@dataclass(frozen=True)
class ViewDoc:
    """A view as the ERD page lists it: name, the SQL file defining it, its comment."""

    name: str
    file: str
    comment: str


def mermaid_type(dtype: DataType) -> str:
    """A Mermaid-safe type token for a Spark type.

    Mermaid attribute types may hold letters, digits, ``-``, ``_``, ``[]`` and ``()``, so
    ``array<string>`` becomes ``array[string]``, ``map<string,int>`` ``map[string-int]``, a struct
    ``struct`` and ``decimal(10,2)`` ``decimal(10-2)``.
    """
    if isinstance(dtype, ArrayType):
        return f"array[{mermaid_type(dtype.elementType)}]"
    if isinstance(dtype, MapType):
        return f"map[{mermaid_type(dtype.keyType)}-{mermaid_type(dtype.valueType)}]"
    if isinstance(dtype, StructType):
        return "struct"
    return _TYPE_UNSAFE.sub("-", dtype.simpleString())


def _comment(text: str) -> str:
    """Text fit for a Mermaid quoted string: one line, no double quotes."""
    return " ".join(text.replace('"', "'").split())


def _check_name(name: str, what: str) -> str:
    if not _NAME.match(name):
        raise ErdError(f"{what} {name!r} cannot be drawn: use letters, digits and underscores")
    return name


def _split_reference(spec: TableSpec, column: str, target: str) -> tuple[str, str]:
    table, dot, parent_column = target.partition(".")
    if not dot or not table or not parent_column:
        raise ErdError(f"{spec.name}.references[{column!r}] = {target!r}: expected 'table.column'")
    return table, parent_column


def _validate(specs: Sequence[TableSpec]) -> dict[str, TableSpec]:
    by_name: dict[str, TableSpec] = {}
    for spec in specs:
        _check_name(spec.name, "table")
        if spec.name in by_name:
            raise ErdError(f"table {spec.name} is defined twice")
        by_name[spec.name] = spec
    for spec in specs:
        columns = set(spec.schema.fieldNames())
        for name in columns:
            _check_name(name, f"column of {spec.name}")
        for name in (*spec.key, *spec.references):
            if name not in columns:
                raise ErdError(f"{spec.name}: key or reference column {name} is not in its schema")
        for column, target in spec.references.items():
            table, parent_column = _split_reference(spec, column, target)
            parent = by_name.get(table)
            if parent is None:
                raise ErdError(f"{spec.name}.{column} references {target}: no table {table}")
            if parent_column not in parent.schema.fieldNames():
                raise ErdError(
                    f"{spec.name}.{column} references {target}: {table} has no column "
                    f"{parent_column}"
                )
    return by_name


def _attribute(spec: TableSpec, field: StructField) -> str:
    flags = (("PK", field.name in spec.key), ("FK", field.name in spec.references))
    marks = [mark for mark, on in flags if on]
    line = f"{mermaid_type(field.dataType)} {field.name}"
    if marks:
        line += " " + ", ".join(marks)
    comment = _comment(str(field.metadata.get("comment", "")))
    if comment:
        line += f' "{comment}"'
    return line


def relation(spec: TableSpec, column: str, parent: TableSpec, parent_column: str) -> str:
    """The Mermaid relation line for ``spec.column`` referencing ``parent.parent_column``.

    Cardinality, read from the specs:

    - parent side: exactly one (``||``) when ``parent_column`` is the parent's whole key, else
      one or more (``}|``: the referenced value may stand in several parent rows); zero or one
      (``|o``) and zero or more (``}o``) instead when the referencing column is nullable;
    - an array column references zero or more parent rows (``}o``) whatever its nullability;
    - child side: zero or one (``o|``) when ``column`` is the child's whole key, else zero or
      more (``o{``);
    - a solid line (identifying) when ``column`` is part of the child's key, else dashed.
    """
    field = spec.schema[column]
    nullable = field.nullable
    if isinstance(field.dataType, ArrayType):
        left = "}o"  # an array holds any number of references, none included
    elif parent.key == (parent_column,):
        left = "|o" if nullable else "||"
    else:
        left = "}o" if nullable else "}|"
    right = "o|" if spec.key == (column,) else "o{"
    line = "--" if column in spec.key else ".."
    return f'{parent.name} {left}{line}{right} {spec.name} : "{column}"'


def render_erd(specs: Iterable[TableSpec]) -> str:
    """The Mermaid ``erDiagram`` of ``specs``: entities in the given order, then relations.

    Raises:
        ErdError: a name Mermaid cannot hold, or a key or reference naming a missing table or
            column.
    """
    ordered = list(specs)
    by_name = _validate(ordered)
    lines = ["erDiagram"]
    for spec in ordered:
        lines.append(f"    {spec.name} {{")
        lines += [f"        {_attribute(spec, f)}" for f in spec.schema.fields]
        lines.append("    }")
    for spec in ordered:
        for column, target in spec.references.items():
            table, parent_column = _split_reference(spec, column, target)
            lines.append(f"    {relation(spec, column, by_name[table], parent_column)}")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def render_document(specs: Iterable[TableSpec], views: Iterable[ViewDoc] = ()) -> str:
    """The Markdown page: a generated-file header, the diagram, the tables, the views."""
    ordered = list(specs)
    parts = [
        "# The femo database",
        "",
        "<!-- Generated by `python -m femo.analytics.erd` from femo/platform/schemas.py; "
        "do not edit by hand. -->",
        "Generated from the table specs in `femo/platform/schemas.py` (every table",
        "`jobs/init_catalog.py` creates) and the views in `sql/views/`. Do not edit: run",
        "`make erd` (or `python -m femo.analytics.erd --output docs/ERD.md`) after changing them;",
        "`tests/test_erd.py` fails while this page differs from what the code generates.",
        "",
        "`PK`: the table's key (what MERGE matches on); `FK`: a column referencing another",
        "table's column. Relations are labelled with the referencing column.",
        "",
        "```mermaid",
        render_erd(ordered).rstrip("\n"),
        "```",
        "",
        "## Tables",
        "",
        "| table | key | partitioned by | what it holds |",
        "| --- | --- | --- | --- |",
    ]
    for spec in ordered:
        key = ", ".join(spec.key)
        partitions = ", ".join(spec.partition_by) or "-"
        parts.append(f"| `{spec.name}` | {key} | {partitions} | {_cell(spec.comment)} |")
    listed = list(views)
    if listed:
        parts += [
            "",
            "## Views",
            "",
            "| view | defined in | what it shows |",
            "| --- | --- | --- |",
        ]
        parts += [f"| `{v.name}` | `{v.file}` | {_cell(v.comment)} |" for v in listed]
    return "\n".join(parts) + "\n"


def read_views(views_dir: Path) -> list[ViewDoc]:
    """The views defined by the ``*.sql`` files of ``views_dir``, sorted by file name.

    A template's placeholder (``images_$source``) is shown as ``images_<source>``.
    """
    found = []
    for path in sorted(views_dir.glob("*.sql")):
        text = path.read_text(encoding="utf-8")
        match = _VIEW.search(text)
        if match is None:
            continue
        name = re.sub(r"\$(\w+)", r"<\1>", match.group(1))
        comment = _VIEW_COMMENT.search(text[match.end() :])
        found.append(
            ViewDoc(
                name=name,
                file=f"sql/views/{path.name}",
                comment=re.sub(r"\$(\w+)", r"`<\1>`", comment.group(1)) if comment else "",
            )
        )
    return found


def generate() -> str:
    """The page for the tables of :data:`femo.platform.catalog.ALL_TABLES` and the views under
    ``sql/``."""
    from femo.platform.catalog import ALL_TABLES
    from femo.platform.sql import sql_root

    return render_document(ALL_TABLES, read_views(Path(str(sql_root())) / "views"))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m femo.analytics.erd [--output FILE | --check FILE]``"""
    parser = argparse.ArgumentParser(
        prog="python -m femo.analytics.erd",
        description="Write or check docs/ERD.md (a Mermaid ERD).",
    )
    what = parser.add_mutually_exclusive_group()
    what.add_argument(
        "--output", type=Path, default=None, help=f"write the page here (default {DEFAULT_OUTPUT})"
    )
    what.add_argument(
        "--check",
        type=Path,
        metavar="FILE",
        help="exit 1 when FILE differs from the generated page",
    )
    args = parser.parse_args(argv)
    try:
        text = generate()
    except FemoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_code(exc) or EXIT_USAGE
    if args.check is not None:
        try:
            current = args.check.read_text(encoding="utf-8")
        except OSError as exc:
            print(f"error: cannot read {args.check}: {exc.strerror}", file=sys.stderr)
            return 1
        if current == text:
            return 0
        diff = difflib.unified_diff(
            current.splitlines(keepends=True),
            text.splitlines(keepends=True),
            fromfile=str(args.check),
            tofile="generated",
        )
        sys.stderr.writelines(diff)
        print(
            f"error: {args.check} is out of date with femo/platform/schemas.py: run `make erd`",
            file=sys.stderr,
        )
        return 1
    output = args.output or DEFAULT_OUTPUT
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
