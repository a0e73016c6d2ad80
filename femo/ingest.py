"""Ingest an image collection into ``images`` and ``quarantine``.

The per-record work is :func:`inspect_files_frame` / :func:`inspect_csv_frame` (pandas in,
pandas out, no Spark), wrapped into iterator-form ``mapInPandas`` transforms. The Spark side:

1. list the collection with the ``binaryFile`` source *without* its content;
2. anti-join the listing with what ``images`` and ``quarantine`` already hold for the source,
   by (origin, size, modification time): known files are skipped before anything is read;
3. read and inspect only the new files; files over the size cap are quarantined unread;
4. MERGE accepted rows into ``images`` and rejected rows into ``quarantine`` on
   (source, path); a path that changed side is removed from the other table.

A re-run on the same input finds nothing new and writes nothing. A run killed half way leaves
either nothing or whole MERGE commits behind, and the re-run picks up exactly what is missing.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import reduce
from typing import TYPE_CHECKING, Any, Final

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    BinaryType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from femo.catalog import delete_keys, label_names, upsert
from femo.fer_csv import FerRow, is_header, parse_line
from femo.images import EMPTY_FILE, FILE_TOO_LARGE, Limits, Rejection, inspect_image
from femo.layout import LabelMap, place, relative_path
from femo.schemas import IMAGE_FACTS, IMAGES, QUARANTINE, TableSpec
from femo.settings import IngestSettings

if TYPE_CHECKING:
    from pyspark.sql import Column, SparkSession

log = logging.getLogger(__name__)

ACCEPTED: Final = "accepted"
#: A listed file of which nothing could be read (unreadable, vanished since listing, or empty
#: CSV): recorded, never dropped.
UNREADABLE: Final = "unreadable"
QUARANTINED: Final = "quarantined"
LAYOUTS: Final = ("folders", "fer_csv")

#: What the inspect transforms produce for every input: a status, and the columns of either
#: table (those that do not apply are null).
RESULT_SCHEMA: Final = StructType(
    [
        StructField("status", StringType(), False),
        StructField("reason", StringType()),
        StructField("detail", StringType()),
        StructField("path", StringType(), False),
        StructField("label", StringType()),
        StructField("label_id", IntegerType()),
        StructField("split", StringType()),
        *IMAGE_FACTS.fields,
        StructField("content", BinaryType()),
        StructField("origin", StringType(), False),
        StructField("origin_size", LongType()),
        StructField("origin_modified_at", TimestampType()),
    ]
)
RESULT_COLUMNS: Final = tuple(RESULT_SCHEMA.fieldNames())


@dataclass(frozen=True)
class InspectOptions:
    """What the per-record functions need besides the bytes; small and picklable."""

    root: str
    split_from: str
    labels: Mapping[str, int]
    limits: Limits = field(default_factory=Limits)


def _record(base: dict[str, Any], outcome: Rejection | dict[str, Any]) -> dict[str, Any]:
    if isinstance(outcome, Rejection):
        return {**base, "status": QUARANTINED, "reason": outcome.reason, "detail": outcome.detail}
    return {**base, **outcome, "status": ACCEPTED}


def _frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame.from_records(records, columns=list(RESULT_COLUMNS))


def inspect_one(
    data: bytes, label_id: int | Rejection, limits: Limits
) -> Rejection | dict[str, Any]:
    """Label id and image facts of one file, or why it is rejected (label first: no decode for
    a file whose label is unknown)."""
    if isinstance(label_id, Rejection):
        return label_id
    facts = inspect_image(data, limits)
    if isinstance(facts, Rejection):
        return facts
    return {"label_id": label_id, **facts.as_dict(), "content": data}


def inspect_files_frame(
    frame: pd.DataFrame, options: InspectOptions, labels: LabelMap | None = None
) -> pd.DataFrame:
    """Inspect files listed by ``binaryFile`` (path, modificationTime, length, content)."""
    labels = labels or LabelMap.from_names(options.labels)
    records = []
    for path, modified, length, content in zip(
        frame["path"], frame["modificationTime"], frame["length"], frame["content"], strict=True
    ):
        base: dict[str, Any] = {
            "path": path,
            "origin": path,
            "origin_size": int(length),
            "origin_modified_at": modified,
        }
        placed = place(relative_path(path, options.root), options.split_from)
        if isinstance(placed, Rejection):
            records.append(_record(base, placed))
            continue
        base.update(label=placed.label, split=placed.split)
        records.append(
            _record(base, inspect_one(bytes(content), labels.resolve(placed.label), options.limits))
        )
    return _frame(records)


def inspect_csv_frame(
    frame: pd.DataFrame, options: InspectOptions, labels: LabelMap | None = None
) -> pd.DataFrame:
    """Inspect lines of a FER-2013 CSV (line, line_no, origin, origin_size, origin_modified_at).

    The header line is dropped; every other line becomes an image or a quarantine row whose
    path is ``<csv>#line=<n>`` (1-based, the header being line 1).
    """
    del labels  # FER-2013 rows carry emotion ids, not names
    records = []
    for line, line_no, origin, size, modified in zip(
        frame["line"],
        frame["line_no"],
        frame["origin"],
        frame["origin_size"],
        frame["origin_modified_at"],
        strict=True,
    ):
        if line_no == 0 and is_header(line):
            continue
        base: dict[str, Any] = {
            "path": f"{origin}#line={int(line_no) + 1}",
            "origin": origin,
            "origin_size": int(size),
            "origin_modified_at": modified,
        }
        parsed = parse_line(line)
        if isinstance(parsed, FerRow):
            base.update(label=parsed.label, split=parsed.split)
            # FER-2013's numeric labels are femo's emotion ids by design.
            outcome: Rejection | dict[str, Any] = inspect_one(
                parsed.png, parsed.emotion_id, options.limits
            )
        else:
            outcome = parsed
        records.append(_record(base, outcome))
    return _frame(records)


def inspect_with(
    core: Callable[[pd.DataFrame, InspectOptions, LabelMap], pd.DataFrame],
    options: InspectOptions,
) -> Callable[[DataFrame], DataFrame]:
    """A ``DataFrame -> DataFrame`` transform running ``core`` in iterator-form mapInPandas;
    the label map is built once per task."""

    def run(frames: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        labels = LabelMap.from_names(options.labels)
        for frame in frames:
            yield core(frame, options, labels)

    def transform(df: DataFrame) -> DataFrame:
        return df.mapInPandas(run, RESULT_SCHEMA)

    return transform


# Spark side ------------------------------------------------------------------------------


def inspect_options(
    spark: SparkSession, database: str, root: str, split_from: str, guards: IngestSettings
) -> InspectOptions:
    """Options for the inspect transforms: label names from the catalog, limits from settings."""
    return InspectOptions(
        root=root,
        split_from=split_from,
        labels=label_names(spark, database),
        limits=Limits(guards.max_pixels, guards.min_side, guards.grayscale_tolerance),
    )


_FINGERPRINT: Final = ("origin", "origin_size", "origin_modified_at")


def configure_scans(spark: SparkSession, open_cost_bytes: int) -> None:
    """Pack many small files into each scan task, and make a few tasks per core so both cores
    stay busy to the end (Spark's defaults give 32 small files per task or one task per core)."""
    spark.conf.set("spark.sql.files.openCostInBytes", str(open_cost_bytes))
    spark.conf.set(
        "spark.sql.files.minPartitionNum", str(4 * spark.sparkContext.defaultParallelism)
    )


def scan_files(spark: SparkSession, root: str) -> DataFrame:
    """The ``binaryFile`` scan of ``root`` (recursive). Reusing one scan for the listing and the
    content read lists the folder once. Files that cannot be read are skipped by the scan and
    recorded as unreadable by :func:`unread_rows`, never fatal."""
    return (
        spark.read.format("binaryFile")
        .option("recursiveFileLookup", "true")
        .option("ignoreCorruptFiles", "true")
        .option("ignoreMissingFiles", "true")
        .load(root)
    )


def list_files(files: DataFrame) -> DataFrame:
    """Every file of the scan ``files`` as origin, origin_size, origin_modified_at; no content
    is read.

    Spark's file scans leave out zero-byte files, so when the file index (``inputFiles``)
    holds more files than the scan, the listing is completed from it; those files get size 0
    and modification time 0, a stable fingerprint, so a re-run skips them like any known file.
    The result is materialised (``localCheckpoint``).
    """
    spark = files.sparkSession
    scanned = files.select(
        F.col("path").alias("origin"),
        F.col("length").alias("origin_size"),
        F.col("modificationTime").alias("origin_modified_at"),
    ).localCheckpoint()
    paths = files.inputFiles()
    if len(paths) == scanned.count():
        return scanned
    # The index writes local files as file:///x, the scan as file:/x.
    indexed = spark.createDataFrame([(p,) for p in paths], "origin string").select(
        F.regexp_replace("origin", "^file:///", "file:/").alias("origin")
    )
    empty = indexed.join(scanned, "origin", "left_anti").select(
        "origin",
        F.lit(0).cast("long").alias("origin_size"),
        F.timestamp_seconds(F.lit(0)).alias("origin_modified_at"),
    )
    return scanned.unionByName(empty).localCheckpoint()


def known_origins(spark: SparkSession, database: str, source: str) -> DataFrame:
    """Fingerprints of every origin already in ``images`` or ``quarantine`` for ``source``."""
    frames = [
        spark.table(f"{database}.{spec.name}")
        .where(F.col("source") == source)
        .select(*_FINGERPRINT)
        for spec in (IMAGES, QUARANTINE)
    ]
    return frames[0].unionByName(frames[1]).distinct()


def origin_rejections(origins: DataFrame, reason: str, detail: Column) -> DataFrame:
    """Quarantine results for whole listed files (``origins``: the listing's columns)."""
    columns = {name: F.lit(None).cast(RESULT_SCHEMA[name].dataType) for name in RESULT_COLUMNS}
    columns.update(
        status=F.lit(QUARANTINED),
        reason=F.lit(reason),
        detail=detail,
        path=F.col("origin"),
        origin=F.col("origin"),
        origin_size=F.col("origin_size"),
        origin_modified_at=F.col("origin_modified_at"),
    )
    return origins.select(*[columns[name].alias(name) for name in RESULT_COLUMNS])


def _readable(max_file_bytes: int) -> Column:
    """Listed files worth reading: not empty, not over the size cap."""
    return (F.col("origin_size") > 0) & (F.col("origin_size") <= max_file_bytes)


def unreadable_rows(new: DataFrame, max_file_bytes: int) -> DataFrame:
    """Quarantine results for listed files judged by their size alone, never read: empty ones
    and those over the size cap."""
    empty = origin_rejections(new.where(F.col("origin_size") == 0), EMPTY_FILE, F.lit("0 bytes"))
    big = origin_rejections(
        new.where(F.col("origin_size") > max_file_bytes),
        FILE_TOO_LARGE,
        F.format_string(f"%d bytes > {max_file_bytes}", F.col("origin_size")),
    )
    return empty.unionByName(big)


def unread_rows(new: DataFrame, results: DataFrame, max_file_bytes: int) -> DataFrame:
    """Quarantine results for readable-looking new files that produced no result at all: the
    scan skipped them (unreadable, or gone since the listing) or, for a CSV, it held no line."""
    unread = new.where(_readable(max_file_bytes)).join(
        results.select("origin").distinct(), "origin", "left_anti"
    )
    return origin_rejections(
        unread, UNREADABLE, F.lit("nothing could be read from it (unreadable, gone or empty)")
    )


def read_new_files(files: DataFrame, new: DataFrame, max_file_bytes: int, since: Any) -> DataFrame:
    """Content of the new files only. ``length`` and ``modificationTime`` filters are pushed
    into the ``binaryFile`` scan ``files``, so old and oversized files are not read."""
    wanted = new.where(_readable(max_file_bytes)).select(
        F.col("origin").alias("path"),
        F.col("origin_size").alias("length"),
        F.col("origin_modified_at").alias("modificationTime"),
    )
    scan = files.where((F.col("length") <= max_file_bytes) & (F.col("modificationTime") >= since))
    return scan.join(F.broadcast(wanted), ["path", "length", "modificationTime"], "left_semi")


def read_csv_lines(spark: SparkSession, origin: Any) -> DataFrame:
    """Lines of one CSV (``origin``: a row of the listing) with their 0-based line numbers
    (stable: file order) and the origin's fingerprint."""
    lines = (
        spark.read.option("ignoreCorruptFiles", "true")
        .option("ignoreMissingFiles", "true")
        .text(origin.origin)
    )
    numbered = lines.rdd.zipWithIndex().map(lambda pair: (pair[0][0], pair[1]))
    return spark.createDataFrame(numbered, "line string, line_no long").select(
        "line",
        "line_no",
        F.lit(origin.origin).alias("origin"),
        F.lit(origin.origin_size).alias("origin_size"),
        F.lit(origin.origin_modified_at).cast("timestamp").alias("origin_modified_at"),
    )


def table_rows(
    results: DataFrame, spec: TableSpec, status: str, source: str, run_id: str
) -> DataFrame:
    """Results of one status shaped as rows of ``spec``."""
    stamp = "ingested_at" if spec is IMAGES else "seen_at"
    extra = {"source": F.lit(source), "run_id": F.lit(run_id), stamp: F.current_timestamp()}
    return results.where(F.col("status") == status).select(
        *[
            (extra[f.name] if f.name in extra else F.col(f.name)).cast(f.dataType).alias(f.name)
            for f in spec.schema.fields
        ]
    )


@dataclass
class IngestSummary:
    """Outcome of one ingest run."""

    source: str
    listed: int = 0
    skipped: int = 0
    accepted: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        """``accepted N, quarantined M (reason k, ...), skipped K already ingested``"""
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(self.quarantined.items()))
        total = sum(self.quarantined.values())
        return (
            f"{self.source}: accepted {self.accepted}, quarantined {total}"
            f"{f' ({reasons})' if reasons else ''}, skipped {self.skipped} already ingested"
        )


