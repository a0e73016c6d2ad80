"""Table schemas: the one place columns are defined.

Each table is a :class:`TableSpec` constant. :func:`femo.catalog.ensure_table` creates the Delta
table from it (``DeltaTable.createIfNotExists(...).addColumns(schema)``) and adds columns that a
newer spec introduced: schema evolution is additive and explicit. Column comments live in the
field metadata, so ``DESCRIBE TABLE`` shows analysts what each column means.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql.types import (
    ArrayType,
    DataType,
    IntegerType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)


def col(name: str, dtype: DataType, comment: str, *, nullable: bool = True) -> StructField:
    """A column with a comment (kept in the field metadata, shown by ``DESCRIBE``)."""
    return StructField(name, dtype, nullable, {"comment": comment})


@dataclass(frozen=True)
class TableSpec:
    """A Delta table femo owns: its name in the ``femo`` database, schema and layout."""

    name: str
    schema: StructType
    comment: str
    key: tuple[str, ...]
    partition_by: tuple[str, ...] = ()
    properties: dict[str, str] = field(default_factory=dict)


EMOTIONS = TableSpec(
    name="emotions",
    comment="Emotion classes in FER-2013 order plus contempt; every source maps its labels here.",
    key=("emotion_id",),
    schema=StructType([
        col("emotion_id", IntegerType(), "FER-2013 class id (0-6), 7 = contempt", nullable=False),
        col("name", StringType(), "canonical lower-case name", nullable=False),
        col("synonyms", ArrayType(StringType(), False),
            "lower-case label names that datasets use for this emotion, the name included"),
        col("valence", StringType(), "positive, negative or neutral"),
    ]),
)

SOURCES = TableSpec(
    name="sources",
    comment="Where data comes from: one row per dataset, API or page femo ingests.",
    key=("source_id",),
    schema=StructType([
        col("source_id", StringType(), "short stable identifier, e.g. fer2013", nullable=False),
        col("name", StringType(), "human-readable name"),
        col("kind", StringType(),
            "image_folders, fer_csv, image_api, web_search, web_page or csv"),
        col("url", StringType(), "where the data is published"),
        col("licence", StringType(), "licence or terms of use as stated by the publisher"),
        col("notes", StringType(), "anything an analyst should know"),
        col("registered_at", TimestampType(), "when femo first registered the source"),
    ]),
)

#: Dimension tables created by ``jobs/init_catalog.py``.
DIMENSION_TABLES: tuple[TableSpec, ...] = (EMOTIONS, SOURCES)
