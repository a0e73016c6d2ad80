"""Ingest an image collection into ``images`` and ``quarantine``.

The per-record work is :func:`inspect_files_frame` / :func:`inspect_csv_frame` (pandas in,
pandas out, no Spark), wrapped into iterator-form ``mapInPandas`` transforms. The Spark side:

1. list the collection on the driver (:mod:`femo.platform.files`), and drop every file whose
   fingerprint (origin, size, modification time) ``ingested_files`` already holds for the
   source: known files are skipped before anything is read;
2. spread the new files over ``ingest.tasks_per_core`` tasks per core, each round of tasks
   taking half of what is left (:func:`task_sizes`); each task reads its
   files and inspects them (folders), or Spark reads the new CSVs' lines (fer_csv);
3. leave a marker for the run (:func:`run_markers`), remove the rows that new files left in
   ``images`` and ``quarantine`` (a changed file's, or a killed run's: looked for only when
   a file changed or another run's marker is still there), then add the accepted rows to
   ``images`` in one pass over the files: each task writes its accepted rows into one Parquet
   file of the table and returns the file's description (:mod:`femo.platform.delta_files`: the image
   bytes never cross into the JVM), reports what it rejected, and how many rows each file
   gave, through an accumulator (:class:`Tally`); the driver commits the tasks' files to
   ``images`` in one Delta commit, then appends those rejections to ``quarantine``;
4. append one ``ingested_files`` row per new file, last: a file counts as ingested only once
   all its rows are committed; then drop the marker.

A re-run on the same input finds nothing new and writes nothing. A run killed between two
commits leaves its marker and files without an ``ingested_files`` row; the next run sees the
marker, removes what those files left and writes them again, so every file ends up exactly
once. One ingest per source at a time: appends do not see each other, so two concurrent runs
over the same new files would both write them. Rows deleted from ``ingested_files`` by hand
make their files new again, but their ``images`` rows are only replaced when a marker or a
changed fingerprint says so: delete a file's rows from all three tables to ingest it again.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import reduce
from typing import TYPE_CHECKING, Any, Final

import cv2
import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark import AccumulatorParam, TaskContext
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    BinaryType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from femo.ingest.fer_csv import FerRow, is_header, parse_line
from femo.ingest.images import EMPTY_FILE, FILE_TOO_LARGE, Limits, Rejection, inspect_image
from femo.ingest.layout import LabelMap, place, relative_path
from femo.platform.catalog import database_markers, label_names
from femo.platform.delta_files import (
    FileTarget,
    append_rows,
    commit_files,
    file_target,
    read_where,
    write_part,
)
from femo.platform.errors import RunFailedError
from femo.platform.files import (
    LISTING_COLUMNS,
    Collection,
    LinkError,
    Listed,
    Markers,
    canonical,
    entries,
    list_files,
    unseen,
)
from femo.platform.schemas import IMAGE_FACTS, IMAGES, INGESTED_FILES, QUARANTINE, TableSpec
from femo.platform.settings import IngestSettings

if TYPE_CHECKING:
    from pyspark import Accumulator
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

ACCEPTED: Final = "accepted"
#: A listed file of which nothing could be read (unreadable, vanished since listing, or a CSV
#: without a data line): recorded, never dropped.
UNREADABLE: Final = "unreadable"
QUARANTINED: Final = "quarantined"
LAYOUTS: Final = ("folders", "fer_csv")

#: A listing as Spark rows (:data:`femo.platform.files.LISTING_COLUMNS`).
LISTING_SCHEMA: Final = StructType(
    [
        StructField("origin", StringType(), False),
        StructField("origin_size", LongType(), False),
        StructField("origin_modified_ms", LongType(), False),
    ]
)

#: What the inspect transforms produce for every input: a status, and the columns of either
#: table (those that do not apply are null). The origin's modification time stays in
#: milliseconds until :func:`table_frame`.
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
        *LISTING_SCHEMA.fields,
    ]
)
RESULT_COLUMNS: Final = tuple(RESULT_SCHEMA.fieldNames())

#: Reads the bytes of one origin, given its listed size; raises OSError when it cannot.
Reader = Callable[[str, int], bytes]


@dataclass(frozen=True)
class InspectOptions:
    """What the per-record functions need besides the bytes; small and picklable."""

    root: str
    split_from: str
    labels: Mapping[str, int]
    limits: Limits = field(default_factory=Limits)
    max_file_bytes: int = 50_000_000


def _record(base: dict[str, Any], outcome: Rejection | dict[str, Any]) -> dict[str, Any]:
    if isinstance(outcome, Rejection):
        return {**base, "status": QUARANTINED, "reason": outcome.reason, "detail": outcome.detail}
    return {**base, **outcome, "status": ACCEPTED}


def _origin(origin: str, size: int | None, modified_ms: int | None) -> dict[str, Any]:
    """The result columns of a whole origin: a listed file, a URL (its path is its origin)."""
    return {
        "path": origin,
        "origin": origin,
        "origin_size": None if size is None else int(size),
        "origin_modified_ms": None if modified_ms is None else int(modified_ms),
    }


def rejection_record(
    origin: str,
    why: Rejection,
    size: int | None = None,
    modified_ms: int | None = None,
    label: str | None = None,
) -> dict[str, Any]:
    """The result (a :data:`RESULT_SCHEMA` record) of a whole origin rejected: a listed file, a
    downloaded URL. Every quarantine row femo writes starts as such a result and becomes a row
    through :func:`quarantine_rows` (or :func:`quarantine_frame` in Spark)."""
    return _record({**_origin(origin, size, modified_ms), "label": label}, why)


def results_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Result records as a frame of :data:`RESULT_SCHEMA`'s columns (absent ones empty)."""
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


