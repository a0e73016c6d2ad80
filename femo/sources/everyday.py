"""The study "Emotions in everyday life" as a clean table: ``everyday_emotions``.

Trampe, Quoidbach & Taquet (2015), PLoS ONE 10(12): e0145450, published a CSV of 69,544
experience-sampling reports with 21 columns: ``id, Hours, Day`` and 18 emotion flags (0/1)
under their original names, two of them misspelt (``Ofense``, ``Embarassment``), with blank
(``' '``) and missing cells. :data:`STUDY_EMOTIONS` is the one mapping from those names to
clean ones and their valence; the table ``everyday_emotion_names`` and every query in ``sql/``
use it through that table.

The per-line work is :func:`clean_frame` (pandas in, pandas out, no Spark). Every line of the
file ends as exactly one of:

* ``kept``: a complete, valid response, written to ``everyday_emotions``;
* ``quarantined``, written to ``quarantine`` (path ``<csv uri>#line=<n>``, 1-based, the header
  being line 1) with a reason: ``incomplete_row`` (a blank or missing cell: the rows the study's
  analyses drop, so "dropped with a count" is a query on ``quarantine``), ``malformed_row``
  (wrong number of fields, broken quoting) or ``bad_value`` (a flag that is not 0/1, an hour
  outside 0-23, a Day that is no weekday); the detail names the columns;
* ``blank``: an empty line; it holds no response, so it is counted and skipped.

:func:`ingest_everyday` wires it into Spark: the CSV's numbered lines
(:func:`femo.ingest.run.read_csv_lines`) go through iterator-form ``mapInPandas``; the results are
MERGEd on their natural keys, (source, origin, line_no) and (source, path), after dropping the
rows the tables already hold with equal values. A re-run on the same file commits no Delta
version; a run killed half way is completed by the next one without duplicates.
"""

from __future__ import annotations

import csv
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import pandas as pd
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from femo.ingest.fer_csv import MALFORMED_ROW
from femo.ingest.images import Rejection
from femo.ingest.run import quarantine_frame, quarantine_rows, read_csv_lines, unread_files
from femo.platform.catalog import LocalRows, label_names, merge_rows
from femo.platform.errors import FemoError, RunFailedError
from femo.platform.files import Collection, Listed, entries, list_files
from femo.platform.schemas import EVERYDAY_EMOTION_NAMES, EVERYDAY_EMOTIONS, QUARANTINE, TableSpec

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

log = logging.getLogger(__name__)

POSITIVE: Final = "positive"
NEGATIVE: Final = "negative"


@dataclass(frozen=True)
class StudyEmotion:
    """One of the study's 18 emotions."""

    #: The column header as published, misspellings included.
    original: str
    #: Clean snake_case name, as stored in ``everyday_emotions.felt``.
    name: str
    #: ``positive`` or ``negative``, as the study groups them.
    valence: str


#: The study's emotions in the file's column order: published header, clean name, valence.
STUDY_EMOTIONS: Final[tuple[StudyEmotion, ...]] = (
    StudyEmotion("Pride", "pride", POSITIVE),
    StudyEmotion("Love", "love", POSITIVE),
    StudyEmotion("Hope", "hope", POSITIVE),
    StudyEmotion("Gratitude", "gratitude", POSITIVE),
    StudyEmotion("Joy", "joy", POSITIVE),
    StudyEmotion("Satisfaction", "satisfaction", POSITIVE),
    StudyEmotion("Awe", "awe", POSITIVE),
    StudyEmotion("Amusement", "amusement", POSITIVE),
    StudyEmotion("Alertness", "alertness", POSITIVE),
    StudyEmotion("Anxiety", "anxiety", NEGATIVE),
    StudyEmotion("Disdain", "disdain", NEGATIVE),
    StudyEmotion("Ofense", "offense", NEGATIVE),
    StudyEmotion("Guilt", "guilt", NEGATIVE),
    StudyEmotion("Disgust", "disgust", NEGATIVE),
    StudyEmotion("Fear", "fear", NEGATIVE),
    StudyEmotion("Embarassment", "embarrassment", NEGATIVE),
    StudyEmotion("Sadness", "sadness", NEGATIVE),
    StudyEmotion("Anger", "anger", NEGATIVE),
)

