"""Parquet files written in Python and committed to Delta: layout, statistics, rules, commits."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import (
    BinaryType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from femo.platform.catalog import ensure_table
from femo.platform.delta_files import (
    FileTarget,
    PartWriter,
    commit_files,
    escape_partition_value,
    file_target,
    read_where,
    stats_columns,
    unsupported_rules,
    write_part,
)
from femo.platform.errors import FemoError
from femo.platform.schemas import IMAGES, INGESTED_FILES, QUARANTINE, TableSpec, col
from femo.platform.settings import Settings

SCHEMA = StructType(
    [
        col("part", StringType(), "partition", nullable=False),
        col("name", StringType(), "key", nullable=False),
        col("score", IntegerType(), "bounded"),
        col("at", TimestampType(), "bounded"),
        col("blob", BinaryType(), "null count only"),
        col("big", LongType(), "not a stats column"),
    ]
)


def frame(names: list[str], scores: list[int | None], at: datetime) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "part": "p1",
            "name": names,
            "score": pd.array(scores, dtype="Int32"),
            "at": pd.Timestamp(at),
            "blob": [
                n.encode() if s is not None else None for n, s in zip(names, scores, strict=True)
            ],
            "big": range(len(names)),
        }
    )


def local_target(root: Path) -> FileTarget:
    return FileTarget(
        table="t",
        location=f"file:{root}",
        schema_json=SCHEMA.json(),
        partition_values={"part": "p1"},
        stats_columns=("name", "score", "at", "blob"),
    )


def test_partition_values_are_escaped_as_hive_does() -> None:
    assert escape_partition_value("fer2013") == "fer2013"
    assert escape_partition_value("a/b=c:d%") == "a%2Fb%3Dc%3Ad%25"
    assert escape_partition_value("tab\there") == "tab%09here"


def test_stats_columns_follow_the_table_properties() -> None:
    assert stats_columns(SCHEMA, {"delta.dataSkippingStatsColumns": "score, `at`"}) == (
        "score",
        "at",
    )
    assert stats_columns(SCHEMA, {"delta.dataSkippingNumIndexedCols": "2"}) == ("part", "name")
    assert stats_columns(SCHEMA, {"delta.dataSkippingNumIndexedCols": "-1"}) == tuple(
        SCHEMA.fieldNames()
    )
    assert stats_columns(SCHEMA, {}) == tuple(SCHEMA.fieldNames())  # fewer than 32


def test_rules_only_spark_keeps_are_named() -> None:
    assert unsupported_rules(SCHEMA, {}, ["part"]) == []
    for spec in (IMAGES, QUARANTINE, INGESTED_FILES):
        assert unsupported_rules(spec.schema, spec.properties, spec.partition_by) == []
    generated = StructType(
        [StructField("x", IntegerType(), True, {"delta.generationExpression": "1"})]
    )
    found = unsupported_rules(
        generated,
        {"delta.columnMapping.mode": "name", "delta.constraints.positive": "x > 0"},
        ["x"],
    )
    assert found == [
        "column mapping (name)",
        "delta.constraints.positive",
        "x: delta.generationExpression",
        "x: a int partition column",
    ]


@pytest.mark.parametrize(
    ("protocol", "configuration", "refused"),
    [
        ({"minReaderVersion": 1, "minWriterVersion": 2}, {}, []),
        ({"minReaderVersion": 1, "minWriterVersion": 3}, {}, []),  # the feature, no constraint
        (
            {"minReaderVersion": 1, "minWriterVersion": 4},
            {},
            ["table feature generatedColumns"],
        ),
        (
            {"minReaderVersion": 3, "minWriterVersion": 7, "writerFeatures": ["rowTracking"]},
            {"delta.enableRowTracking": "true"},
            ["table feature rowTracking", "delta.enableRowTracking"],
        ),
        (
            {
                "minReaderVersion": 3,
                "minWriterVersion": 7,
                "writerFeatures": ["appendOnly", "clustering", "domainMetadata"],
            },
            {},
            ["table feature clustering", "table feature domainMetadata"],
        ),
        (
            {"minReaderVersion": 3, "minWriterVersion": 7, "writerFeatures": ["typeWidening"]},
            {"delta.enableTypeWidening": "true", "delta.feature.typeWidening": "supported"},
            [
                "table feature typeWidening",
                "delta.enableTypeWidening",
            ],
        ),
        (
            {"minReaderVersion": 1, "minWriterVersion": 2},
            {"delta.someFutureProperty": "x", "owner": "analysts", "comment": "mine"},
            ["delta.someFutureProperty"],  # unknown delta.* refused; the user's own kept
        ),
        (
            {
                "minReaderVersion": 3,
                "minWriterVersion": 7,
                "writerFeatures": ["deletionVectors", "changeDataFeed", "appendOnly"],
            },
            {"delta.enableDeletionVectors": "true", "delta.enableChangeDataFeed": "true"},
            [],
        ),
    ],
)
def test_features_and_properties_are_judged_by_an_allow_list(
    protocol: dict[str, object], configuration: dict[str, str], refused: list[str]
) -> None:
    assert unsupported_rules(SCHEMA, configuration, ["part"], protocol) == refused


def test_column_metadata_other_than_a_comment_is_refused() -> None:
    widened = StructType(
        [
            StructField("x", IntegerType(), True, {"comment": "kept"}),
            StructField("y", LongType(), True, {"delta.typeChanges": "[]"}),
        ]
    )
    assert unsupported_rules(widened, {}, []) == ["y: delta.typeChanges"]


def test_a_part_is_laid_out_as_spark_would_with_delta_statistics(tmp_path: Path) -> None:
    at = datetime(2026, 12, 1, 5, 6, 7, 891_234, tzinfo=UTC)
    writer = PartWriter(local_target(tmp_path))
    writer.write(frame(["b", "c"], [3, None], at))
    writer.write(frame([], [], at))
    writer.write(frame(["a"], [-1], at))
    (add,) = writer.close()

    assert add["path"].startswith("part=p1/part-") and add["path"].endswith(".snappy.parquet")
    assert add["partitionValues"] == {"part": "p1"} and add["dataChange"] is True
    written = tmp_path / add["path"]
    assert add["size"] == written.stat().st_size
    table = pq.read_table(written)
    # The partition column lives in the path only; types are the table's.
    assert table.schema.names == ["name", "score", "at", "blob", "big"]
    assert str(table.schema.field("score").type) == "int32"
    assert str(table.schema.field("at").type) == "timestamp[us, tz=UTC]"
    assert not table.schema.field("name").nullable
    assert pq.ParquetFile(written).metadata.num_row_groups == 2  # a row group per batch
    assert table.column("name").to_pylist() == ["b", "c", "a"]
    assert json.loads(add["stats"]) == {
        "numRecords": 3,
        "minValues": {"name": "a", "score": -1, "at": "2026-12-01T05:06:07.891Z"},
        "maxValues": {"name": "c", "score": 3, "at": "2026-12-01T05:06:07.891Z"},
        "nullCount": {"name": 0, "score": 1, "at": 0, "blob": 1},
    }


def test_a_writer_without_rows_writes_nothing(tmp_path: Path) -> None:
    assert write_part(local_target(tmp_path), [frame([], [], datetime.now(UTC))]) == []
    assert list(tmp_path.rglob("*")) == []


def test_a_null_in_a_not_null_column_is_refused(tmp_path: Path) -> None:
    rows = frame(["a", "b"], [1, 2], datetime.now(UTC))
    rows.loc[1, "name"] = None
    with pytest.raises(ValueError, match="null in NOT NULL column name"):
        PartWriter(local_target(tmp_path)).write(rows)


@pytest.fixture
def table(spark: SparkSession, catalog: Settings) -> Iterator[str]:
    """A fresh table, dropped afterwards (other tests read every table of the catalog)."""
    spec = TableSpec(
        name=f"files_{uuid.uuid4().hex[:8]}",
        schema=SCHEMA,
        comment="test",
        key=("name",),
        partition_by=("part",),
        properties={"delta.dataSkippingStatsColumns": "name,score,at"},
    )
    ensure_table(spark, spec, "femo")
    yield f"femo.{spec.name}"
    spark.sql(f"DROP TABLE IF EXISTS femo.{spec.name}")


def test_committed_parts_are_read_back_by_spark_with_working_statistics(
    spark: SparkSession, table: str
) -> None:
    target = file_target(spark, table, {"part": "p1"})
    assert target.stats_columns == ("name", "score", "at")
    at = datetime(2026, 12, 1, 5, 6, 7, 891_234, tzinfo=UTC)
    low = write_part(target, [frame(["a", "b"], [1, 2], at)])
    high = write_part(target, [frame(["y", "z"], [90, None], at)])
    assert commit_files(spark, target, []) is None
    version = commit_files(spark, target, low + high)

    rows = spark.sql(f"SELECT * FROM {table} ORDER BY name").collect()
    assert [(r.part, r.name, r.score, r.blob, r.big) for r in rows] == [
        ("p1", "a", 1, b"a", 0),
        ("p1", "b", 2, b"b", 1),
        ("p1", "y", 90, b"y", 0),
        ("p1", "z", None, None, 1),
    ]
    assert {r.at for r in rows} == {at.replace(tzinfo=None)}  # the session's zone is UTC
    history = spark.sql(f"DESCRIBE HISTORY {table}").collect()
    assert (history[0].version, history[0].operation) == (version, "WRITE")
    assert history[0].operationParameters["mode"] == "Append"
    metrics = history[0].operationMetrics
    assert (metrics["numFiles"], metrics["numOutputRows"]) == ("2", "4")
    assert metrics["numOutputBytes"] == str(sum(add["size"] for add in low + high))
    # Delta uses the statistics: with the low file gone, queries that can only match the
    # high one still run (the low file is skipped), and counting needs no file at all.
    os.remove(target.location.removeprefix("file:") + "/" + low[0]["path"])
    assert [r.name for r in spark.sql(f"SELECT name FROM {table} WHERE score > 50").collect()] == [
        "y"
    ]
    assert spark.sql(f"SELECT name FROM {table} WHERE name = 'z'").count() == 1
    assert spark.sql(f"SELECT count(*) FROM {table}").first()[0] == 4


def test_tables_with_rules_only_spark_keeps_are_refused(spark: SparkSession, table: str) -> None:
    spark.sql(f"ALTER TABLE {table} ADD CONSTRAINT positive CHECK (score > 0)")
    with pytest.raises(FemoError, match="delta.constraints.positive"):
        file_target(spark, table, {"part": "p1"})


@pytest.mark.parametrize(
    ("change", "refused"),
    [
        ("ADD CONSTRAINT positive CHECK (score > 0)", "delta.constraints.positive"),
        (
            "SET TBLPROPERTIES ('delta.feature.rowTracking' = 'supported')",
            "table feature rowTracking",
        ),
    ],
)
def test_a_rule_added_during_the_run_stops_the_commit(
    spark: SparkSession, table: str, change: str, refused: str
) -> None:
    target = file_target(spark, table, {"part": "p1"})
    adds = write_part(target, [frame(["a"], [-1], datetime.now(UTC))])
    spark.sql(f"ALTER TABLE {table} {change}")
    with pytest.raises(FemoError, match=f"added during the run, nothing committed: .*{refused}"):
        commit_files(spark, target, adds)
    assert spark.table(table).count() == 0


def test_partition_values_must_name_the_partition_columns(spark: SparkSession, table: str) -> None:
    with pytest.raises(FemoError, match="partition values"):
        file_target(spark, table, {})


def test_a_schema_change_during_the_run_stops_the_commit(spark: SparkSession, table: str) -> None:
    target = file_target(spark, table, {"part": "p1"})
    adds = write_part(target, [frame(["a"], [1], datetime.now(UTC))])
    spark.sql(f"ALTER TABLE {table} ADD COLUMNS (extra STRING)")
    with pytest.raises(FemoError, match="schema changed"):
        commit_files(spark, target, adds)
    assert spark.table(table).count() == 0


def two_parts(spark: SparkSession, table: str, at: datetime) -> None:
    """Rows a, b in partition p1 and c in p2."""
    for part, names in (("p1", ["a", "b"]), ("p2", ["c"])):
        target = file_target(spark, table, {"part": part})
        rows = frame(names, [1] * len(names), at).assign(part=part)
        commit_files(spark, target, write_part(target, [rows]))


def test_a_slice_is_read_on_the_driver_with_the_tables_types(
    spark: SparkSession, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = datetime(2026, 12, 1, 5, 6, 7, 891_234, tzinfo=UTC)
    two_parts(spark, table, at)

    def no_spark(name: str) -> None:
        raise AssertionError(f"read {name} through Spark")

    monkeypatch.setattr(spark, "table", no_spark)
    columns = ["name", "at", "score"]
    wanted = to_arrow_schema(StructType([SCHEMA[c] for c in columns]))
    by_partition = read_where(spark, table, columns, {"part": "p1"})
    assert by_partition.schema == wanted
    assert sorted(by_partition.to_pylist(), key=lambda r: r["name"]) == [
        {"name": "a", "at": at, "score": 1},
        {"name": "b", "at": at, "score": 1},
    ]
    assert read_where(spark, table, ["name"], {"part": "p2", "name": "c"}).to_pylist() == [
        {"name": "c"}
    ]
    nothing = read_where(spark, table, columns, {"name": "zz"})
    assert (nothing.num_rows, nothing.schema) == (0, wanted)


def test_a_table_delta_rs_cannot_read_is_read_through_spark(
    spark: SparkSession, table: str, caplog: pytest.LogCaptureFixture
) -> None:
    at = datetime(2026, 12, 1, 5, 6, 7, 891_234, tzinfo=UTC)
    two_parts(spark, table, at)
    # Deletion vectors: a reader feature delta-rs 0.18 refuses; the deleted row must not be read.
    spark.sql(f"ALTER TABLE {table} SET TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')")
    spark.sql(f"DELETE FROM {table} WHERE name = 'b'")
    with caplog.at_level("INFO", logger="femo.platform.delta_files"):
        rows = read_where(spark, table, ["name", "at"], {"part": "p1"})
    assert "read through Spark" in caplog.text
    assert rows.schema == pa.schema(
        [("name", pa.string(), False), ("at", pa.timestamp("us", tz="UTC"))]
    )
    assert rows.to_pylist() == [{"name": "a", "at": at}]
    assert read_where(spark, table, ["name"], {"name": "zz"}).num_rows == 0