def size_rejection(size: int, max_bytes: int) -> Rejection | None:
    """Why a file of ``size`` bytes is not worth reading (empty, over the cap), if it is not."""
    if size == 0:
        return Rejection(EMPTY_FILE, "0 bytes")
    if size > max_bytes:
        return Rejection(FILE_TOO_LARGE, f"{size} bytes > {max_bytes}")
    return None


def read_checked(origin: str, size: int, read: Reader, max_bytes: int) -> bytes | Rejection:
    """The bytes of ``origin``, or why none can be used (unreadable, gone, empty or over the cap
    now, whatever the listing said)."""
    try:
        data = read(origin, size)
    except LinkError as err:
        return Rejection(err.reason, str(err))
    except OSError as err:
        return Rejection(UNREADABLE, f"cannot read: {err}")
    return size_rejection(len(data), max_bytes) or data


def inspect_files_frame(
    frame: pd.DataFrame, options: InspectOptions, labels: LabelMap, read: Reader
) -> pd.DataFrame:
    """Read and inspect listed files (:data:`femo.platform.files.LISTING_COLUMNS`): one result each.

    Files judged by their listed size (empty, over ``max_file_bytes``) or by where they sit
    (no or unknown label) are never read.
    """
    records = []
    for origin, size, modified in zip(
        frame["origin"], frame["origin_size"], frame["origin_modified_ms"], strict=True
    ):
        base = _origin(origin, size, modified)
        outcome: Rejection | dict[str, Any]
        placed = place(relative_path(origin, options.root), options.split_from)
        unread = size_rejection(int(size), options.max_file_bytes)
        if isinstance(placed, Rejection):
            outcome = unread or placed
        else:
            base.update(label=placed.label, split=placed.split)
            label_id = labels.resolve(placed.label)
            if unread is not None:
                outcome = unread
            elif isinstance(label_id, Rejection):
                outcome = label_id
            else:
                data = read_checked(origin, int(size), read, options.max_file_bytes)
                outcome = (
                    data
                    if isinstance(data, Rejection)
                    else inspect_one(data, label_id, options.limits)
                )
        records.append(_record(base, outcome))
    return results_frame(records)


def inspect_csv_frame(
    frame: pd.DataFrame, options: InspectOptions, labels: LabelMap, read: Reader
) -> pd.DataFrame:
    """Inspect lines of a FER-2013 CSV (line, line_no, origin, origin_size,
    origin_modified_ms).

    The header line is dropped; every other line becomes an image or a quarantine row whose
    path is ``<csv>#line=<n>`` (1-based, the header being line 1).
    """
    del labels, read  # FER-2013 rows carry emotion ids, not names; Spark read the lines
    records = []
    for line, line_no, origin, size, modified in zip(
        frame["line"],
        frame["line_no"],
        frame["origin"],
        frame["origin_size"],
        frame["origin_modified_ms"],
        strict=True,
    ):
        if line_no == 0 and is_header(line):
            continue
        base = {**_origin(origin, size, modified), "path": f"{origin}#line={int(line_no) + 1}"}
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
    return results_frame(records)


