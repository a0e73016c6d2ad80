"""The ``femo`` database: create it, create tables from their specs, seed the dimensions."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import reduce
from string import Template
from typing import TYPE_CHECKING, Any, Final

from pyspark.sql.types import StructType

from femo.platform.delta_files import read_where
from femo.platform.errors import FemoError, MissingPrerequisiteError
from femo.platform.files import Markers
from femo.platform.schemas import (
    DIMENSION_TABLES,
    EXTERNAL_TABLES,
    INGEST_TABLES,
    ML_TABLES,
    PLATFORM_TABLES,
    SOURCES,
    TableSpec,
)
from femo.platform.settings import Settings
from femo.platform.sql import read_sql, run_sql, statement

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

log = logging.getLogger(__name__)

#: Every table init_catalog creates.
ALL_TABLES: tuple[TableSpec, ...] = (
    *DIMENSION_TABLES,
    *INGEST_TABLES,
    *EXTERNAL_TABLES,
    *ML_TABLES,
    *PLATFORM_TABLES,
)

#: What a source_id looks like: it becomes part of view names and partition paths.
SOURCE_ID = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

#: Seed queries (``sql/seed/*.sql``) merged into the dimension tables by :func:`init_catalog`.
SEEDS: dict[str, str] = {"emotions": "seed/emotions", "sources": "seed/sources"}

#: Columns filled when a seed row is first inserted, as SQL expressions.
SEED_INSERT_DEFAULTS: dict[str, dict[str, str]] = {
    "sources": {"registered_at": "current_timestamp()"},
}

#: Views every catalog has (``sql/views/*.sql``); ``images_<source>`` come from a template.
VIEWS: tuple[str, ...] = ("views/all_images", "views/faces_current", "views/all_data")

#: Where init_catalog leaves the fingerprint of the catalog it completed (:func:`ensure_catalog`).
CATALOG_MARKERS: Final = "_catalog"


class SchemaConflictError(FemoError):
    """An existing table has a column whose type differs from its spec."""


@dataclass(frozen=True)
class MergeResult:
    """Rows a :func:`merge_rows` call inserted, updated and deleted (all 0: nothing was
    committed)."""

    inserted: int
    updated: int
    deleted: int = 0


@dataclass(frozen=True)
class LocalRows:
    """A few rows held on the driver, for :func:`merge_rows` to diff there: tuples in the order
    of ``schema``'s columns."""

    schema: StructType
    rows: Sequence[tuple[Any, ...]]

    @classmethod
    def collected(cls, frame: DataFrame) -> LocalRows:
        """The rows of the small DataFrame ``frame`` (seed values, a handful of sources)."""
        return cls(frame.schema, [tuple(row) for row in frame.collect()])

    @classmethod
    def of(
        cls, spec: TableSpec, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
    ) -> LocalRows:
        """``rows`` holding ``spec``'s ``columns``, in that order."""
        return cls(StructType([spec.schema[c] for c in columns]), rows)


@dataclass(frozen=True)
class RowChanges:
    """How a table's rows must change to equal the wanted ones (:func:`row_changes`)."""

    inserted: list[tuple[Any, ...]]
    updated: list[tuple[Any, ...]]
    deleted: list[tuple[Any, ...]]  # keys

    @property
    def upserts(self) -> list[tuple[Any, ...]]:
        """The rows to MERGE: new ones and changed ones."""
        return [*self.inserted, *self.updated]


@dataclass(frozen=True)
class CatalogSummary:
    """What :func:`init_catalog` found and did."""

    database: str
    created: tuple[str, ...]
    evolved: tuple[str, ...]
    merged: dict[str, MergeResult]
    rows: dict[str, int]

    def line(self) -> str:
        """One-line summary for the job's output."""
        counts = ", ".join(f"{name} {n}" for name, n in self.rows.items())
        seeded = ", ".join(f"{name} +{m.inserted} ~{m.updated}" for name, m in self.merged.items())
        made = ", ".join(self.created) or "none"
        return f"database {self.database}: tables created {made}; seeded {seeded}; rows {counts}"


