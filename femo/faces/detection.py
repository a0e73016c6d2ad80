"""Faces for the images in ``femo.images``: the Spark side of :mod:`femo.faces.cascade`.

Images are taken once per distinct content and policy, skipped when ``faces`` already has rows
for them under the current detector version, and inspected in iterator-form ``mapInPandas``
(one cascade per task). Rows are MERGEd insert-only on their key, so a re-run adds nothing and a
run with new parameters adds a new version beside the old one.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import pandas as pd
from pyspark.sql import functions as F

from femo.faces.cascade import CropParams, DetectorParams, find_faces, load_cascade
from femo.platform.catalog import LocalRows, merge_rows, upsert
from femo.platform.schemas import FACES, IMAGES, SOURCES
from femo.platform.settings import FacesSettings

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

log = logging.getLogger(__name__)

#: Columns the pandas core produces: the faces table less what the writer adds.
_WRITER_COLUMNS: Final = ("detected_at", "run_id")
FACE_COLUMNS: Final = tuple(f.name for f in FACES.schema.fields if f.name not in _WRITER_COLUMNS)


def params_of(settings: FacesSettings) -> tuple[DetectorParams, CropParams]:
    """Detector and crop parameters from the settings."""
    return (
        DetectorParams(
            settings.cascade,
            settings.scale_factor,
            settings.min_neighbors,
            settings.min_size,
            settings.max_side,
            settings.min_face_ratio,
            settings.downscaled_min_neighbors,
        ),
        CropParams(settings.crop_size, settings.margin),
    )


def detector_version(detector: DetectorParams, crop: CropParams) -> str:
    """Hash of everything that shapes a row: detector and crop parameters."""
    return hashlib.sha256(f"{detector.as_json()}|{crop}".encode()).hexdigest()[:12]


def face_id(image_id: str, policy: str, version: str, index: int) -> str:
    """Stable id of one face row."""
    return hashlib.sha256(f"{image_id}|{policy}|{version}|{index}".encode()).hexdigest()


def find_faces_frame(
    frame: pd.DataFrame, detector: DetectorParams, crop: CropParams, cascade: Any
) -> pd.DataFrame:
    """Faces rows for a frame of (image_id, policy, content). Pure pandas + OpenCV."""
    version = detector_version(detector, crop)
    params = detector.as_json()
    name = f"opencv-haar:{detector.cascade}"
    records = []
    for image_id, policy, content in zip(
        frame["image_id"], frame["policy"], frame["content"], strict=True
    ):
        for row in find_faces(bytes(content), policy, cascade, detector, crop):
            records.append(
                {
                    **row,
                    "face_id": face_id(image_id, policy, version, row["face_index"]),
                    "image_id": image_id,
                    "policy": policy,
                    "detector": name,
                    "detector_version": version,
                    "detector_params": params,
                    "crop_size": crop.size if row["crop"] is not None else None,
                }
            )
    return pd.DataFrame.from_records(records, columns=list(FACE_COLUMNS))


def policy_column(settings: FacesSettings, source: str = "source") -> Column:
    """The policy of the source in column ``source``, as a column expression."""
    column: Column = F.lit(settings.default_policy)
    for name, policy in sorted(settings.policies.items()):
        column = F.when(F.col(source) == name, F.lit(policy)).otherwise(column)
    return column


def pending_images(
    spark: SparkSession,
    database: str,
    settings: FacesSettings,
    version: str,
    sources: Sequence[str],
) -> DataFrame:
    """Distinct (image_id, policy) with their bytes that have no row under ``version`` yet,
    materialised (``localCheckpoint``) so this run's own writes cannot change it."""
    images = spark.table(f"{database}.{IMAGES.name}")
    if sources:
        images = images.where(F.col("source").isin(list(sources)))
    candidates = images.select(
        "image_id", policy_column(settings).alias("policy"), "content"
    ).dropDuplicates(["image_id", "policy"])
    done = (
        spark.table(f"{database}.{FACES.name}")
        .where(F.col("detector_version") == version)
        .select("image_id", "policy")
        .distinct()
    )
    return candidates.join(done, ["image_id", "policy"], "left_anti").localCheckpoint()


def record_policies(
    spark: SparkSession, database: str, settings: FacesSettings, sources: Sequence[str]
) -> None:
    """Set ``sources.face_policy`` of every source with images (of ``sources`` when given) to
    the policy this run applies, so that ``faces_current`` shows each copy of an image the
    detection of its own source's policy. Commits only a changed policy."""
    images = spark.table(f"{database}.{IMAGES.name}")
    if sources:
        images = images.where(F.col("source").isin(list(sources)))
    known = spark.table(f"{database}.{SOURCES.name}").select("source_id")
    policies = (
        images.select(F.col("source").alias("source_id"))
        .distinct()
        .join(known, "source_id", "left_semi")
        .withColumn("face_policy", policy_column(settings, "source_id"))
    )
    merge_rows(spark, SOURCES, database, LocalRows.collected(policies))  # a row per source


@dataclass
class DetectSummary:
    """Outcome of one detection run."""

    version: str
    images: int = 0
    statuses: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        """``detector v: images N, faces F, no_face M, ...``"""
        parts = ", ".join(f"{status} {n}" for status, n in sorted(self.statuses.items()))
        return f"detector {self.version}: images {self.images}" + (f", {parts}" if parts else "")


def detect_faces(
    spark: SparkSession, database: str, settings: FacesSettings, sources: Sequence[str], run_id: str
) -> DetectSummary:
    """Find faces in every pending image and MERGE the rows into ``faces`` (insert-only)."""
    detector, crop = params_of(settings)
    load_cascade(detector.cascade)  # fail fast, on the driver, with a clear message
    summary = DetectSummary(detector_version(detector, crop))
    pending = pending_images(spark, database, settings, summary.version, sources)
    summary.images = pending.count()
    log.info("detector %s: %d images to inspect", summary.version, summary.images)
    record_policies(spark, database, settings, sources)
    if not summary.images:
        return summary

    def run(frames: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        cascade = load_cascade(detector.cascade)  # once per task
        for frame in frames:
            yield find_faces_frame(frame, detector, crop, cascade)

    core_schema = ", ".join(
        f"{f.name} {f.dataType.simpleString()}"
        for f in FACES.schema.fields
        if f.name in FACE_COLUMNS
    )
    tasks = max(1, min(summary.images, 4 * spark.sparkContext.defaultParallelism))
    rows = (
        pending.repartition(tasks)
        .mapInPandas(run, core_schema)
        .select(
            *FACE_COLUMNS, F.current_timestamp().alias("detected_at"), F.lit(run_id).alias("run_id")
        )
        .localCheckpoint()
    )
    summary.statuses.update(
        {r.status: r["count"] for r in rows.groupBy("status").count().collect()}
    )
    upsert(spark, FACES, database, rows, update=False)
    return summary