#: A per-record core: a batch of inputs, the options, the task's label map and reader.
Core = Callable[[pd.DataFrame, InspectOptions, LabelMap, Reader], pd.DataFrame]

#: The result columns a quarantine row keeps (an accepted row's go to ``images``).
REJECTED_COLUMNS: Final = (
    "status",
    "reason",
    "detail",
    "path",
    "label",
    "split",
    *LISTING_SCHEMA.fieldNames(),
)


@dataclass
class Tally:
    """What inspect tasks report besides the image rows: how many rows each origin gave to
    ``images`` in each task (``accepted[(origin, partition)]``, 0 for an origin whose every row
    was rejected) and the rejected results by path (:data:`REJECTED_COLUMNS`).

    Merging replaces entries by key instead of adding them up, so a task that Spark runs again
    (a lost executor, a retried stage) reports the same entries and cannot count twice.
    """

    accepted: dict[tuple[str, int], int] = field(default_factory=dict)
    rejected: dict[str, dict[str, Any]] = field(default_factory=dict)

    def merge(self, other: Tally) -> Tally:
        """Add ``other``'s entries to this tally (in place) and return it."""
        self.accepted.update(other.accepted)
        self.rejected.update(other.rejected)
        return self

    def add_results(self, results: pd.DataFrame, partition: int) -> None:
        """Count one batch of task ``partition``'s results (:data:`RESULT_SCHEMA`) into this
        tally, adding to what the task's earlier batches gave."""
        accepted = results["status"] == ACCEPTED
        for origin, ok in zip(results["origin"], accepted, strict=True):
            key = (str(origin), partition)
            self.accepted[key] = self.accepted.get(key, 0) + int(ok)
        for record in results.loc[~accepted, list(REJECTED_COLUMNS)].to_dict("records"):
            self.rejected[str(record["path"])] = {str(k): v for k, v in record.items()}

    def origins(self) -> set[str]:
        """Every origin that gave a row."""
        return {origin for origin, _ in self.accepted}

    def counts_frame(self) -> pd.DataFrame:
        """Rows per origin, status and reason (origin, status, reason, count)."""
        accepted: Counter[str] = Counter()
        for (origin, _), n in self.accepted.items():
            accepted[origin] += n
        rejected = Counter((r["origin"], str(r["reason"])) for r in self.rejected.values())
        return pd.DataFrame.from_records(
            [(o, ACCEPTED, None, n) for o, n in accepted.items() if n]
            + [(o, QUARANTINED, why, n) for (o, why), n in rejected.items()],
            columns=["origin", "status", "reason", "count"],
        )

    def rejected_frame(self) -> pd.DataFrame:
        """The rejected results as a :data:`RESULT_SCHEMA` frame."""
        return results_frame(list(self.rejected.values()))


class TallyParam(AccumulatorParam[Tally]):
    """Spark accumulator parameter for :class:`Tally` (merges by key)."""

    def zero(self, value: Tally) -> Tally:
        """An empty tally."""
        return Tally()

    def addInPlace(self, value1: Tally, value2: Tally) -> Tally:
        """``value1`` with ``value2``'s entries."""
        return value1.merge(value2)


def collection_reader(root: str, max_bytes: int) -> Reader:
    """A reader of origins under ``root`` that opens the filesystem on first use (once per
    task, never on the driver)."""
    opened: list[Collection] = []

    def read(origin: str, size: int) -> bytes:
        if not opened:
            opened.append(Collection.open(root))
        return opened[0].read(origin, size, max_bytes)

    return read


def table_frame(frame: pd.DataFrame, spec: TableSpec, values: Mapping[str, Any]) -> pd.DataFrame:
    """``frame`` (results or a listing, with ``origin_modified_ms``) as rows of ``spec``:
    ``values`` where given, else the column of that name."""
    return frame.assign(
        **values,
        origin_modified_at=pd.to_datetime(frame["origin_modified_ms"], unit="ms", utc=True),
    )[list(spec.schema.fieldNames())]