def use_database(spark: SparkSession, settings: Settings) -> None:
    """Create the database if needed and make it current, so SQL can name tables unqualified."""
    run_sql(spark, "ddl/database", {"database": settings.catalog.database})
    spark.catalog.setCurrentDatabase(settings.catalog.database)


def set_current_database(spark: SparkSession, settings: Settings) -> None:
    """Make the femo database current.

    Raises:
        MissingPrerequisiteError: it does not exist yet (``jobs/init_catalog.py`` creates it).
    """
    database = settings.catalog.database
    if not spark.catalog.databaseExists(database):
        raise MissingPrerequisiteError(
            f"database {database} does not exist in this catalog "
            f"(warehouse {settings.warehouse_dir}): run jobs/init_catalog.py first"
        )
    spark.catalog.setCurrentDatabase(database)


def missing_columns(existing: StructType, wanted: StructType) -> list[str]:
    """Columns of ``wanted`` absent from ``existing``.

    Raises:
        SchemaConflictError: a column exists with another type (evolution is additive only).
    """
    have = {f.name.lower(): f for f in existing.fields}
    missing = []
    for f in wanted.fields:
        old = have.get(f.name.lower())
        if old is None:
            missing.append(f.name)
        elif old.dataType != f.dataType:
            raise SchemaConflictError(
                f"column {f.name} is {old.dataType.simpleString()} in the table but "
                f"{f.dataType.simpleString()} in femo.platform.schemas: migrate it explicitly"
            )
    return missing


def ensure_table(spark: SparkSession, spec: TableSpec, database: str) -> str:
    """Create ``spec`` as a Delta table if absent; add columns a newer spec introduced.

    Returns:
        ``"created"``, ``"evolved"`` or ``"exists"``.
    """
    from delta.tables import DeltaTable

    qualified = f"{database}.{spec.name}"
    if not spark.catalog.tableExists(qualified):
        builder = (
            DeltaTable.createIfNotExists(spark)
            .tableName(qualified)
            .addColumns(spec.schema)
            .comment(spec.comment)
        )
        if spec.partition_by:
            builder = builder.partitionedBy(*spec.partition_by)
        for key, value in spec.properties.items():
            builder = builder.property(key, value)
        builder.execute()
        log.info("created table %s", qualified)
        return "created"
    existing = spark.table(qualified).schema
    added = missing_columns(existing, spec.schema)
    if not added:
        return "exists"
    fields = {f.name: f for f in spec.schema.fields}
    columns = ", ".join(
        f"`{name}` {fields[name].dataType.simpleString()} COMMENT "
        f"'{fields[name].metadata.get('comment', '').replace(chr(39), '')}'"
        for name in added
    )
    spark.sql(f"ALTER TABLE {qualified} ADD COLUMNS ({columns})")
    log.info("added columns %s to %s", added, qualified)
    return "evolved"