ID: Final = "id"
HOURS: Final = "Hours"
DAY: Final = "Day"
#: The columns a file must have (matched case-insensitively; clean names are accepted too).
COLUMNS: Final[tuple[str, ...]] = (ID, HOURS, DAY, *(e.original for e in STUDY_EMOTIONS))

#: ISO 8601 order: weekday_no 1 is Monday, 7 is Sunday.
WEEKDAYS: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
#: What ``Day = 1`` means when a file numbers its weekdays (1-7).
FIRST_DAYS: Final = ("monday", "sunday")
#: Cell values read as missing (after trimming, case-insensitive).
MISSING: Final = frozenset({"", "na", "n/a", "nan", "null", "none"})
#: Field separators recognised from the header line.
DELIMITERS: Final = (",", ";", "\t")

KEPT: Final = "kept"
QUARANTINED: Final = "quarantined"
BLANK: Final = "blank"

INCOMPLETE_ROW: Final = "incomplete_row"
BAD_VALUE: Final = "bad_value"
REASONS: Final = (INCOMPLETE_ROW, MALFORMED_ROW, BAD_VALUE)

_INTEGRAL = re.compile(r"^[+-]?\d+(?:\.0*)?$")
_DAY_NAMES: Final[dict[str, int]] = {
    **{name.lower(): number for number, name in enumerate(WEEKDAYS, 1)},
    **{name[:3].lower(): number for number, name in enumerate(WEEKDAYS, 1)},
}


class HeaderError(FemoError):
    """The file's first line is not the study's header."""


@dataclass(frozen=True)
class Layout:
    """Where each of :data:`COLUMNS` sits in a file's rows, read from its header; picklable."""

    #: Field index of each of :data:`COLUMNS`.
    positions: tuple[int, ...]
    #: Fields every row must have (the header's count; extra columns are ignored).
    width: int
    delimiter: str = ","
    #: ``monday`` (ISO: 1 = Monday ... 7 = Sunday) or ``sunday`` (1 = Sunday ... 7 = Saturday).
    first_day: str = "monday"


@dataclass(frozen=True)
class Response:
    """One kept row, with clean names and types."""

    id: str
    hour: int
    day: str
    weekday: str
    weekday_no: int
    #: Clean names of the emotions flagged 1, in the file's column order.
    felt: tuple[str, ...]


def _fields(line: str, delimiter: str) -> list[str]:
    """The fields of one CSV line (quotes honoured; broken quoting raises ``csv.Error``)."""
    reader = csv.reader([line], delimiter=delimiter, skipinitialspace=True, strict=True)
    return next(reader, [])


