"""The ERD in docs/ERD.md is generated from the table specs and cannot drift. No Spark."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql.types import (
    ArrayType,
    DecimalType,
    IntegerType,
    MapType,
    StringType,
    StructField,
    StructType,
)

from femo.analytics.erd import (
    ErdError,
    ViewDoc,
    main,
    mermaid_type,
    read_views,
    render_document,
    render_erd,
)
from femo.platform.schemas import TableSpec, col

ROOT = Path(__file__).resolve().parents[1]

PARENT = TableSpec(
    name="colours",
    comment="Colours.",
    key=("colour_id",),
    schema=StructType(
        [
            col("colour_id", IntegerType(), "the id", nullable=False),
            col("name", StringType(), 'a "quoted"\nname'),
        ]
    ),
)
CHILD = TableSpec(
    name="paints",
    comment="Paints | by colour.",
    key=("brand", "colour_id"),
    partition_by=("brand",),
    references={"colour_id": "colours.colour_id", "shade_id": "colours.colour_id"},
    schema=StructType(
        [
            col("brand", StringType(), "maker", nullable=False),
            col("colour_id", IntegerType(), "its colour", nullable=False),
            col("shade_id", IntegerType(), "an optional second colour"),
            StructField("tags", ArrayType(StringType()), True, {}),
        ]
    ),
)


def test_committed_erd_is_what_the_code_generates() -> None:
    assert (
        main(["--check", str(ROOT / "docs" / "ERD.md")]) == 0
    ), "docs/ERD.md is out of date with femo/platform/schemas.py: run `make erd` and commit it"


def test_check_reports_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "ERD.md"
    stale.write_text("# an old diagram\n", encoding="utf-8")
    assert main(["--check", str(stale)]) == 1
    assert "out of date with femo/platform/schemas.py: run `make erd`" in capsys.readouterr().err
    assert main(["--output", str(stale)]) == 0
    assert main(["--check", str(stale)]) == 0


def test_a_reference_yields_marks_and_relations() -> None:
    assert render_erd([PARENT, CHILD]) == (
        "erDiagram\n"
        "    colours {\n"
        '        int colour_id PK "the id"\n'
        "        string name \"a 'quoted' name\"\n"
        "    }\n"
        "    paints {\n"
        '        string brand PK "maker"\n'
        '        int colour_id PK, FK "its colour"\n'
        '        int shade_id FK "an optional second colour"\n'
        "        array[string] tags\n"
        "    }\n"
        # part of the child's key: identifying (solid); not null: exactly one colour
        '    colours ||--o{ paints : "colour_id"\n'
        # outside the key: dashed; nullable: zero or one colour
        '    colours |o..o{ paints : "shade_id"\n'
    )


def test_cardinality_follows_the_keys() -> None:
    one_to_one = TableSpec(
        name="colour_notes",
        comment="",
        key=("colour_id",),
        references={"colour_id": "colours.colour_id"},
        schema=StructType([col("colour_id", IntegerType(), "", nullable=False)]),
    )
    assert render_erd([PARENT, one_to_one]).splitlines()[-1] == (
        '    colours ||--o| colour_notes : "colour_id"'
    )
    # A referenced column that is not the parent's whole key may match several parent rows.
    by_name = TableSpec(
        name="mixes",
        comment="",
        key=("mix_id",),
        references={"name": "colours.name", "names": "colours.name"},
        schema=StructType(
            [
                col("mix_id", IntegerType(), "", nullable=False),
                col("name", StringType(), "", nullable=False),
                col("names", ArrayType(StringType()), ""),
            ]
        ),
    )
    assert render_erd([PARENT, by_name]).splitlines()[-2:] == [
        '    colours }|..o{ mixes : "name"',
        '    colours }o..o{ mixes : "names"',
    ]


@pytest.mark.parametrize(
    ("dtype", "token"),
    [
        (IntegerType(), "int"),
        (ArrayType(StringType()), "array[string]"),
        (MapType(StringType(), ArrayType(IntegerType())), "map[string-array[int]]"),
        (StructType([StructField("a", IntegerType())]), "struct"),
        (DecimalType(10, 2), "decimal(10-2)"),
    ],
)
def test_types_are_mermaid_tokens(dtype: object, token: str) -> None:
    assert mermaid_type(dtype) == token  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("references", "message"),
    [
        ({"colour_id": "hues.colour_id"}, "paints.colour_id references hues.colour_id: no table"),
        ({"colour_id": "colours.hue"}, "colours has no column hue"),
        ({"colour_id": "colours"}, "expected 'table.column'"),
        ({"hue": "colours.colour_id"}, "reference column hue is not in its schema"),
    ],
)
def test_broken_references_are_named(references: dict[str, str], message: str) -> None:
    broken = TableSpec(
        name="paints",
        comment="",
        key=("colour_id",),
        references=references,
        schema=StructType([col("colour_id", IntegerType(), "")]),
    )
    with pytest.raises(ErdError, match=message):
        render_erd([PARENT, broken])


def test_document_lists_tables_and_views() -> None:
    page = render_document(
        [PARENT, CHILD], [ViewDoc("paint_view", "sql/views/paint_view.sql", "Paints, named")]
    )
    assert page.startswith("# The femo database\n")
    assert "```mermaid\nerDiagram\n" in page
    assert "| `paints` | brand, colour_id | brand | Paints \\| by colour. |" in page
    assert "| `paint_view` | `sql/views/paint_view.sql` | Paints, named |" in page


def test_views_are_read_from_sql_files(tmp_path: Path) -> None:
    (tmp_path / "b.sql").write_text(
        "-- a template\nCREATE OR REPLACE VIEW images_$source\n"
        "COMMENT 'Images of $source'\nAS SELECT 1\n",
        encoding="utf-8",
    )
    (tmp_path / "a.sql").write_text("CREATE VIEW plain AS SELECT 1\n", encoding="utf-8")
    (tmp_path / "c.sql").write_text("SELECT 1\n", encoding="utf-8")
    assert read_views(tmp_path) == [
        ViewDoc("plain", "sql/views/a.sql", ""),
        ViewDoc("images_<source>", "sql/views/b.sql", "Images of `<source>`"),
    ]