def merge_rows(
    spark: SparkSession,
    spec: TableSpec,
    database: str,
    source: DataFrame | LocalRows,
    insert_defaults: Mapping[str, str] | None = None,
    *,
    created: bool = False,
    stamps: Mapping[str, Any] | None = None,
    prune: Mapping[str, str] | None = None,
) -> MergeResult:
    """Upsert ``source`` into the table on ``spec.key``, committing only real changes: the one
    way femo diffs rows against a table and merges the difference.

    Rows of ``source`` that already stand in the table with equal values are dropped first, so a
    re-run on the same input adds no Delta version at all. The rest is MERGEd on the key, from a
    materialised source (the MERGE scans the rows it counted), insert-only when none of them has
    a stored key (one scan of the source: a full MERGE counts its source in a join that Spark
    drops when no stored file can match, and warns of 0 source rows in its first scan). Columns
    of the table that ``source`` lacks keep their value on update and take ``stamps``,
    ``insert_defaults`` (SQL expressions) or NULL on insert.

    Args:
        source: a DataFrame, diffed with Spark; or :class:`LocalRows`, diffed on the driver
            against the table read with delta-rs (:func:`row_changes`): for tables of a few
            dozen rows, where a Spark diff costs seconds of planning and this one starts no job.
        created: :func:`ensure_table` has just created the table, so it is empty and one append
            commits what the MERGE would (a fresh catalog's seeds: 25-35 s -> 15-17 s).
        stamps: values every written row gets, inserted or updated (a run id, a time taken
            once); not compared, so an unchanged row keeps the stamps of the run that wrote it.
        prune: the table mirrors ``source`` within the rows whose columns hold these values
            (``{}``: every row; ``source`` lies within them): after the MERGE, a second commit
            deletes the rows there whose key ``source`` lacks. The caller vouches that
            ``source`` is whole: a short read would delete what it missed. None: delete nothing.
    """
    qualified = f"{database}.{spec.name}"
    if created:
        if isinstance(source, LocalRows):
            source = spark.createDataFrame(list(source.rows), source.schema)
        return _append_to_new(spark, spec, qualified, source, insert_defaults or {}, stamps or {})
    if isinstance(source, LocalRows):
        return _merge_local(spark, spec, qualified, source, insert_defaults, stamps, prune)
    return _merge_frame(spark, spec, qualified, source, insert_defaults, stamps, prune)