def parse_header(line: str, first_day: str = "monday") -> Layout:
    """The layout of a file whose first line is ``line``.

    Column names are matched trimmed and case-insensitively, as published (``Ofense``) or clean
    (``offense``); a byte-order mark and quotes are ignored; the separator is whichever of
    ``,`` ``;`` and tab the line holds most of. Extra columns are allowed and ignored.

    Raises:
        HeaderError: a column is missing or appears twice.
        FemoError: ``first_day`` is neither ``monday`` nor ``sunday``.
    """
    if first_day not in FIRST_DAYS:
        raise FemoError(f"first day {first_day!r} must be one of {', '.join(FIRST_DAYS)}")
    text = line.lstrip("\ufeff")
    delimiter = max(DELIMITERS, key=text.count)
    try:
        names = [name.strip().lower() for name in _fields(text, delimiter)]
    except csv.Error as exc:
        raise HeaderError(f"the first line is not a CSV header: {exc}") from exc
    clean = {ID: ID, HOURS: "hours", DAY: "day"} | {e.original: e.name for e in STUDY_EMOTIONS}
    positions, missing = [], []
    for column in COLUMNS:
        hits = [i for i, name in enumerate(names) if name in {column.lower(), clean[column]}]
        if len(hits) > 1:
            raise HeaderError(f"column {column} appears {len(hits)} times in the header")
        if hits:
            positions.append(hits[0])
        else:
            missing.append(column)
    if missing:
        raise HeaderError(
            f"not the everyday-emotions CSV: the header lacks {', '.join(missing)} "
            f"(it reads {line[:120]!r})"
        )
    extra = len(names) - len(COLUMNS)
    if extra:
        log.info("ignoring %d extra column(s) of the header", extra)
    return Layout(tuple(positions), len(names), delimiter, first_day)


def integral(text: str) -> int | None:
    """``text`` as an integer if it is one (``"3"``, ``"+3"``, ``"3.0"`` as spreadsheets write
    it), else None."""
    if not _INTEGRAL.match(text):
        return None
    return int(text.split(".", 1)[0])


def weekday_number(text: str, first_day: str = "monday") -> int | None:
    """The ISO weekday number (1 = Monday ... 7 = Sunday) of a Day cell, or None.

    Accepted: weekday names in any case, full or 3-letter (``Monday``, ``mon``), and numbers
    1-7, read as ISO 8601 (1 = Monday) or, with ``first_day="sunday"``, as 1 = Sunday ...
    7 = Saturday.
    """
    key = text.strip().lower()
    if key in _DAY_NAMES:
        return _DAY_NAMES[key]
    number = integral(key)
    if number is None or not 1 <= number <= 7:
        return None
    return number if first_day == "monday" else (number - 2) % 7 + 1


def clean_line(line: str, layout: Layout) -> Response | Rejection | None:
    """One data line as a :class:`Response`, a :class:`Rejection` or None (a blank line).

    The reason follows the first kind of fault found: ``malformed_row`` (the line is not
    ``layout.width`` fields), then ``incomplete_row`` (blank or missing cells), then
    ``bad_value``. The detail lists every fault found, naming the columns as published.
    """
    if not line.strip():
        return None
    try:
        fields = _fields(line, layout.delimiter)
    except csv.Error as exc:
        return Rejection(MALFORMED_ROW, f"not a CSV line: {exc}")
    if len(fields) != layout.width:
        return Rejection(MALFORMED_ROW, f"{len(fields)} fields, expected {layout.width}")
    values = [fields[i].strip() for i in layout.positions]
    cells = dict(zip(COLUMNS, values, strict=True))
    blank = [column for column, value in cells.items() if value.lower() in MISSING]
    bad: list[str] = []
    hour = integral(cells[HOURS])
    if HOURS not in blank and (hour is None or not 0 <= hour <= 23):
        bad.append(f"{HOURS}={cells[HOURS]!r} is not an hour 0-23")
    weekday_no = weekday_number(cells[DAY], layout.first_day)
    if DAY not in blank and weekday_no is None:
        bad.append(f"{DAY}={cells[DAY]!r} is not a weekday (Monday..Sunday, Mon..Sun or 1-7)")
    felt = []
    for emotion in STUDY_EMOTIONS:
        value = cells[emotion.original]
        flag = integral(value)
        if emotion.original in blank:
            continue
        if flag not in (0, 1):
            bad.append(f"{emotion.original}={value!r} is not 0 or 1")
        elif flag:
            felt.append(emotion.name)
    if blank:
        return Rejection(INCOMPLETE_ROW, "; ".join([f"blank or missing: {', '.join(blank)}", *bad]))
    if bad or hour is None or weekday_no is None:
        return Rejection(BAD_VALUE, "; ".join(bad))
    return Response(
        id=cells[ID],
        hour=hour,
        day=cells[DAY],
        weekday=WEEKDAYS[weekday_no - 1],
        weekday_no=weekday_no,
        felt=tuple(felt),
    )


