"""Catalog bootstrap: database, dimension tables, seeds; idempotent; additive evolution."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql.types import IntegerType, LongType, StringType, StructField, StructType

import femo.platform.catalog
from femo.platform.catalog import (
    CATALOG_MARKERS,
    LocalRows,
    MergeResult,
    RowChanges,
    SchemaConflictError,
    catalog_fingerprint,
    database_markers,
    ensure_catalog,
    ensure_table,
    init_catalog,
    merge_rows,
    missing_columns,
    row_changes,
)
from femo.platform.schemas import EMOTIONS, TableSpec, col
from femo.platform.settings import Settings

from .conftest import make_settings


def versions(spark: SparkSession, table: str) -> int:
    return spark.sql(f"DESCRIBE HISTORY {table}").count()


def test_emotions_follow_fer2013_order_plus_contempt(
    spark: SparkSession, catalog: Settings
) -> None:
    rows = spark.sql("SELECT emotion_id, name FROM femo.emotions ORDER BY emotion_id").collect()
    assert [(r.emotion_id, r.name) for r in rows] == [
        (0, "angry"),
        (1, "disgust"),
        (2, "fear"),
        (3, "happy"),
        (4, "sad"),
        (5, "surprise"),
        (6, "neutral"),
        (7, "contempt"),
    ]


@pytest.mark.parametrize(
    ("label", "emotion_id"),
    [
        ("anger", 0),
        ("disgusted", 1),
        ("scared", 2),
        ("happiness", 3),
        ("joy", 3),
        ("sadness", 4),
        ("surprised", 5),
        ("neutral", 6),
        ("contempt", 7),
    ],
)
def test_synonyms_map_dataset_labels(
    spark: SparkSession, catalog: Settings, label: str, emotion_id: int
) -> None:
    found = spark.sql(
        "SELECT emotion_id FROM femo.emotions WHERE array_contains(synonyms, lower(:label))",
        args={"label": label.upper()},
    ).collect()
    assert [r.emotion_id for r in found] == [emotion_id]


def test_each_synonym_names_one_emotion(spark: SparkSession, catalog: Settings) -> None:
    dupes = spark.sql(
        "SELECT s, count(*) n FROM femo.emotions LATERAL VIEW explode(synonyms) AS s "
        "GROUP BY s HAVING n > 1"
    ).collect()
    assert dupes == []


def test_sources_are_seeded_with_registration_time(spark: SparkSession, catalog: Settings) -> None:
    rows = spark.sql("SELECT source_id, kind, registered_at FROM femo.sources").collect()
    by_id = {r.source_id: r for r in rows}
    assert {"fer2013", "pixabay", "ddg", "imotions_facs", "everyday_emotions"} <= set(by_id)
    assert by_id["fer2013"].kind == "image_folders"
    assert all(r.registered_at is not None for r in rows)


def test_init_catalog_twice_commits_nothing(spark: SparkSession, catalog: Settings) -> None:
    before = {t: versions(spark, f"femo.{t}") for t in ("emotions", "sources")}
    stamp = spark.sql("SELECT max(registered_at) FROM femo.sources").first()[0]
    # The seven seeded sources, plus any that jobs of other tests registered before this one.
    sources = spark.table("femo.sources").count()
    assert sources >= 7
    summary = init_catalog(spark, catalog)
    assert summary.created == ()
    assert {n: (m.inserted, m.updated) for n, m in summary.merged.items()} == {
        "emotions": (0, 0),
        "sources": (0, 0),
    }
    assert summary.rows == {"emotions": 8, "sources": sources}
    assert {t: versions(spark, f"femo.{t}") for t in ("emotions", "sources")} == before
    assert spark.sql("SELECT max(registered_at) FROM femo.sources").first()[0] == stamp


def test_tables_are_delta_with_column_comments(spark: SparkSession, catalog: Settings) -> None:
    assert spark.sql("DESCRIBE DETAIL femo.emotions").first().format == "delta"
    described = {r.col_name: r.comment for r in spark.sql("DESCRIBE TABLE femo.emotions").collect()}
    assert described["emotion_id"] == "FER-2013 class id (0-6), 7 = contempt"


def test_merge_rows_inserts_updates_and_skips_equal_rows(
    spark: SparkSession, catalog: Settings
) -> None:
    spec = TableSpec(
        name="merge_check",
        comment="test",
        key=("k",),
        schema=StructType(
            [col("k", IntegerType(), "key", nullable=False), col("v", StringType(), "value")]
        ),
    )
    assert ensure_table(spark, spec, "femo") == "created"
    first = spark.createDataFrame([(1, "a"), (2, "b")], "k int, v string")
    assert merge_rows(spark, spec, "femo", first).inserted == 2
    again = merge_rows(spark, spec, "femo", first)
    assert (again.inserted, again.updated) == (0, 0)
    changed = spark.createDataFrame([(1, "a"), (2, "B"), (3, "c")], "k int, v string")
    result = merge_rows(spark, spec, "femo", changed)
    assert (result.inserted, result.updated) == (1, 1)
    rows = spark.sql("SELECT k, v FROM femo.merge_check ORDER BY k").collect()
    assert [(r.k, r.v) for r in rows] == [(1, "a"), (2, "B"), (3, "c")]
    spark.sql("DROP TABLE femo.merge_check")


@pytest.mark.parametrize("local", [False, True], ids=["spark_diff", "driver_diff"])
def test_merge_rows_stamps_what_it_writes_and_prunes_its_scope(
    spark: SparkSession, catalog: Settings, local: bool
) -> None:
    content = StructType(
        [
            col("g", StringType(), "scope", nullable=False),
            col("k", IntegerType(), "key", nullable=False),
            col("v", StringType(), "value"),
        ]
    )
    spec = TableSpec(
        name=f"prune_check_{'local' if local else 'frame'}",
        comment="test",
        key=("g", "k"),
        schema=StructType([*content.fields, col("run_id", StringType(), "stamp")]),
    )
    table = f"femo.{spec.name}"
    assert ensure_table(spark, spec, "femo") == "created"

    def merge(
        rows: list[tuple[str, int, str]], run: str, prune: dict[str, str] | None = None
    ) -> MergeResult:
        source = LocalRows(content, rows) if local else spark.createDataFrame(rows, content)
        return merge_rows(spark, spec, "femo", source, stamps={"run_id": run}, prune=prune)

    assert merge([("a", 1, "x"), ("a", 2, "y"), ("b", 1, "z")], "r1") == MergeResult(3, 0, 0)
    assert merge([("a", 1, "x"), ("a", 2, "Y")], "r2", {"g": "a"}) == MergeResult(0, 1, 0)
    assert merge([("a", 2, "Y")], "r3", {"g": "a"}) == MergeResult(0, 0, 1)
    before = versions(spark, table)
    assert merge([("a", 2, "Y")], "r4", {"g": "a"}) == MergeResult(0, 0, 0)
    assert versions(spark, table) == before
    rows = spark.sql(f"SELECT g, k, v, run_id FROM {table} ORDER BY g, k").collect()
    assert [tuple(r) for r in rows] == [("a", 2, "Y", "r2"), ("b", 1, "z", "r1")]
    spark.sql(f"DROP TABLE {table}")


def test_row_changes_by_key_then_content() -> None:
    current = [(1, "a", None), (2, "b", "y"), (3, "c", "z"), (5, "e", None)]
    wanted = [(2, "b", "y"), (3, "c", "Z"), (4, "d", None), (5, "e", "now noted")]
    changes = row_changes(current, wanted, key=[0])
    assert changes.inserted == [(4, "d", None)]
    assert changes.updated == [(3, "c", "Z"), (5, "e", "now noted")]
    assert changes.deleted == [(1,)]
    assert changes.upserts == [(4, "d", None), (3, "c", "Z"), (5, "e", "now noted")]
    by_pair = row_changes([(7, "x", 12), (7, "y", 14)], [(7, "z", 12), (7, "y", 6)], key=[0, 2])
    assert (by_pair.inserted, by_pair.updated, by_pair.deleted) == (
        [(7, "y", 6)],
        [(7, "z", 12)],
        [(7, 14)],
    )
    unchanged = row_changes(wanted, wanted, key=[0])
    assert unchanged == RowChanges([], [], [])


def test_schema_evolution_is_additive(spark: SparkSession, catalog: Settings) -> None:
    old = TableSpec(
        name="evolve_check",
        comment="t",
        key=("k",),
        schema=StructType([col("k", IntegerType(), "key")]),
    )
    new = TableSpec(
        name="evolve_check",
        comment="t",
        key=("k",),
        schema=StructType(
            [col("k", IntegerType(), "key"), col("note", StringType(), "added later")]
        ),
    )
    assert ensure_table(spark, old, "femo") == "created"
    spark.sql("INSERT INTO femo.evolve_check VALUES (1)")
    assert ensure_table(spark, new, "femo") == "evolved"
    assert ensure_table(spark, new, "femo") == "exists"
    row = spark.sql("SELECT k, note FROM femo.evolve_check").first()
    assert (row.k, row.note) == (1, None)
    spark.sql("DROP TABLE femo.evolve_check")


def test_type_change_is_refused() -> None:
    existing = StructType([StructField("emotion_id", LongType())])
    with pytest.raises(SchemaConflictError, match="emotion_id is bigint in the table but int"):
        missing_columns(existing, EMOTIONS.schema)


def test_missing_columns_lists_new_ones_case_insensitively() -> None:
    existing = StructType(
        [StructField("EMOTION_ID", IntegerType()), StructField("name", StringType())]
    )
    assert missing_columns(existing, EMOTIONS.schema) == ["synonyms", "valence"]


@pytest.fixture
def other_catalog(spark: SparkSession, catalog: Settings, tmp_path: Path) -> Iterator[Settings]:
    """A second femo database in the shared session, made by init_catalog, dropped after."""
    settings = make_settings(tmp_path, "catalog.database=femo_ensure")
    init_catalog(spark, settings)
    yield settings
    spark.sql("DROP DATABASE IF EXISTS femo_ensure CASCADE")
    spark.catalog.setCurrentDatabase(catalog.catalog.database)


def test_ensure_catalog_is_a_no_op_where_init_catalog_completed(
    spark: SparkSession, other_catalog: Settings
) -> None:
    markers = database_markers(spark, "femo_ensure", CATALOG_MARKERS)
    assert markers.names() == [catalog_fingerprint()]
    spark.sql("DELETE FROM femo_ensure.emotions WHERE name = 'contempt'")
    before = versions(spark, "femo_ensure.emotions")
    assert ensure_catalog(spark, other_catalog) is False
    # Nothing re-merged or committed: hand edits stay until jobs/init_catalog.py runs.
    assert versions(spark, "femo_ensure.emotions") == before
    assert init_catalog(spark, other_catalog).merged["emotions"].inserted == 1


def test_ensure_catalog_rebuilds_a_missing_table_or_another_femos_catalog(
    spark: SparkSession, other_catalog: Settings
) -> None:
    markers = database_markers(spark, "femo_ensure", CATALOG_MARKERS)
    spark.sql("DROP TABLE femo_ensure.downloads")
    assert ensure_catalog(spark, other_catalog) is True
    assert spark.catalog.tableExists("femo_ensure.downloads")
    markers.drop(markers.names())
    markers.put("made-by-another-femo")
    assert ensure_catalog(spark, other_catalog) is True
    assert markers.names() == [catalog_fingerprint()]
    assert ensure_catalog(spark, other_catalog) is False


def test_catalog_fingerprint_follows_the_specs(monkeypatch: pytest.MonkeyPatch) -> None:
    before = catalog_fingerprint()
    assert catalog_fingerprint() == before
    first, *rest = femo.platform.catalog.ALL_TABLES
    wider = StructType([*first.schema.fields, StructField("extra", StringType())])
    monkeypatch.setattr(
        femo.platform.catalog, "ALL_TABLES", (dataclasses.replace(first, schema=wider), *rest)
    )
    assert catalog_fingerprint() != before