def image_rows(
    results: pd.DataFrame, source: str, run_id: str, ingested_at: datetime
) -> pd.DataFrame:
    """The accepted results (:data:`RESULT_SCHEMA`) as rows of ``images``."""
    accepted = results[results["status"] == ACCEPTED]
    values = {"source": source, "run_id": run_id, "ingested_at": pd.Timestamp(ingested_at)}
    return table_frame(accepted, IMAGES, values)


@dataclass(frozen=True)
class ImageFiles:
    """Where and as what a run's inspect tasks write the accepted images: Parquet files of
    ``images`` (:mod:`femo.platform.delta_files`) that the driver commits once every task is
    done."""

    target: FileTarget
    source: str
    run_id: str
    ingested_at: datetime

    def write(self, results: Iterable[pd.DataFrame]) -> list[dict[str, Any]]:
        """Write the accepted rows of ``results`` into one file; its ``AddFile`` (if any)."""
        rows = (image_rows(r, self.source, self.run_id, self.ingested_at) for r in results)
        return write_part(self.target, rows)


def task_sizes(files: int, cores: int, rounds: int) -> list[int]:
    """How many of ``files`` each task inspects, in the order Spark starts them: ``rounds``
    rounds of one task per core, each round taking half of what is left and the last round
    the rest ("factoring"). Spark gives the next task to whichever core is free, so the early
    big tasks keep the per-task costs few, and the short last ones let every core finish at
    about the same time (with equal tasks, the core that drew the slow one finishes alone)."""
    sizes: list[int] = []
    left = files
    for _ in range(rounds - 1):
        each = left // (2 * cores)
        if each == 0:
            break
        sizes += [each] * cores
        left -= each * cores
    even, extra = divmod(left, cores)
    sizes += [even + (1 if core < extra else 0) for core in range(cores)]
    return [size for size in sizes if size]


@dataclass(frozen=True)
class FileShare:
    """A listing dealt out to tasks of :func:`task_sizes`: the listing is interleaved first
    (every ``len(sizes)``-th file from the first, then from the second, ...) so that each task
    holds a sample of every folder rather than one folder's files; task ``k`` then inspects
    the next ``sizes[k]`` files, ``rows`` at a time. (The listing travels with the task's
    code, which Spark broadcasts when it is large: no Spark rows and no shuffle to spread it.)
    """

    listing: pd.DataFrame
    sizes: tuple[int, ...]
    rows: int

    @classmethod
    def deal(cls, listing: pd.DataFrame, cores: int, rounds: int, rows: int) -> FileShare:
        """``listing`` dealt out to the tasks of :func:`task_sizes` for ``cores`` cores."""
        sizes = task_sizes(len(listing), cores, rounds)
        stride = max(1, len(sizes))
        order = np.argsort(np.arange(len(listing)) % stride, kind="stable")
        return cls(listing.iloc[order].reset_index(drop=True), tuple(sizes), rows)

    @property
    def tasks(self) -> int:
        """How many tasks the listing is dealt to."""
        return len(self.sizes)

    def batches(self, task: int) -> Iterator[pd.DataFrame]:
        """Task ``task``'s files (:data:`femo.platform.files.LISTING_COLUMNS`), ``rows`` at a
        time."""
        first = sum(self.sizes[:task])
        share = self.listing.iloc[first : first + self.sizes[task]]
        for start in range(0, len(share), self.rows):
            yield share.iloc[start : start + self.rows]


#: What an inspect task returns: one ``AddFile`` (JSON) per file it wrote.
ADDS_SCHEMA: Final = StructType([StructField("add", StringType(), False)])