def row_changes(
    current: Iterable[tuple[Any, ...]], wanted: Iterable[tuple[Any, ...]], key: Sequence[int]
) -> RowChanges:
    """Rows of ``wanted`` that ``current`` lacks (by the columns at ``key``), rows whose content
    differs, and keys of ``current`` that ``wanted`` no longer has. Pure; rows in ``wanted``'s
    order."""

    def key_of(row: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(row[i] for i in key)

    stored = {key_of(row): row for row in current}
    inserted: list[tuple[Any, ...]] = []
    updated: list[tuple[Any, ...]] = []
    seen = set()
    for row in wanted:
        seen.add(key_of(row))
        old = stored.get(key_of(row))
        if old is None:
            inserted.append(row)
        elif old != row:
            updated.append(row)
    return RowChanges(inserted, updated, [k for k in stored if k not in seen])


def _merge_local(
    spark: SparkSession,
    spec: TableSpec,
    qualified: str,
    source: LocalRows,
    insert_defaults: Mapping[str, str] | None,
    stamps: Mapping[str, Any] | None,
    prune: Mapping[str, str] | None,
) -> MergeResult:
    """:func:`merge_rows` of rows held on the driver, diffed there."""
    columns = source.schema.fieldNames()
    current = read_where(spark, qualified, columns, prune or {}).to_pylist()
    key = [columns.index(k) for k in spec.key]
    changes = row_changes((tuple(r[c] for c in columns) for r in current), source.rows, key)
    if changes.upserts:
        changed = spark.createDataFrame(changes.upserts, source.schema)
        _merge(spark, spec, qualified, changed, insert_defaults, stamps, bool(changes.updated))
    deleted = changes.deleted if prune is not None else []
    if deleted:
        keys = spark.createDataFrame(deleted, StructType([spec.schema[k] for k in spec.key]))
        _delete_matching(spark, spec, qualified, keys)
    return MergeResult(len(changes.inserted), len(changes.updated), len(deleted))


def _merge_frame(
    spark: SparkSession,
    spec: TableSpec,
    qualified: str,
    source: DataFrame,
    insert_defaults: Mapping[str, str] | None,
    stamps: Mapping[str, Any] | None,
    prune: Mapping[str, str] | None,
) -> MergeResult:
    """:func:`merge_rows` of a DataFrame, diffed with Spark: one pass over the stored rows
    finds the rows of ``source`` the table does not hold with equal values (new or changed,
    with whether their key is stored) and, with ``prune``, the stored keys ``source`` lacks."""
    from pyspark.sql import functions as F

    match: list[Column] = [F.col(c) == F.lit(v) for c, v in (prune or {}).items()]
    stored = spark.table(qualified).where(reduce(lambda a, b: a & b, match, F.lit(True)))
    stored = stored.select(*source.columns)
    keys = list(spec.key)
    stored_keys = stored.select(*keys).distinct().withColumn("_known", F.lit(True))
    plan = source.exceptAll(stored).join(stored_keys, keys, "left")
    plan = plan.withColumn("_stale", F.lit(False))
    if prune is not None:
        stale = stored.select(*keys).exceptAll(source.select(*keys))
        plan = plan.unionByName(stale.withColumn("_stale", F.lit(True)), allowMissingColumns=True)
    plan = plan.withColumn("_known", F.coalesce(F.col("_known"), F.lit(False))).localCheckpoint()
    counts = {
        (row["_stale"], row["_known"]): row["count"]
        for row in plan.groupBy("_stale", "_known").count().collect()
    }
    inserted, updated = counts.get((False, False), 0), counts.get((False, True), 0)
    deleted = counts.get((True, False), 0)
    if inserted or updated:
        changed = plan.where(~F.col("_stale")).select(*source.columns)
        _merge(spark, spec, qualified, changed, insert_defaults, stamps, updated > 0)
    if deleted:
        _delete_matching(spark, spec, qualified, plan.where(F.col("_stale")).select(*keys))
    return MergeResult(inserted, updated, deleted)


def _merge(
    spark: SparkSession,
    spec: TableSpec,
    qualified: str,
    changed: DataFrame,
    insert_defaults: Mapping[str, str] | None,
    stamps: Mapping[str, Any] | None,
    update: bool,
) -> None:
    """MERGE the new or changed rows ``changed`` on ``spec.key``: insert the new ones with
    ``stamps`` and ``insert_defaults``, and, if ``update``, set the others' columns and stamps."""
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    stamped: dict[str, str | Column] = {
        name: F.lit(value).cast(spec.schema[name].dataType)
        for name, value in (stamps or {}).items()
    }
    values: dict[str, str | Column] = {c: f"s.`{c}`" for c in changed.columns}
    inserts: dict[str, str | Column] = {**values, **(insert_defaults or {}), **stamped}
    merge = (
        DeltaTable.forName(spark, qualified)
        .alias("t")
        .merge(changed.alias("s"), spec.merge_condition())
    )
    if update:
        updates = {c: v for c, v in values.items() if c not in spec.key}
        merge = merge.whenMatchedUpdate(set={**updates, **stamped})
    merge.whenNotMatchedInsert(values=inserts).execute()


def _append_to_new(
    spark: SparkSession,
    spec: TableSpec,
    qualified: str,
    source: DataFrame,
    insert_defaults: Mapping[str, str],
    stamps: Mapping[str, Any],
) -> MergeResult:
    """:func:`merge_rows` into the empty table ``qualified``: ``source`` appended in one commit,
    columns it lacks filled with ``stamps``, ``insert_defaults`` or NULL, as on insert."""
    from pyspark.sql import functions as F

    def filler(name: str) -> Column:
        if name in stamps:
            return F.lit(stamps[name])
        return F.expr(insert_defaults.get(name, "NULL"))

    columns = [
        F.col(f"`{field.name}`")
        if field.name in source.columns
        else filler(field.name).cast(field.dataType).alias(field.name)
        for field in spec.schema.fields
    ]
    rows = source.select(*columns).collect()  # seed rows: a handful, made on the driver anyway
    if not rows:
        return MergeResult(0, 0)
    spark.createDataFrame(rows, spark.table(qualified).schema).write.format("delta").mode(
        "append"
    ).saveAsTable(qualified)
    return MergeResult(len(rows), 0)


def register_source(
    spark: SparkSession, database: str, source_id: str, kind: str, url: str | None = None
) -> bool:
    """Add ``source_id`` to ``sources`` if it is not there yet; True when it was added.

    Raises:
        FemoError: ``source_id`` is not a slug (it names views and partitions).
    """
    if not SOURCE_ID.match(source_id):
        raise FemoError(
            f"source name {source_id!r} must match {SOURCE_ID.pattern} "
            "(lower-case letters, digits, underscores)"
        )
    # Read on the driver: a Spark scan here is the job's first, which a cold JVM pays seconds for.
    known = read_where(spark, f"{database}.{SOURCES.name}", ["source_id"], {"source_id": source_id})
    if known.num_rows:
        return False
    row = LocalRows.of(
        SOURCES,
        ("source_id", "name", "kind", "url", "licence", "notes"),
        [(source_id, source_id, kind, url, None, "registered by ingest")],
    )
    merge_rows(spark, SOURCES, database, row, SEED_INSERT_DEFAULTS["sources"])
    return True


def registered_sources(spark: SparkSession, database: str) -> list[str]:
    """Every source_id in ``sources``, sorted (read on the driver)."""
    known = read_where(spark, f"{database}.{SOURCES.name}", ["source_id"], {})
    return sorted(known.column("source_id").to_pylist())


def refresh_views(spark: SparkSession, database: str) -> list[str]:
    """(Re)create ``all_images``, ``faces_current``, ``all_data`` (images with their emotion's
    FACS action units) and one ``images_<source_id>`` view per image source.
    Views live in the metastore only: no Delta commit."""
    spark.catalog.setCurrentDatabase(database)
    for view in VIEWS:
        run_sql(spark, view)
    template = Template(statement(read_sql("views/images_by_source")))
    names = [view.removeprefix("views/") for view in VIEWS]
    for row in run_sql(spark, "sources_with_images").collect():
        if SOURCE_ID.match(row.source_id):  # seeded or registered ids: always slugs
            spark.sql(template.substitute(source=row.source_id))
            names.append(source_view(row.source_id))
    return names


def source_view(source_id: str) -> str:
    """The name of ``source_id``'s view (``sql/views/images_by_source.sql`` makes it)."""
    return f"images_{source_id}"


def refresh_views_after(spark: SparkSession, database: str, source: str, added: int) -> bool:
    """:func:`refresh_views` after a run that added ``added`` images of ``source``, unless it
    added none and the source's view is there (then every view is current, and a scheduled run
    that found nothing new skips seconds of view analysis); True when the views were made."""
    if not added and spark.catalog.tableExists(f"{database}.{source_view(source)}"):
        return False
    refresh_views(spark, database)
    return True


def database_markers(spark: SparkSession, database: str, folder: str) -> Markers:
    """Markers in ``folder`` beside the tables (``<database location>/<folder>``), where every
    driver of a cluster sees them. Spark and Delta leave ``_`` folders alone."""
    location = spark.catalog.getDatabase(database).locationUri
    return Markers(f"{location.rstrip('/')}/{folder}")


def catalog_fingerprint() -> str:
    """Hex digest of everything :func:`init_catalog` makes: each table's spec and the SQL of
    the database, the seeds and the views. A femo whose catalog differs has another one."""
    digest = hashlib.sha256()
    for spec in ALL_TABLES:
        layout = (spec.name, spec.schema.json(), spec.comment, spec.partition_by)
        digest.update(repr((*layout, sorted(spec.properties.items()))).encode())
    digest.update(
        repr(sorted((k, sorted(v.items())) for k, v in SEED_INSERT_DEFAULTS.items())).encode()
    )
    for name in ("ddl/database", *SEEDS.values(), *VIEWS, "views/images_by_source"):
        digest.update(read_sql(name).encode())
    return digest.hexdigest()[:32]


def ensure_catalog(spark: SparkSession, settings: Settings) -> bool:
    """The catalog as this femo makes it, for jobs to call before they work: cheap where it is
    in place (the metastore and one listing; no Delta table read): the database, every table,
    and the fingerprint :func:`init_catalog` leaves when it completes. Otherwise runs
    :func:`init_catalog`. Unlike ``jobs/init_catalog.py`` it does not re-merge seed rows that
    someone edited by hand.

    Returns:
        True when it ran :func:`init_catalog`.
    """
    use_database(spark, settings)
    database = settings.catalog.database
    fingerprint = catalog_fingerprint()
    marked = fingerprint in database_markers(spark, database, CATALOG_MARKERS).names()
    tables = {row.tableName for row in run_sql(spark, "catalog_tables").collect()}
    if marked and {spec.name for spec in ALL_TABLES} <= tables:
        return False
    init_catalog(spark, settings)
    return True


def label_names(spark: SparkSession, database: str) -> dict[str, int]:
    """Every label name a source may use (lower case) and its emotion id."""
    spark.catalog.setCurrentDatabase(database)
    return {r.label: r.emotion_id for r in run_sql(spark, "label_names").collect()}


def upsert(
    spark: SparkSession, spec: TableSpec, database: str, rows: DataFrame, *, update: bool = True
) -> None:
    """MERGE ``rows`` into the table on ``spec.key``: insert the new ones, and update matches
    unless ``update`` is false (insert-only: existing rows are never touched)."""
    from delta.tables import DeltaTable

    merge = (
        DeltaTable.forName(spark, f"{database}.{spec.name}")
        .alias("t")
        .merge(rows.alias("s"), spec.merge_condition())
    )
    if update:
        merge = merge.whenMatchedUpdateAll()
    merge.whenNotMatchedInsertAll().execute()


def delete_keys(spark: SparkSession, spec: TableSpec, database: str, keys: DataFrame) -> None:
    """Delete the rows of the table whose key is in ``keys`` (no commit when none is)."""
    table = f"{database}.{spec.name}"
    if spark.table(table).join(keys, list(spec.key), "left_semi").isEmpty():
        return
    _delete_matching(spark, spec, table, keys)


def _delete_matching(spark: SparkSession, spec: TableSpec, qualified: str, keys: DataFrame) -> None:
    """Delete the rows of ``qualified`` whose key is in ``keys`` (a MERGE, one commit)."""
    from delta.tables import DeltaTable

    DeltaTable.forName(spark, qualified).alias("t").merge(
        keys.alias("s"), spec.merge_condition()
    ).whenMatchedDelete().execute()


def init_catalog(spark: SparkSession, settings: Settings) -> CatalogSummary:
    """Create the database and tables, seed the dimensions and create the views. Safe to run
    any number of times: a re-run commits nothing."""
    use_database(spark, settings)
    database = settings.catalog.database
    outcomes = {spec.name: ensure_table(spark, spec, database) for spec in ALL_TABLES}
    merged = {
        spec.name: merge_rows(
            spark,
            spec,
            database,
            LocalRows.collected(run_sql(spark, SEEDS[spec.name])),
            SEED_INSERT_DEFAULTS.get(spec.name),
            created=outcomes[spec.name] == "created",
        )
        for spec in DIMENSION_TABLES
    }
    refresh_views(spark, database)
    rows = {
        spec.name: read_where(spark, f"{database}.{spec.name}", spec.key[:1], {}).num_rows
        for spec in DIMENSION_TABLES
    }
    markers = database_markers(spark, database, CATALOG_MARKERS)
    fingerprint = catalog_fingerprint()
    markers.put(fingerprint)
    markers.drop([name for name in markers.names() if name != fingerprint])
    return CatalogSummary(
        database=database,
        created=tuple(n for n, o in outcomes.items() if o == "created"),
        evolved=tuple(n for n, o in outcomes.items() if o == "evolved"),
        merged=merged,
        rows=rows,
    )