#: What :func:`clean_frame` returns for every line but the header.
RESULT_SCHEMA: Final = StructType(
    [
        StructField("status", StringType(), False),
        StructField("reason", StringType()),
        StructField("detail", StringType()),
        StructField("line_no", LongType(), False),
        StructField("id", StringType()),
        StructField("hour", IntegerType()),
        StructField("day", StringType()),
        StructField("weekday", StringType()),
        StructField("weekday_no", IntegerType()),
        StructField("felt", ArrayType(StringType(), False)),
    ]
)
RESULT_COLUMNS: Final = tuple(RESULT_SCHEMA.fieldNames())


def clean_frame(frame: pd.DataFrame, layout: Layout) -> pd.DataFrame:
    """Clean numbered lines of the CSV (``line``, ``line_no`` 0-based as numbered in the file).

    Line 0, the header, is left out; every other line gives one row of :data:`RESULT_SCHEMA`,
    numbered 1-based (the header being line 1) like the ``#line=`` of quarantine paths.
    """
    records: list[dict[str, Any]] = []
    for line, number in zip(frame["line"], frame["line_no"], strict=True):
        if number == 0:
            continue
        base: dict[str, Any] = {"line_no": int(number) + 1}
        outcome = clean_line(line if isinstance(line, str) else "", layout)
        if outcome is None:
            records.append({**base, "status": BLANK})
        elif isinstance(outcome, Rejection):
            records.append(
                {**base, "status": QUARANTINED, "reason": outcome.reason, "detail": outcome.detail}
            )
        else:
            records.append(
                {
                    **base,
                    "status": KEPT,
                    "id": outcome.id,
                    "hour": outcome.hour,
                    "day": outcome.day,
                    "weekday": outcome.weekday,
                    "weekday_no": outcome.weekday_no,
                    "felt": list(outcome.felt),
                }
            )
    frame = pd.DataFrame.from_records(records, columns=list(RESULT_COLUMNS))
    # Rows without a list hold None, not pandas' NaN filler (Arrow takes no float as array).
    frame["felt"] = pd.Series(
        [value if isinstance(value, list) else None for value in frame["felt"]], dtype=object
    )
    return frame


def clean_with(layout: Layout) -> Callable[[DataFrame], DataFrame]:
    """A ``DataFrame -> DataFrame`` transform running :func:`clean_frame` in iterator-form
    ``mapInPandas`` over numbered lines (``line``, ``line_no``)."""

    def run(frames: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for frame in frames:
            yield clean_frame(frame, layout)

    def transform(df: DataFrame) -> DataFrame:
        return df.select("line", "line_no").mapInPandas(run, RESULT_SCHEMA)

    return transform


def name_rows(label_ids: Mapping[str, int]) -> list[tuple[str, str, str, int, int | None]]:
    """Rows of ``everyday_emotion_names`` from :data:`STUDY_EMOTIONS`: clean name, published
    name, valence, column position (1-18) and the femo emotion id the clean name is a label of
    (``label_ids``: label name -> emotion id, as :func:`femo.platform.catalog.label_names` gives
    them)."""
    return [
        (e.name, e.original, e.valence, position, label_ids.get(e.name))
        for position, e in enumerate(STUDY_EMOTIONS, 1)
    ]


# Spark side ------------------------------------------------------------------------------


@dataclass
class EverydaySummary:
    """Outcome of one run: the file's composition and what was committed."""

    source: str
    read: int = 0
    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    blank_lines: int = 0
    written: int = 0
    quarantine_written: int = 0
    stale_removed: int = 0

    def line(self) -> str:
        """``SOURCE: read N rows, kept K, dropped D to quarantine (reason n, ...), skipped B
        blank lines; wrote W rows, Q quarantine rows, removed S stale rows``"""
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(self.dropped.items()))
        return (
            f"{self.source}: read {self.read} rows, kept {self.kept}, dropped "
            f"{sum(self.dropped.values())} to quarantine{f' ({reasons})' if reasons else ''}, "
            f"skipped {self.blank_lines} blank lines; wrote {self.written} rows, "
            f"{self.quarantine_written} quarantine rows, removed {self.stale_removed} stale rows"
        )