def inspect_with(
    core: Core,
    options: InspectOptions,
    tally: Accumulator[Tally],
    files: ImageFiles,
    share: FileShare | None = None,
) -> Callable[[DataFrame], DataFrame]:
    """A ``DataFrame -> DataFrame`` transform running ``core`` in iterator-form mapInPandas
    over the input rows, or over the task's part of ``share`` when given (the input then only
    numbers the tasks): each task writes its accepted results into a file of ``images``
    (``files``) and returns the file's ``AddFile``; every result is reported into ``tally``.
    The label map and the reader are built once per task."""

    def run(frames: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        # Spark runs a task per core already: OpenCV's own threads would only compete.
        cv2.setNumThreads(1)
        labels = LabelMap.from_names(options.labels)
        read = collection_reader(options.root, options.max_file_bytes)
        partition = TaskContext.get().partitionId()  # type: ignore[union-attr]
        task = Tally()
        if share is not None:
            for _ in frames:  # the task's number only
                pass
            frames = share.batches(partition)

        def results() -> Iterator[pd.DataFrame]:
            for frame in frames:
                out = core(frame, options, labels, read)
                task.add_results(out, partition)
                yield out

        adds = files.write(results())
        # Once per task, when all its batches are counted (Spark sends it with the task's end).
        tally.add(task)
        yield pd.DataFrame({"add": [json.dumps(add) for add in adds]}, dtype=object)

    def transform(df: DataFrame) -> DataFrame:
        return df.mapInPandas(run, ADDS_SCHEMA)

    return transform


# Spark side ------------------------------------------------------------------------------


def inspect_options(
    spark: SparkSession, database: str, root: str, split_from: str, guards: IngestSettings
) -> InspectOptions:
    """Options for the inspect transforms: label names from the catalog, limits from settings."""
    return InspectOptions(
        root=canonical(root),
        split_from=split_from,
        labels=label_names(spark, database),
        limits=Limits.from_settings(guards),
        max_file_bytes=guards.max_file_bytes,
    )


#: Where runs in progress leave their markers, under the database's location.
RUN_MARKERS: Final = "_ingest_runs"


def run_markers(spark: SparkSession, database: str, source: str) -> Markers:
    """The ingest runs of ``source`` that started and did not finish: one marker per run
    (``<database location>/_ingest_runs/<source>/<run_id>``)."""
    return database_markers(spark, database, f"{RUN_MARKERS}/{source}")


def finished_files(spark: SparkSession, database: str, source: str) -> pd.DataFrame:
    """Fingerprints (:data:`femo.platform.files.LISTING_COLUMNS`) of ``source``'s finished files,
    read on the driver (:func:`femo.platform.delta_files.read_where`: no Spark job)."""
    rows = read_where(
        spark,
        f"{database}.{INGESTED_FILES.name}",
        ["origin", "origin_size", "origin_modified_at"],
        {"source": source},
    )
    micros = rows["origin_modified_at"].cast(pa.int64()).to_pandas()
    return pd.DataFrame(
        {
            "origin": rows["origin"].to_pandas(),
            "origin_size": rows["origin_size"].to_pandas().astype("int64"),
            "origin_modified_ms": (micros // 1000).astype("int64"),
        }
    )


def written_origins(spark: SparkSession, database: str, source: str) -> set[str]:
    """Origins with rows of ``source`` in ``images`` or ``quarantine`` (two narrow scans in
    one Spark job)."""
    scans = [
        spark.table(f"{database}.{spec.name}").where(F.col("source") == source).select("origin")
        for spec in (IMAGES, QUARANTINE)
    ]
    return set(reduce(DataFrame.unionAll, scans).distinct().toPandas()["origin"])


def read_csv_lines(spark: SparkSession, origin: Listed) -> DataFrame:
    """Lines of one CSV (``origin``: a listing row) with their 0-based line numbers (stable:
    file order) and the origin's fingerprint."""
    # No ignoreCorruptFiles or ignoreMissingFiles: a file that cannot be read whole fails the
    # read (and the run) instead of giving part of its lines (Collection.unreadable checks it
    # before; a file cut after that is caught here).
    lines = spark.read.text(origin.origin)
    numbered = lines.rdd.zipWithIndex().map(lambda pair: (pair[0][0], pair[1]))
    return spark.createDataFrame(numbered, "line string, line_no long").select(
        "line",
        "line_no",
        F.lit(origin.origin).alias("origin"),
        F.lit(origin.origin_size).cast("long").alias("origin_size"),
        F.lit(origin.origin_modified_ms).cast("long").alias("origin_modified_ms"),
    )


#: Bounds of the files per inspected batch (:func:`batch_rows`).
BATCH_ROWS: Final = (16, 4096)


def batch_rows(sizes: pd.Series[Any], batch_bytes: int) -> int:
    """Files per batch so that a batch of results holds about ``batch_bytes`` of images:
    many small files per batch (per-batch costs dominate them), few large ones (memory)."""
    mean = float(sizes.mean()) if len(sizes) else 0.0
    low, high = BATCH_ROWS
    return int(min(high, max(low, batch_bytes // max(mean, 1.0))))


def inspect_new(
    spark: SparkSession,
    new: pd.DataFrame,
    layout: str,
    options: InspectOptions,
    guards: IngestSettings,
    tally: Accumulator[Tally],
    files: ImageFiles,
) -> DataFrame:
    """The ``AddFile`` actions (:data:`ADDS_SCHEMA`) of the ``images`` files that inspecting
    the new files (folders), or the data lines of each new CSV (fer_csv), writes; every result,
    accepted or not, is reported into ``tally`` as the tasks run.

    New files are dealt out to ``ingest.tasks_per_core`` tasks per core, shorter and shorter
    (:class:`FileShare`) so every core is busy to the end, in batches of about
    ``ingest.batch_bytes`` (:func:`batch_rows`).
    """
    if layout == "folders":
        rows = batch_rows(new["origin_size"], guards.batch_bytes)
        cores = spark.sparkContext.defaultParallelism
        share = FileShare.deal(new[list(LISTING_COLUMNS)], cores, guards.tasks_per_core, rows)
        return spark.range(0, share.tasks, 1, share.tasks).transform(
            inspect_with(inspect_files_frame, options, tally, files, share)
        )
    frames = [
        read_csv_lines(spark, origin).transform(
            inspect_with(inspect_csv_frame, options, tally, files)
        )
        for origin in entries(new[new["origin_size"] > 0])
    ]
    if not frames:
        return spark.createDataFrame([], ADDS_SCHEMA)
    return reduce(DataFrame.unionByName, frames)


@dataclass
class IngestSummary:
    """Outcome of one ingest run."""

    source: str
    listed: int = 0
    skipped: int = 0
    accepted: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    #: Seconds spent in each phase (list, seen, remove, images, counts, quarantine, finish).
    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Add the block's wall time to ``seconds[phase]``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - start

    def phases(self) -> str:
        """``list 0.2 s, seen 0.4 s, ...`` for the log."""
        return ", ".join(f"{name} {sec:.1f} s" for name, sec in self.seconds.items())

    def line(self) -> str:
        """``accepted N, quarantined M (reason k, ...), skipped K already ingested``"""
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(self.quarantined.items()))
        total = sum(self.quarantined.values())
        return (
            f"{self.source}: accepted {self.accepted}, quarantined {total}"
            f"{f' ({reasons})' if reasons else ''}, skipped {self.skipped} already ingested"
        )


def per_origin(counts: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Rows each new file gave (``counts``: origin, status, reason, count) as the listing plus
    ``images`` and ``quarantined`` columns; a file that gave no row has zeros."""
    by_status = (
        counts.pivot_table(
            index="origin", columns="status", values="count", aggfunc="sum", fill_value=0
        )
        if not counts.empty
        else pd.DataFrame(index=pd.Index([], name="origin"))
    )
    out = new.merge(by_status, left_on="origin", right_index=True, how="left")
    for status, column in ((ACCEPTED, "images"), (QUARANTINED, "quarantined")):
        out[column] = out[status].fillna(0).astype("int64") if status in out else 0
    return out[[*LISTING_COLUMNS, "images", "quarantined"]]


def unread_results(
    finished: pd.DataFrame, problems: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Quarantine results for new files that gave no row at all (an empty CSV, one that cannot
    be read whole, with its ``problems`` entry, or one without a data line): never silently
    dropped."""
    nothing = finished[(finished["images"] == 0) & (finished["quarantined"] == 0)]
    return unread_files(entries(nothing), problems)


def unread_files(
    files: Iterable[Listed], problems: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Quarantine results (:data:`RESULT_SCHEMA`) for listed ``files`` of which nothing was
    read, each with its origin as path: ``empty_file`` for 0 bytes, else ``unreadable`` with the
    file's ``problems`` entry (or: no data line could be read from it)."""
    records = []
    for entry in files:
        if entry.origin_size == 0:
            why = Rejection(EMPTY_FILE, "0 bytes")
        else:
            detail = (problems or {}).get(entry.origin, "no data line could be read from it")
            why = Rejection(UNREADABLE, detail)
        records.append(
            rejection_record(entry.origin, why, entry.origin_size, entry.origin_modified_ms)
        )
    return results_frame(records)


def quarantine_rows(results: pd.DataFrame, values: Mapping[str, Any]) -> pd.DataFrame:
    """Rejected ``results`` (:data:`RESULT_SCHEMA`) as rows of ``quarantine``: ``values``
    (source, run_id, seen_at) where given, else the result's column of that name. The one
    place a rejection becomes a quarantine row."""
    return table_frame(results, QUARANTINE, values)


def quarantine_frame(results: DataFrame, values: Mapping[str, Any]) -> DataFrame:
    """:func:`quarantine_rows` over a Spark DataFrame of rejected results (the columns of
    :data:`RESULT_SCHEMA` that it reads: path, reason, detail, label, split, origin,
    origin_size, origin_modified_ms), one Arrow batch at a time in the executors."""

    def rows(batches: Iterable[pd.DataFrame]) -> Iterable[pd.DataFrame]:
        for batch in batches:
            yield quarantine_rows(batch, values)

    return results.mapInPandas(rows, QUARANTINE.schema)


def whole_read_problems(root: str, new: pd.DataFrame) -> dict[str, str]:
    """Why each CSV of ``new`` that cannot be read whole now cannot (gone, changed since the
    listing, a cut or corrupt compressed stream): such a file is not read at all, and goes to
    quarantine as a whole, so that no part of it is ever recorded as its ingest."""
    collection = Collection.open(root)
    problems = {}
    for entry in entries(new[new["origin_size"] > 0]):
        problem = collection.unreadable(entry.origin, entry.origin_size)
        if problem is not None:
            problems[entry.origin] = problem
    return problems


def delete_origins(
    spark: SparkSession, spec: TableSpec, database: str, source: str, origins: list[str]
) -> None:
    """Delete every row of ``spec`` that ``source``'s ``origins`` gave."""
    from delta.tables import DeltaTable

    keys = spark.createDataFrame([(source, o) for o in origins], "source string, origin string")
    DeltaTable.forName(spark, f"{database}.{spec.name}").alias("t").merge(
        keys.alias("s"), "t.source = s.source AND t.origin = s.origin"
    ).whenMatchedDelete().execute()


def ingest(
    spark: SparkSession,
    database: str,
    source: str,
    root: str,
    layout: str,
    options: Callable[[], InspectOptions],
    guards: IngestSettings,
    run_id: str,
) -> IngestSummary:
    """Ingest the collection at ``root`` for ``source``; see the module docstring.

    ``options`` makes the inspect options (:func:`inspect_options` reads the label names with
    a Spark query, seconds in a cold JVM); it is called only when there are new files."""
    summary = IngestSummary(source)
    markers = run_markers(spark, database, source)
    with summary.timed("list"):
        listing = list_files(root)
    with summary.timed("seen"):
        done = finished_files(spark, database, source)
        new = unseen(listing, done)
        unfinished = markers.names()
    summary.listed = len(listing)
    summary.skipped = summary.listed - len(new)
    log.info("%s: %d files listed, %d new", source, summary.listed, len(new))
    if new.empty:
        markers.drop(unfinished)
        return summary
    markers.put(run_id)
    # Rows that new files may have left: a changed file's, or a killed run's. Only then are
    # images and quarantine read.
    changed = set(new["origin"]) & set(done["origin"])
    if unfinished or changed:
        with summary.timed("remove"):
            stale = sorted(set(new["origin"]) & written_origins(spark, database, source))
            log.info("%s: removing the rows of %d changed or unfinished files", source, len(stale))
            for spec in (IMAGES, QUARANTINE):
                if stale:
                    delete_origins(spark, spec, database, source, stale)
    tally = spark.sparkContext.accumulator(Tally(), TallyParam())
    target = file_target(spark, f"{database}.{IMAGES.name}", {"source": source})
    files = ImageFiles(target, source, run_id, datetime.now(UTC))
    # A CSV is read by Spark, which would read a cut one partly: each is checked whole first.
    problems = whole_read_problems(root, new) if layout == "fer_csv" else {}
    readable = new[~new["origin"].isin(list(problems))]
    adds = inspect_new(spark, readable, layout, options(), guards, tally, files)
    with summary.timed("images"):
        written = [json.loads(row["add"]) for row in adds.collect()]
        commit_files(spark, target, written)
    write_outcomes(spark, database, source, layout, run_id, new, tally.value, summary, problems)
    markers.drop([run_id, *unfinished])
    log.info("%s: phases %s", source, summary.phases())
    return summary


def tally_differs(
    spark: SparkSession, database: str, source: str, run_id: str, counts: pd.DataFrame
) -> str | None:
    """Where the images this run committed (read back by ``run_id``, on the driver) and the
    accepted rows its tally reports (``counts``) disagree, named; None when they agree. The
    outcomes recorded come from the tally, so it must hold every committed row."""
    committed = (
        read_where(
            spark, f"{database}.{IMAGES.name}", ["origin"], {"source": source, "run_id": run_id}
        )
        .column("origin")
        .value_counts()
        .to_pylist()
    )
    have = {str(pair["values"]): int(pair["counts"]) for pair in committed}
    accepted = counts[counts["status"] == ACCEPTED]
    told = {str(o): int(n) for o, n in zip(accepted["origin"], accepted["count"], strict=True)}
    wrong = sorted(o for o in have.keys() | told.keys() if have.get(o, 0) != told.get(o, 0))
    if not wrong:
        return None
    first = wrong[0]
    more = f" and {len(wrong) - 1} more files" if len(wrong) > 1 else ""
    return f"{first} ({have.get(first, 0)} committed, {told.get(first, 0)} reported){more}"


def write_outcomes(
    spark: SparkSession,
    database: str,
    source: str,
    layout: str,
    run_id: str,
    new: pd.DataFrame,
    tally: Tally,
    summary: IngestSummary,
    problems: Mapping[str, str] | None = None,
) -> None:
    """After the ``images`` commit: append the rejections that ``tally`` holds (and a row for
    every new file that gave none, with its entry of ``problems`` when it was not read) to
    ``quarantine``, then the ``ingested_files`` rows of the ``new`` files, and count them into
    ``summary``.

    Raises:
        FemoError: a new file of a folder collection has no outcome in the tally (every file
            gives exactly one): nothing more is committed, so the next run does it again.
    """
    counts = tally.counts_frame()
    if layout == "folders":
        missing = len(set(new["origin"]) - tally.origins())
        if missing:
            raise RunFailedError(
                f"{source}: no outcome reported for {missing} of {len(new)} files (lost "
                "accumulator updates?); their ingest is not recorded and the next run redoes it"
            )
    differ = tally_differs(spark, database, source, run_id, counts)
    if differ:
        raise RunFailedError(
            f"{source}: the images committed differ from those reported for {differ} (lost "
            "accumulator updates?); their ingest is not recorded and the next run redoes it"
        )
    unread = unread_results(per_origin(counts, new), problems)
    rejected = pd.concat([tally.rejected_frame(), unread], ignore_index=True)
    if not unread.empty:
        counts = pd.concat(
            [counts, unread.assign(count=1)[["origin", "status", "reason", "count"]]]
        )
    finished = per_origin(counts, new)
    for status, reason, n in zip(counts["status"], counts["reason"], counts["count"], strict=True):
        if status == ACCEPTED:
            summary.accepted += int(n)
        else:
            summary.quarantined[str(reason)] += int(n)
    now = pd.Timestamp(datetime.now(UTC))
    if not rejected.empty:
        with summary.timed("quarantine"):
            values = {"source": source, "run_id": run_id, "seen_at": now}
            append_rows(spark, f"{database}.{QUARANTINE.name}", quarantine_rows(rejected, values))
    with summary.timed("finish"):
        values = {"source": source, "layout": layout, "run_id": run_id, "ingested_at": now}
        rows = table_frame(finished, INGESTED_FILES, values)
        append_rows(spark, f"{database}.{INGESTED_FILES.name}", rows)
