"""Training sets from ``femo.faces``, pinned to the Delta versions they read.

A set is chosen from snapshots of ``faces``, ``images`` and ``emotions`` at versions read once
at the start, so the same versions and parameters always give the same rows and the same set
id (:func:`femo.ml.selection.set_id`), and ``--rebuild`` brings a set back with time travel.
Rules (:mod:`femo.ml.selection` holds the pure parts):

- a candidate is the largest face of the newest detection of a labelled image copy, under its
  source's face policy (``sql/ml/training_candidates.sql``);
- the dataset's own test split is kept, every copy of it; images without a split of their own
  (``unsplit``) go to test by a hash of their bytes (``test_fraction``);
- validation is carved from train by a hash of the image id, stable across runs and seeds;
- train and validation lose every picture whose bytes (``in_test``) or perceptual hash
  (``similar_to_test``) occur in test, every picture held under two labels
  (``label_conflict``), and all but one copy of the same picture (``duplicate``);
- ``--fraction`` and ``--per-emotion`` then sample each split per emotion by a seeded hash;
- class weights come from the train split.

The rows go to ``training_examples`` (partitions ``set_id`` and ``split``, with the crops: a
reader needs no join), then one row to ``training_sets``: a set is complete when its row is
there, and a run killed before that leaves rows that the next run replaces (``replaceWhere``
on the set's partition), never duplicates.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from femo.faces.detection import policy_column
from femo.ingest.layout import TEST, TRAIN, UNSPLIT, VAL
from femo.ml.selection import (
    DUPLICATE,
    IN_TEST,
    LABEL_CONFLICT,
    MISSING_CROP,
    NOT_SAMPLED,
    SIMILAR_TO_TEST,
    SelectionParams,
    TrainingSetError,
    bucket_expr,
    check_classes,
    class_weights,
    hash_frames,
    set_id,
)
from femo.platform.catalog import upsert
from femo.platform.delta_files import read_where, table_location
from femo.platform.schemas import TRAINING_EXAMPLES, TRAINING_SETS
from femo.platform.settings import FacesSettings
from femo.platform.sql import run_sql

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

#: The tables a set reads, each at one pinned version.
SNAPSHOT_TABLES: tuple[str, ...] = ("emotions", "faces", "images")

#: Files written per split: at least MIN_FILES (each a Parquet row group: a reader shards
#: row groups across its ranks, and a rank without one has nothing to read), more for
#: big splits, about ROWS_PER_FILE rows (some 4 MB of crops) each.
MIN_FILES = 4
ROWS_PER_FILE = 2000

_SET_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class TrainingSetSummary:
    """What a build did; :meth:`line` is the job's summary."""

    set_id: str
    table_versions: dict[str, int]
    split_counts: dict[str, int] = field(default_factory=dict)
    excluded: dict[str, int] = field(default_factory=dict)
    classes: list[int] = field(default_factory=list)
    weights: dict[int, float] = field(default_factory=dict)
    status: str = "built"  # built, exists or rebuilt

    def line(self) -> str:
        versions = ", ".join(f"{t} v{v}" for t, v in sorted(self.table_versions.items()))
        if self.status == "exists":
            return f"training set {self.set_id} is already built from {versions}: nothing to do"
        splits = ", ".join(f"{self.split_counts.get(s, 0):,} {s}" for s in (TRAIN, VAL, TEST))
        left_out = ", ".join(f"{r} {n:,}" for r, n in sorted(self.excluded.items()) if n)
        weights = self.weights.values()
        return (
            f"training set {self.set_id} {self.status}: {splits} rows of {len(self.classes)} "
            f"emotions; left out: {left_out or 'none'}; class weights "
            f"{min(weights, default=0):.2f}-{max(weights, default=0):.2f}; read {versions}"
        )


def check_set_id(value: str) -> str:
    """``value`` if it has the shape of a set id (32 lower-case hex digits)."""
    if not _SET_ID.match(value):
        raise TrainingSetError(f"{value!r} is not a training set id (32 hex digits)")
    return value


def table_versions(spark: SparkSession, database: str) -> dict[str, int]:
    """The current Delta version of each table of :data:`SNAPSHOT_TABLES`."""
    from delta.tables import DeltaTable

    return {
        name: int(
            DeltaTable.forName(spark, f"{database}.{name}").history(1).first()["version"]  # type: ignore[index]
        )
        for name in SNAPSHOT_TABLES
    }