#: Columns a run stamps on the rows it writes; left out when comparing with stored rows.
_STAMPS: Final = ("run_id", "ingested_at", "seen_at")


def _shaped(rows: DataFrame, spec: TableSpec, values: Mapping[str, Column]) -> DataFrame:
    """``rows`` as the columns of ``spec`` (stamps aside): ``values`` where given, else the
    column of ``rows`` by that name, else NULL; cast to the table's types."""
    columns = []
    for f in spec.schema_without(_STAMPS).fields:
        if f.name in values:
            value = values[f.name]
        elif f.name in rows.columns:
            value = F.col(f.name)
        else:
            value = F.lit(None)
        columns.append(value.cast(f.dataType).alias(f.name))
    return rows.select(*columns)


def _sync(
    spark: SparkSession,
    spec: TableSpec,
    database: str,
    rows: DataFrame,
    scope: Mapping[str, str],
    run_id: str,
) -> tuple[int, int]:
    """Make the rows of ``spec`` within ``scope`` (column values: the file's) equal ``rows``
    (shaped by :func:`_shaped`), with :func:`merge_rows`: the rows of ``rows`` that the table
    does not hold with equal values (new or changed) are MERGEd on ``spec.key``, stamped with
    this run, and the stored keys that ``rows`` no longer has (lines that moved to the other
    table, or that a shorter version of the file lacks) are deleted. The caller has checked
    that the file reads whole. Returns (written, deleted); (0, 0) commits nothing."""
    # One timestamp for the run, taken here: the MERGE source is the same in every scan.
    now = datetime.now(UTC)
    stamps = {"run_id": run_id, "ingested_at": now, "seen_at": now}
    present = {name: stamps[name] for name in spec.schema.fieldNames() if name in stamps}
    merged = merge_rows(spark, spec, database, rows, stamps=present, prune=scope)
    return merged.inserted + merged.updated, merged.deleted


def locate(path: str) -> Listed:
    """The listing entry (origin URI, size, modification time) of the one CSV at ``path``.

    Raises:
        FemoError: ``path`` holds no file, more than one, or an empty one.
    """
    listing = entries(list_files(path))
    if len(listing) != 1:
        raise FemoError(f"{path}: expected one CSV file, found {len(listing)} files")
    origin = listing[0]
    if not origin.origin_size:
        raise FemoError(f"{path}: the file is empty")
    return origin


def quarantine_file(
    spark: SparkSession, database: str, source: str, origin: Listed, problem: str, run_id: str
) -> None:
    """One ``unreadable`` quarantine row for the whole file ``origin``, as ingest records a file
    it cannot read whole (none added when the same row is there: a re-run on the same file
    commits nothing; its stamps are those of the run that first recorded it)."""
    rows = quarantine_rows(
        unread_files([origin], {origin.origin: problem}),
        {"source": source, "run_id": run_id, "seen_at": None},
    )
    content = QUARANTINE.schema_without(_STAMPS)
    row = LocalRows.collected(spark.createDataFrame(rows[content.fieldNames()], content))
    merge_rows(
        spark,
        QUARANTINE,
        database,
        row,
        stamps={"run_id": run_id, "seen_at": datetime.now(UTC)},
    )


