"""Append Parquet files that Python processes wrote to a Delta table, in one Delta commit.

Spark's Delta writer takes rows that a pandas UDF produced through Arrow into the JVM, turns
them into Spark rows, encodes Parquet and collects statistics there. For a bulk append of rows
made in Python (the images of an ingest run, with their bytes) that JVM work, and the JIT
compiling it, cost about as much as decoding the images on two cores (BENCHMARKS.md). Here the
process that made the rows writes them where they belong, the way Spark lays out a Delta table
(Hive-style partition folders, partition columns in the path only, snappy Parquet), and the
driver commits the files through Delta's own transaction (``OptimisticTransaction.commit``
with ``AddFile`` actions): the log, the protocol checks, conflict detection, checkpoints and
``DESCRIBE HISTORY`` stay Delta's.

:class:`FileTarget` carries what a writer needs to know about the table (read from its Delta
snapshot on the driver, small and picklable); :class:`PartWriter` writes one Parquet file of
rows and describes it as an ``AddFile`` (with the statistics Delta would collect for data
skipping); :func:`commit_files` commits the descriptions. A file that no commit names (a task
that failed and was retried, a killed run) is never part of the table; ``VACUUM`` removes it.

Only tables whose rules this writer keeps can take such files, by allow-lists of writer
features, ``delta.*`` table properties and column metadata (:func:`unsupported_rules`): no
column mapping, CHECK constraints, generated or identity columns, column invariants beyond NOT
NULL (which :class:`PartWriter` checks), row tracking, clustering, type widening, nor any feature
it does not know. :func:`file_target` refuses any other table, and :func:`commit_files` checks
again at commit, for a rule added during the run.

The other way, :func:`read_where` reads a small slice of a table on the driver with delta-rs
(the ``deltalake`` package: Delta's log and Parquet in Rust, no Spark job). A Spark scan of a
table that changed since the session last read it costs about a second of snapshot rebuilding,
planning and JIT compiling (BENCHMARKS.md), which an ingest run that finds which files it
already has would pay each time. Tables delta-rs cannot read (reader features such as deletion
vectors, a storage it cannot reach) are read through Spark instead.

Both ways meet in a compare-and-set for small tables (the leases of
:mod:`femo.platform.leases`): :func:`read_all` reads every row with delta-rs at the version of
a Delta transaction that records reading the whole table, and :func:`replace_all` commits new
rows in place of every file in that transaction; Delta refuses the commit
(:class:`ConcurrentCommitError`) when another commit came in between.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import reduce
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from py4j.java_gateway import is_instance_of
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import StructType

from femo.platform.errors import FemoError, RunFailedError
from femo.platform.files import Collection

if TYPE_CHECKING:
    from pyspark.sql import Column, SparkSession

log = logging.getLogger(__name__)

#: Delta's default number of leading columns with statistics (``dataSkippingNumIndexedCols``).
DEFAULT_INDEXED_COLUMNS: Final = 32

#: Arrow types whose min/max Delta records and compares like pyarrow does; other columns get
#: a null count only (absent bounds never skip a file wrongly).
BOUNDED: Final = (pa.types.is_integer, pa.types.is_string, pa.types.is_timestamp, pa.types.is_date)

#: What a table may have for files written here to keep its rules: an allow-list, so that a
#: feature this writer was not written for (row tracking, clustering, type widening, a CHECK
#: constraint, column mapping, generated or identity columns, Iceberg compatibility...) is
#: refused by name, never committed around. Writer features of the table's protocol (for a
#: legacy protocol, those its minWriterVersion implies): appends of plain Parquet files with
#: statistics keep these.
ALLOWED_WRITER_FEATURES: Final = frozenset(
    {
        "appendOnly",  # appends are what this writer does
        "invariants",  # NOT NULL only (PartWriter checks it); column invariants are refused
        "changeDataFeed",  # an append's change data is its added files
        "deletionVectors",  # new files carry none
        "v2Checkpoint",
        "vacuumProtocolCheck",
        "checkConstraints",  # the feature alone; a constraint itself is refused
    }
)
#: Writer features implied by a legacy protocol's minWriterVersion (Delta's protocol spec).
LEGACY_WRITER_FEATURES: Final[dict[int, tuple[str, ...]]] = {
    2: ("appendOnly", "invariants"),
    3: ("checkConstraints",),
    4: ("changeDataFeed", "generatedColumns"),
    5: ("columnMapping",),
    6: ("identityColumns",),
}
#: Table properties that change nothing about the files of an append (``delta.feature.*``
#: enablements are judged as the protocol's features instead).
ALLOWED_PROPERTIES: Final = frozenset(
    {
        "delta.appendOnly",
        "delta.dataSkippingNumIndexedCols",
        "delta.dataSkippingStatsColumns",
        "delta.checkpointInterval",
        "delta.checkpoint.writeStatsAsJson",
        "delta.checkpoint.writeStatsAsStruct",
        "delta.checkpointPolicy",
        "delta.logRetentionDuration",
        "delta.deletedFileRetentionDuration",
        "delta.setTransactionRetentionDuration",
        "delta.enableChangeDataFeed",
        "delta.enableDeletionVectors",
        "delta.isolationLevel",
        "delta.minReaderVersion",
        "delta.minWriterVersion",
        "delta.targetFileSize",
        "delta.tuneFileSizesForRewrites",
    }
)
#: Column metadata this writer keeps: the comment. (Anything else, such as
#: ``delta.generationExpression``, ``delta.identity.*``, ``delta.invariants``,
#: ``delta.columnMapping.*`` or ``delta.typeChanges``, is a rule it would not apply.)
ALLOWED_COLUMN_METADATA: Final = frozenset({"comment"})

#: Characters Hive (and so Spark and Delta) escape in partition folder names, besides controls.
_HIVE_ESCAPED: Final = frozenset("\"#%'*/:=?\\\x7f{[]^")


def escape_partition_value(value: str) -> str:
    """``value`` as a partition folder name spells it (Hive's ``escapePathName``)."""
    return "".join(f"%{ord(c):02X}" if c in _HIVE_ESCAPED or ord(c) < 0x20 else c for c in value)


@dataclass(frozen=True)
class FileTarget:
    """What writers of one Delta table's files need (from the driver's snapshot).

    ``schema_json`` is the table's Spark schema; the files hold its columns but the partition
    columns, whose values ``partition_values`` fixes for every file of one append.
    """

    table: str
    location: str
    schema_json: str
    partition_values: Mapping[str, str] = field(default_factory=dict)
    stats_columns: tuple[str, ...] = ()

    @property
    def schema(self) -> StructType:
        """The table's Spark schema."""
        return StructType.fromJson(json.loads(self.schema_json))

    def file_schema(self) -> pa.Schema:
        """The Arrow schema of the files: the table's columns but the partition columns."""
        data = StructType([f for f in self.schema.fields if f.name not in self.partition_values])
        return to_arrow_schema(data)

    def folder(self) -> str:
        """The files' folder relative to the table root (``a=x/b=y``, or empty)."""
        return "/".join(
            f"{escape_partition_value(k)}={escape_partition_value(v)}"
            for k, v in self.partition_values.items()
        )


def stats_columns(schema: StructType, configuration: Mapping[str, str]) -> tuple[str, ...]:
    """The columns Delta keeps statistics for, by the table's properties: the named
    ``delta.dataSkippingStatsColumns``, else the first ``delta.dataSkippingNumIndexedCols``
    (32 by default; -1 means all)."""
    named = configuration.get("delta.dataSkippingStatsColumns")
    if named:
        return tuple(c.strip().strip("`") for c in named.split(",") if c.strip())
    count = int(configuration.get("delta.dataSkippingNumIndexedCols", DEFAULT_INDEXED_COLUMNS))
    names = tuple(schema.fieldNames())
    return names if count < 0 else names[:count]


def writer_features(protocol: Mapping[str, Any]) -> list[str]:
    """The writer features of a Delta protocol action (``{"minWriterVersion": 2, ...}``): its
    ``writerFeatures`` (table features, writer version 7), or those a legacy version implies."""
    if "writerFeatures" in protocol:
        return sorted(protocol["writerFeatures"] or ())
    version = int(protocol.get("minWriterVersion", 1))
    return [f for v, names in sorted(LEGACY_WRITER_FEATURES.items()) if v <= version for f in names]


def unsupported_rules(
    schema: StructType,
    configuration: Mapping[str, str],
    partition_columns: Sequence[str],
    protocol: Mapping[str, Any] | None = None,
) -> list[str]:
    """What of a table's rules files written here would not keep (empty when none), by the
    allow-lists above: writer features of ``protocol``, ``delta.*`` table properties (other
    names are the user's own), column metadata, and partition columns (strings only)."""
    found = [
        f"table feature {f}"
        for f in writer_features(protocol or {})
        if f not in ALLOWED_WRITER_FEATURES
    ]
    for key, value in sorted(configuration.items()):
        if key == "delta.columnMapping.mode":
            if value != "none":
                found.append(f"column mapping ({value})")
        elif key.startswith("delta.feature."):
            feature = key.removeprefix("delta.feature.")
            if feature not in ALLOWED_WRITER_FEATURES:
                found.append(f"table feature {feature}")
        elif key.startswith("delta.") and key not in ALLOWED_PROPERTIES:
            found.append(key)
    for f in schema.fields:
        found += [f"{f.name}: {k}" for k in f.metadata if k not in ALLOWED_COLUMN_METADATA]
        if f.name in partition_columns and f.dataType.typeName() != "string":
            found.append(f"{f.name}: a {f.dataType.simpleString()} partition column")
    return list(dict.fromkeys(found))  # a feature both enabled and in the protocol: once


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        # Delta's own statistics hold milliseconds (and it widens a max by 1 ms to match).
        utc = value.astimezone(UTC)
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


@dataclass
class _Bounds:
    """Running statistics of one column over the batches of a file."""

    nulls: int = 0
    low: Any = None
    high: Any = None

    def add(self, column: pa.ChunkedArray, bounded: bool) -> None:
        self.nulls += column.null_count
        if not bounded or column.null_count == len(column):
            return
        pair = pc.min_max(column).as_py()
        low, high = pair["min"], pair["max"]
        self.low = low if self.low is None else min(self.low, low)
        self.high = high if self.high is None else max(self.high, high)


class PartWriter:
    """Writes the rows of one process into one Parquet file of a :class:`FileTarget` (a row
    group per :meth:`write`), then describes the file as an ``AddFile`` (:meth:`close`).

    Nothing is written before the first row; a writer that got none describes nothing.
    """

    def __init__(self, target: FileTarget, collection: Collection | None = None) -> None:
        self.target = target
        self.schema = target.file_schema()
        self.collection = collection or Collection.open(target.location)
        folder = target.folder()
        self.relative = f"{folder + '/' if folder else ''}part-{uuid.uuid4()}.c000.snappy.parquet"
        self.rows = 0
        self.bounds = {c: _Bounds() for c in target.stats_columns if c in self.schema.names}
        self._writer: pq.ParquetWriter | None = None

    def write(self, frame: pd.DataFrame) -> None:
        """Append ``frame``'s rows (the file's columns, by name; extra columns are ignored).

        Raises:
            ValueError: a value does not fit its column's type, or a NOT NULL column has a null.
        """
        if frame.empty:
            return
        # Column by column: pyarrow's whole-frame conversion warns on every call with pandas 2.
        table = pa.Table.from_arrays(
            [pa.array(frame[f.name], type=f.type, from_pandas=True) for f in self.schema],
            schema=self.schema,
        )
        for f in self.schema:
            if not f.nullable and table.column(f.name).null_count:
                raise ValueError(f"{self.target.table}: null in NOT NULL column {f.name}")
        for name, bounds in self.bounds.items():
            column = table.column(name)
            bounds.add(column, any(check(column.type) for check in BOUNDED))
        if self._writer is None:
            path = f"{self.collection.fs_root}/{self.relative}"
            self.collection.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
            self._writer = pq.ParquetWriter(
                path, self.schema, filesystem=self.collection.fs, compression="snappy"
            )
        self._writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> list[dict[str, Any]]:
        """Finish the file and describe it (an ``AddFile`` as a dict), or nothing without rows."""
        if self._writer is None:
            return []
        self._writer.close()
        self._writer = None
        info = self.collection.fs.get_file_info(f"{self.collection.fs_root}/{self.relative}")
        stats = {
            "numRecords": self.rows,
            "minValues": {
                c: _json_value(b.low) for c, b in self.bounds.items() if b.low is not None
            },
            "maxValues": {
                c: _json_value(b.high) for c, b in self.bounds.items() if b.high is not None
            },
            "nullCount": {c: b.nulls for c, b in self.bounds.items()},
        }
        return [
            {
                "path": quote(self.relative, safe="/="),
                "partitionValues": dict(self.target.partition_values),
                "size": info.size,
                "modificationTime": (info.mtime_ns or time.time_ns()) // 1_000_000,
                "dataChange": True,
                "stats": json.dumps(stats, separators=(",", ":")),
            }
        ]


def write_part(target: FileTarget, frames: Iterable[pd.DataFrame]) -> list[dict[str, Any]]:
    """Write ``frames`` into one file of ``target``; its ``AddFile`` (none without rows)."""
    writer = PartWriter(target)
    for frame in frames:
        writer.write(frame)
    return writer.close()


# Driver side -------------------------------------------------------------------------------


def _jvm(spark: SparkSession) -> Any:
    jvm = spark.sparkContext._jvm
    assert jvm is not None, "a driver-side SparkSession"
    return jvm


def _identifier(spark: SparkSession, table: str) -> Any:
    """``table`` (a name the catalog knows) as a JVM ``TableIdentifier``."""
    return spark._jsparkSession.sessionState().sqlParser().parseTableIdentifier(table)


def _transaction(spark: SparkSession, table: str) -> Any:
    """A Delta transaction on ``table`` (a JVM ``OptimisticTransaction``), on its latest
    snapshot; one that never commits leaves no trace."""
    delta_log = _jvm(spark).org.apache.spark.sql.delta.DeltaLog
    return delta_log.forTable(spark._jsparkSession, _identifier(spark, table)).startTransaction()


def table_location(spark: SparkSession, table: str) -> str:
    """Where table ``table`` (a name the catalog knows) keeps its files, as the catalog says."""
    catalog = spark._jsparkSession.sessionState().catalog()
    return str(catalog.getTableMetadata(_identifier(spark, table)).location().toString())


def read_where(
    spark: SparkSession, table: str, columns: Sequence[str], equals: Mapping[str, str]
) -> pa.Table:
    """Columns ``columns`` of the rows of Delta table ``table`` whose ``equals`` columns hold
    the given values (every row for none), at its latest version, with the table's types (as
    pyspark's ``to_arrow_schema`` maps them; timestamps in UTC). Read with delta-rs on the
    driver, or through Spark where delta-rs cannot read the table; the same rows either way."""
    from deltalake import DeltaTable
    from deltalake.exceptions import DeltaError

    try:
        delta = DeltaTable(table_location(spark, table))
        schema = StructType.fromJson(json.loads(delta.schema().to_json()))
        data = delta.to_pyarrow_table(
            columns=list(columns), filters=[(c, "=", v) for c, v in equals.items()] or None
        )
    except (DeltaError, OSError) as err:
        log.info("%s: read through Spark, as delta-rs cannot (%s)", table, err)
        frame = spark.table(table)
        schema = frame.schema
        match: list[Column] = [F.col(c) == v for c, v in equals.items()]
        selected = frame.where(reduce(lambda a, b: a & b, match, F.lit(True))).select(*columns)
        batches = selected._collect_as_arrow()
        data = pa.Table.from_batches(batches) if batches else None
    wanted = to_arrow_schema(StructType([schema[c] for c in columns]))
    return wanted.empty_table() if data is None else data.select(list(columns)).cast(wanted)


def _scala_map(jmap: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    it = jmap.iterator()
    while it.hasNext():
        pair = it.next()
        out[str(pair._1())] = str(pair._2())
    return out


def _scala_strings(seq: Any) -> list[str]:
    return [str(seq.apply(i)) for i in range(seq.size())]


def file_target(
    spark: SparkSession, table: str, partition_values: Mapping[str, str] | None = None
) -> FileTarget:
    """The :class:`FileTarget` of Delta table ``table`` (a name the catalog knows) for an
    append whose rows all have ``partition_values``.

    Raises:
        FemoError: the table has rules files written here would not keep, or the partition
            values do not name its partition columns.
    """
    return _target_of(_transaction(spark, table), table, partition_values)


def _target_of(
    txn: Any, table: str, partition_values: Mapping[str, str] | None = None
) -> FileTarget:
    """:func:`file_target` from a transaction already started on ``table``."""
    schema_json, configuration, partitions, protocol = _table_state(txn)
    schema = StructType.fromJson(json.loads(schema_json))
    problems = unsupported_rules(schema, configuration, partitions, protocol)
    if problems:
        raise FemoError(f"{table}: cannot append files written in Python: {', '.join(problems)}")
    values = dict(partition_values or {})
    if sorted(values) != sorted(partitions):
        raise FemoError(f"{table}: partition values for {sorted(values)}, table has {partitions}")
    return FileTarget(
        table=table,
        location=str(txn.deltaLog().dataPath().toString()),
        schema_json=schema_json,
        partition_values={p: values[p] for p in partitions},
        stats_columns=tuple(c for c in stats_columns(schema, configuration) if c not in partitions),
    )


def _table_state(txn: Any) -> tuple[str, dict[str, str], list[str], dict[str, Any]]:
    """The table as transaction ``txn`` sees it: schema JSON, properties, partition columns
    and protocol action."""
    metadata = txn.metadata()
    return (
        str(metadata.schemaString()),
        _scala_map(metadata.configuration()),
        _scala_strings(metadata.partitionColumns()),
        json.loads(str(txn.protocol().json()))["protocol"],
    )


def append_rows(spark: SparkSession, table: str, rows: pd.DataFrame) -> int | None:
    """Append a driver-side frame to unpartitioned Delta table ``table``: one file written here,
    committed in the same Delta transaction whose snapshot gave its schema; the new table
    version, or None without rows.

    Raises:
        FemoError: as :func:`file_target`.
    """
    txn = _transaction(spark, table)
    target = _target_of(txn, table)
    return _commit(spark, txn, target, write_part(target, [rows]))


def commit_files(
    spark: SparkSession, target: FileTarget, adds: Sequence[Mapping[str, Any]]
) -> int | None:
    """Commit the files ``adds`` describes (:meth:`PartWriter.close`) to ``target``'s table in
    one Delta append; the new table version, or None when there is nothing to add.

    Raises:
        RunFailedError: the table's schema or partitioning changed since ``target`` was read.
        FemoError: the table gained a rule (a CHECK constraint, a table feature) since then
            that the files would not keep: they are not committed.
    """
    if not adds:
        return None
    txn = _transaction(spark, target.table)
    schema_json, configuration, partitions, protocol = _table_state(txn)
    if schema_json != target.schema_json or partitions != list(target.partition_values):
        raise RunFailedError(
            f"{target.table}: the table's schema changed during the run; run again"
        )
    # the rules again: the table may have changed since file_target
    problems = unsupported_rules(target.schema, configuration, partitions, protocol)
    if problems:
        raise FemoError(
            f"{target.table}: rules files written in Python would not keep were added during "
            f"the run, nothing committed: {', '.join(problems)}"
        )
    return _commit(spark, txn, target, adds)


class ConcurrentCommitError(RunFailedError):
    """Another commit changed what a transaction read before it could commit (Delta's
    optimistic concurrency refused it): read again and decide again."""


@dataclass(frozen=True)
class TableRead:
    """What :func:`read_all` read: the transaction that recorded the read, the table as a
    writer needs it, and the files of the snapshot (paths relative to the table)."""

    txn: Any
    target: FileTarget
    files: list[str]


def read_all(spark: SparkSession, table: str) -> tuple[TableRead, pd.DataFrame]:
    """Every row of small unpartitioned Delta table ``table``, read on the driver, and what
    :func:`replace_all` needs to commit in place of them: a JVM ``OptimisticTransaction`` that
    recorded reading the whole table, so it commits only if no other commit touched the table
    since. The rows are those of the transaction's snapshot, read with delta-rs (Delta's own
    listing of a snapshot's files is a Spark job: seconds).

    Raises:
        FemoError: as :func:`file_target`.
    """
    from deltalake import DeltaTable

    txn = _transaction(spark, table)
    target = _target_of(txn, table)
    txn.readWholeTable()
    snapshot = DeltaTable(target.location, version=int(txn.readVersion()))
    schema = to_arrow_schema(target.schema)
    rows = snapshot.to_pyarrow_table(columns=schema.names).cast(schema).to_pandas()
    return TableRead(txn, target, snapshot.files()), rows


def replace_all(spark: SparkSession, read: TableRead, rows: pd.DataFrame) -> int | None:
    """Commit ``rows`` as the whole content of the table ``read`` (from :func:`read_all`) read,
    in its transaction: one file in place of every file it read. A compare-and-set: the new
    version's number (None when there was nothing to replace and nothing to add).

    Raises:
        ConcurrentCommitError: another commit changed the table since it was read.
    """
    now = int(time.time() * 1000)
    removes = [{"path": quote(p), "deletionTimestamp": now, "dataChange": True} for p in read.files]
    adds = write_part(read.target, [rows]) if len(rows) else []
    try:
        return _commit(spark, read.txn, read.target, adds, removes)
    except Exception as err:
        if lost_a_race(spark, err):
            raise ConcurrentCommitError(f"{read.target.table}: {str(err).splitlines()[0]}") from err
        raise


def lost_a_race(spark: SparkSession, err: BaseException) -> bool:
    """Whether ``err`` is Delta refusing a commit because another commit came first: as
    delta-spark converts it (``delta.exceptions``), or as Py4J raises it."""
    from delta import exceptions as conflicts

    if isinstance(
        err,
        conflicts.DeltaConcurrentModificationException
        | conflicts.ConcurrentWriteException
        | conflicts.MetadataChangedException
        | conflicts.ProtocolChangedException
        | conflicts.ConcurrentAppendException
        | conflicts.ConcurrentDeleteReadException
        | conflicts.ConcurrentDeleteDeleteException
        | conflicts.ConcurrentTransactionException,
    ):
        return True
    java, gateway = getattr(err, "java_exception", None), spark.sparkContext._gateway
    return java is not None and gateway is not None and is_instance_of(gateway, java, CONFLICT)


#: Delta's base class of the errors a commit that lost a race gets.
CONFLICT: Final = "org.apache.spark.sql.delta.DeltaConcurrentModificationException"


def _commit(
    spark: SparkSession,
    txn: Any,
    target: FileTarget,
    adds: Sequence[Mapping[str, Any]],
    removes: Sequence[Mapping[str, Any]] = (),
) -> int | None:
    """Commit ``adds`` to ``target``'s table in transaction ``txn`` in one commit, with the
    operation metrics Spark's writer reports: an append, or with ``removes`` (``RemoveFile``
    actions) an overwrite of those files; None when there is nothing to do."""
    if not adds and not removes:
        return None
    jvm = _jvm(spark)
    delta = jvm.org.apache.spark.sql.delta
    action = getattr(getattr(delta.actions, "Action$"), "MODULE$")
    actions = jvm.java.util.ArrayList()
    for add in adds:
        actions.add(action.fromJson(json.dumps({"add": dict(add)})))
    for remove in removes:
        actions.add(action.fromJson(json.dumps({"remove": dict(remove)})))
    seq = jvm.scala.collection.JavaConverters.asScalaBufferConverter(actions).asScala().toSeq()
    # The figures Spark's writer reports, for DESCRIBE HISTORY's operationMetrics.
    metrics = jvm.java.util.HashMap()
    figures = {
        "numFiles": len(adds),
        "numOutputRows": sum(json.loads(add["stats"])["numRecords"] for add in adds),
        "numOutputBytes": sum(int(add["size"]) for add in adds),
    }
    for name, value in figures.items():
        metric = jvm.org.apache.spark.sql.execution.metric.SQLMetrics.createMetric(
            spark.sparkContext._jsc.sc(), name
        )
        metric.add(value)
        metrics.put(name, metric)
    txn.registerSQLMetrics(
        spark._jsparkSession, jvm.org.apache.spark.api.python.PythonUtils.toScalaMap(metrics)
    )
    none = jvm.scala.Option.empty()
    mode = jvm.org.apache.spark.sql.SaveMode
    operation = getattr(delta, "DeltaOperations$Write")(
        mode.Overwrite if removes else mode.Append, none, none, none
    )
    return int(txn.commit(seq, operation))