def snapshot(spark: SparkSession, database: str, table: str, version: int) -> DataFrame:
    """Table ``table`` as it was at Delta ``version`` (time travel)."""
    location = table_location(spark, f"{database}.{table}")
    return spark.read.format("delta").option("versionAsOf", int(version)).load(location)


def candidates(
    spark: SparkSession, database: str, versions: dict[str, int], faces: FacesSettings
) -> DataFrame:
    """The candidate faces of ``sql/ml/training_candidates.sql`` over the tables at
    ``versions``, each image copy's policy that of its source under ``faces``."""
    snapshot(spark, database, "faces", versions["faces"]).createOrReplaceTempView("ts_faces")
    images = snapshot(spark, database, "images", versions["images"])
    images.withColumn("policy", policy_column(faces)).createOrReplaceTempView("ts_images")
    emotions = snapshot(spark, database, "emotions", versions["emotions"])
    emotions.createOrReplaceTempView("ts_emotions")
    return run_sql(spark, "ml/training_candidates")


def choose(rows: DataFrame, params: SelectionParams) -> DataFrame:
    """``rows`` (candidates with the ``phash`` of their crop) with the set's ``set_split`` and why
    each is left out (``reason``, NULL for the rows of the set): the rules of this module's
    docstring, and ``missing_crop`` for a face row without a crop that decodes."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    own_split = F.col("split")
    set_split = (
        F.when(own_split == TEST, F.lit(TEST))
        .when(
            (own_split == UNSPLIT)
            & (F.expr(bucket_expr("image_id", "test")) < params.test_fraction),
            F.lit(TEST),
        )
        .when(own_split == VAL, F.lit(VAL))
        .when(F.expr(bucket_expr("image_id", "val")) < params.val_fraction, F.lit(VAL))
        .otherwise(F.lit(TRAIN))
    )
    rows = rows.withColumn("set_split", set_split)
    usable = F.col("crop").isNotNull() & F.col("phash").isNotNull()  # hashed: it decodes
    missing = rows.where(~usable).withColumn("reason", F.lit(MISSING_CROP))
    rows = rows.where(usable)
    test = rows.where(F.col("set_split") == TEST)
    test_ids = test.select("image_id").distinct().withColumn("_in_test", F.lit(True))
    test_hashes = test.select("phash").distinct().withColumn("_similar", F.lit(True))
    pool = (
        rows.where(F.col("set_split") != TEST)
        .join(test_ids, "image_id", "left")
        .join(test_hashes, "phash", "left")
    )
    same_picture = Window.partitionBy("phash")
    first_copy = Window.partitionBy("phash").orderBy("image_id", "source", "path")
    reason = (
        F.when(F.col("_in_test"), F.lit(IN_TEST))
        .when(F.col("_similar"), F.lit(SIMILAR_TO_TEST))
        .when(F.size(F.collect_set("label_id").over(same_picture)) > 1, F.lit(LABEL_CONFLICT))
        .when(F.row_number().over(first_copy) > 1, F.lit(DUPLICATE))
    )
    pool = pool.withColumn("reason", reason).drop("_in_test", "_similar")
    chosen = test.withColumn("reason", F.lit(None).cast("string")).unionByName(pool)
    chosen = chosen.unionByName(missing)
    draw = F.expr(bucket_expr("concat(image_id, '|', source, '|', path)", f"s{params.seed}"))
    chosen = chosen.withColumn("_draw", draw)
    sampled = F.lit(True)
    if params.fraction is not None:
        sampled = F.col("_draw") < params.fraction
    if params.per_emotion is not None:
        rank = Window.partitionBy("set_split", "label_id").orderBy(
            F.col("reason").isNotNull(), (~sampled), "_draw"
        )
        sampled = sampled & (F.row_number().over(rank) <= params.per_emotion)
    keep = F.col("reason").isNull()
    return chosen.withColumn(
        "reason", F.when(keep & ~sampled, F.lit(NOT_SAMPLED)).otherwise(F.col("reason"))
    ).drop("_draw")


def build_training_set(
    spark: SparkSession,
    database: str,
    params: SelectionParams,
    faces: FacesSettings,
    *,
    run_id: str,
    rebuild: str | None = None,
) -> TrainingSetSummary:
    """Build the set ``params`` choose from the tables as they are now, or, with ``rebuild``
    (a set id), that set again from the versions and parameters it recorded."""
    from pyspark.sql import functions as F

    sets = f"{database}.{TRAINING_SETS.name}"
    if rebuild is not None:
        record = spark.table(sets).where(F.col("set_id") == check_set_id(rebuild)).first()
        if record is None:
            raise TrainingSetError(f"no training set {rebuild} in {sets}")
        params = SelectionParams.from_json(record["params"])
        versions = {k: int(v) for k, v in record["table_versions"].items()}
    else:
        versions = table_versions(spark, database)
    sid = set_id(params, versions)
    summary = TrainingSetSummary(sid, versions, status="rebuilt" if rebuild else "built")
    if rebuild is not None and sid != rebuild:
        raise TrainingSetError(
            f"training set {rebuild} was chosen by other selection rules: it cannot be rebuilt"
            f" by this femo (it would be {sid})"
        )
    if rebuild is None and read_where(spark, sets, ["set_id"], {"set_id": sid}).num_rows:
        summary.status = "exists"
        return summary

    found = candidates(spark, database, versions, faces)
    if params.sources:
        found = found.where(F.col("source").isin(list(params.sources)))
    hashes = found.where(F.col("crop").isNotNull()).select("face_id", "crop")
    hashes = hashes.dropDuplicates(["face_id"]).mapInPandas(
        hash_frames, "face_id string, phash long"
    )
    chosen = choose(found.join(hashes, "face_id", "left"), params).localCheckpoint()
    # one pass for every figure: rows by reason, split and emotion
    per_class: dict[str, dict[int, int]] = {}
    summary.excluded = {MISSING_CROP: 0}
    for r in chosen.groupBy("reason", "set_split", "label_id").count().collect():
        if r["reason"] is None:
            per_class.setdefault(r["set_split"], {})[r["label_id"]] = r["count"]
        else:
            summary.excluded[r["reason"]] = summary.excluded.get(r["reason"], 0) + r["count"]
    log.info("training set %s: %s", sid, json.dumps(summary.excluded))
    summary.classes = check_classes(per_class)
    summary.weights = class_weights(per_class[TRAIN])
    summary.split_counts = {split: sum(c.values()) for split, c in per_class.items()}

    weight_of = F.create_map(*(F.lit(x) for kv in summary.weights.items() for x in kv))
    examples = chosen.where(F.col("reason").isNull()).select(
        F.lit(sid).alias("set_id"),
        "source",
        "path",
        "image_id",
        "face_id",
        "label_id",
        F.col("set_split").alias("split"),
        F.element_at(weight_of, F.col("label_id")).alias("weight"),
        "phash",
        "crop",
        "crop_size",
    )
    files = max(MIN_FILES, -(-sum(summary.split_counts.values()) // ROWS_PER_FILE))
    (
        examples.repartition(files, "image_id")
        .write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", f"set_id = '{sid}'")  # sid: 32 hex digits, made above
        .save(table_location(spark, f"{database}.{TRAINING_EXAMPLES.name}"))
    )
    if rebuild is None:
        record_set(spark, database, summary, params, run_id)
    return summary


def record_set(
    spark: SparkSession,
    database: str,
    summary: TrainingSetSummary,
    params: SelectionParams,
    run_id: str,
) -> None:
    """Insert the set's row into ``training_sets`` (insert-only: a row there is never
    rewritten), which marks the set complete."""
    row: dict[str, Any] = {
        "set_id": summary.set_id,
        "params": params.as_json(),
        "table_versions": summary.table_versions,
        "classes": summary.classes,
        "class_weights": summary.weights,
        "split_counts": summary.split_counts,
        "excluded": summary.excluded,
        "rows": sum(summary.split_counts.values()),
        "created_at": datetime.now(UTC),
        "run_id": run_id,
    }
    schema = TRAINING_SETS.schema
    frame = spark.createDataFrame([tuple(row[f.name] for f in schema.fields)], schema)
    upsert(spark, TRAINING_SETS, database, frame, update=False)
    log.info("recorded training set %s: %s", summary.set_id, json.dumps(summary.split_counts))