def read_header(spark: SparkSession, origin: Listed, first_day: str) -> Layout:
    """The layout of the CSV ``origin``, from its first line (only that line is fetched)."""
    first = spark.read.text(origin.origin).limit(1).collect()
    if not first:
        raise FemoError(f"{origin.origin}: no header line")
    return parse_header(first[0][0], first_day)


def clean_responses(spark: SparkSession, origin: Listed, layout: Layout) -> DataFrame:
    """Every line of ``origin`` but the header, cleaned (:data:`RESULT_SCHEMA`), materialised:
    the file is read once, never collected."""
    return read_csv_lines(spark, origin).transform(clean_with(layout)).localCheckpoint()


def write_names(spark: SparkSession, database: str) -> int:
    """Merge :data:`STUDY_EMOTIONS` into ``everyday_emotion_names`` (no commit when the table
    already says the same); returns the rows inserted or updated."""
    rows = LocalRows(EVERYDAY_EMOTION_NAMES.schema, name_rows(label_names(spark, database)))
    merged = merge_rows(spark, EVERYDAY_EMOTION_NAMES, database, rows)
    return merged.inserted + merged.updated


def ingest_everyday(
    spark: SparkSession,
    database: str,
    source: str,
    path: str,
    run_id: str,
    first_day: str = "monday",
) -> EverydaySummary:
    """Clean the CSV at ``path`` into ``everyday_emotions`` and ``quarantine`` for ``source``.

    Writes, each only when something changed: the names table, then for ``everyday_emotions``
    and ``quarantine`` the new or changed rows of this file and the removal of its rows that
    no longer belong there. A run killed between two commits leaves whole commits behind; the
    next run writes the rest.

    Raises:
        FemoError: no single non-empty file at ``path``, or its header is not the study's.
    """
    summary = EverydaySummary(source)
    origin = locate(path)
    problem = Collection.open(origin.origin).unreadable(origin.origin, origin.origin_size)
    if problem is not None:
        quarantine_file(spark, database, source, origin, problem, run_id)
        raise RunFailedError(
            f"{origin.origin} {problem}: recorded in quarantine; nothing read, the stored rows "
            "of the file are kept"
        )
    layout = read_header(spark, origin, first_day)
    results = clean_responses(spark, origin, layout)
    for row in results.groupBy("status", "reason").count().collect():
        if row.status == KEPT:
            summary.kept += row["count"]
        elif row.status == QUARANTINED:
            summary.dropped[row.reason] += row["count"]
        else:
            summary.blank_lines += row["count"]
    summary.read = summary.kept + sum(summary.dropped.values())
    if summary.read and not summary.kept:
        log.warning("%s: no row of %s was kept; see femo.quarantine", source, origin.origin)

    write_names(spark, database)
    uri = F.lit(origin.origin)
    in_file = {"source": source, "origin": origin.origin}
    kept = _shaped(
        results.where(F.col("status") == KEPT),
        EVERYDAY_EMOTIONS,
        {"source": F.lit(source), "origin": uri},
    )
    lines = results.where(F.col("status") == QUARANTINED).select(
        F.concat(uri, F.lit("#line="), F.col("line_no").cast("string")).alias("path"),
        "reason",
        "detail",
        F.lit(None).cast("string").alias("label"),
        F.lit(None).cast("string").alias("split"),
        uri.alias("origin"),
        F.lit(origin.origin_size).cast("long").alias("origin_size"),
        F.lit(origin.origin_modified_ms).cast("long").alias("origin_modified_ms"),
    )
    rejected = _shaped(
        quarantine_frame(lines, {"source": source, "run_id": None, "seen_at": None}),
        QUARANTINE,
        {},
    )
    summary.written, stale = _sync(spark, EVERYDAY_EMOTIONS, database, kept, in_file, run_id)
    summary.quarantine_written, stale_quarantine = _sync(
        spark, QUARANTINE, database, rejected, in_file, run_id
    )
    summary.stale_removed = stale + stale_quarantine
    log.info("%s", summary.line())
    return summary