def write_results(
    spark: SparkSession,
    results: DataFrame,
    database: str,
    source: str,
    run_id: str,
    summary: IngestSummary,
) -> None:
    """Commit a run's results and count them into ``summary``."""
    counts = results.groupBy("status", "reason").count().collect()
    for row in counts:
        if row.status == ACCEPTED:
            summary.accepted += row["count"]
        else:
            summary.quarantined[row.reason] += row["count"]
    if summary.accepted:
        accepted = table_rows(results, IMAGES, ACCEPTED, source, run_id)
        upsert(spark, IMAGES, database, accepted)
        delete_keys(spark, QUARANTINE, database, accepted.select(*QUARANTINE.key))
    if summary.quarantined:
        rejected = table_rows(results, QUARANTINE, QUARANTINED, source, run_id)
        upsert(spark, QUARANTINE, database, rejected)
        delete_keys(spark, IMAGES, database, rejected.select(*IMAGES.key))


def ingest(
    spark: SparkSession,
    database: str,
    source: str,
    root: str,
    layout: str,
    options: InspectOptions,
    guards: IngestSettings,
    run_id: str,
) -> IngestSummary:
    """Ingest the collection at ``root`` for ``source``; see the module docstring.

    The listing, the new files and the inspected rows are materialised with
    ``localCheckpoint``: the new files' plan reads ``images`` and ``quarantine``, and a cached
    plan would be recomputed against the tables as this very run changes them (the files it
    just wrote would no longer look new).
    """
    summary = IngestSummary(source)
    max_file_bytes = guards.max_file_bytes
    configure_scans(spark, guards.open_cost_bytes)
    files = scan_files(spark, root)
    listing = list_files(files)
    new = listing.join(
        known_origins(spark, database, source), list(_FINGERPRINT), "left_anti"
    ).localCheckpoint()
    fresh = new.count()
    summary.listed = listing.count()
    summary.skipped = summary.listed - fresh
    log.info("%s: %d files listed, %d new", source, summary.listed, fresh)
    if not fresh:
        return summary
    if layout == "folders":
        since = new.agg(F.min("origin_modified_at")).first()[0]  # type: ignore[index]
        content = read_new_files(files, new, max_file_bytes, since)
        inspected = content.transform(inspect_with(inspect_files_frame, options))
    else:
        csvs = new.where(_readable(max_file_bytes)).collect()
        frames = [
            read_csv_lines(spark, origin).transform(inspect_with(inspect_csv_frame, options))
            for origin in csvs
        ]
        inspected = (
            reduce(DataFrame.unionByName, frames)
            if frames
            else spark.createDataFrame([], RESULT_SCHEMA)
        )
    inspected = inspected.localCheckpoint()
    # Built only from checkpointed frames: no Delta table in its plan, safe to reuse.
    results = inspected.unionByName(unreadable_rows(new, max_file_bytes)).unionByName(
        unread_rows(new, inspected, max_file_bytes)
    )
    write_results(spark, results, database, source, run_id, summary)
    return summary
