"""Table schemas: the one place columns are defined.

Each table is a :class:`TableSpec` constant. :func:`femo.platform.catalog.ensure_table` creates
the Delta table from it (``DeltaTable.createIfNotExists(...).addColumns(schema)``) and adds
columns that a newer spec introduced: schema evolution is additive and explicit. Column
comments live in the field metadata, so ``DESCRIBE TABLE`` shows analysts what each column means.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    DataType,
    DoubleType,
    IntegerType,
    LongType,
    MapType,
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
    #: Columns that point at another table's key, as ``column -> "table.column"``; the ERD
    #: (``python -m femo.analytics.erd``) draws its relations from these.
    references: dict[str, str] = field(default_factory=dict)

    def schema_without(self, names: Iterable[str]) -> StructType:
        """The table's columns less ``names`` (the stamps a run writes): what a writer
        compares with the stored rows."""
        left_out = set(names)
        return StructType([f for f in self.schema.fields if f.name not in left_out])

    def merge_condition(self, target: str = "t", source: str = "s") -> str:
        """The MERGE condition that matches rows on this table's key."""
        return " AND ".join(f"{target}.`{k}` = {source}.`{k}`" for k in self.key)


EMOTIONS = TableSpec(
    name="emotions",
    comment="Emotion classes in FER-2013 order plus contempt; every source maps its labels here.",
    key=("emotion_id",),
    schema=StructType(
        [
            col(
                "emotion_id", IntegerType(), "FER-2013 class id (0-6), 7 = contempt", nullable=False
            ),
            col("name", StringType(), "canonical lower-case name", nullable=False),
            col(
                "synonyms",
                ArrayType(StringType(), False),
                "lower-case label names that datasets use for this emotion, the name included",
            ),
            col("valence", StringType(), "positive, negative or neutral"),
        ]
    ),
)

SOURCES = TableSpec(
    name="sources",
    comment="Where data comes from: one row per dataset, API or page femo ingests.",
    key=("source_id",),
    schema=StructType(
        [
            col("source_id", StringType(), "short stable identifier, e.g. fer2013", nullable=False),
            col("name", StringType(), "human-readable name"),
            col(
                "kind",
                StringType(),
                "image_folders, fer_csv, image_api, web_search, web_page or csv",
            ),
            col("url", StringType(), "where the data is published"),
            col("licence", StringType(), "licence or terms of use as stated by the publisher"),
            col("notes", StringType(), "anything an analyst should know"),
            col("registered_at", TimestampType(), "when femo first registered the source"),
            col(
                "face_policy",
                StringType(),
                "the faces.policy jobs/detect_faces.py last applied to this source's images",
            ),
        ]
    ),
)

_ORIGIN = (
    col(
        "origin",
        StringType(),
        "the listed file this row came from (a CSV for fer_csv rows)",
        nullable=False,
    ),
    col("origin_size", LongType(), "size of the origin file in bytes when read"),
    col("origin_modified_at", TimestampType(), "modification time of the origin file when read"),
)
_RUN = (col("run_id", StringType(), "the ingest run that wrote the row"),)

#: Facts measured from an image's pixels, in the order the ingest transform produces them.
IMAGE_FACTS = StructType(
    [
        col("image_id", StringType(), "sha256 of the bytes (hex); equal bytes, equal id"),
        col(
            "format", StringType(), "format sniffed from the bytes: jpeg, png, gif, bmp, webp, tiff"
        ),
        col("height", IntegerType(), "pixels"),
        col("width", IntegerType(), "pixels"),
        col("channels", IntegerType(), "decoded channels: 1, 3 or 4"),
        col("color_space", StringType(), "grayscale (incl. 3 equal channels) or color"),
        col("aspect_ratio", DoubleType(), "width / height"),
        col("file_size_bytes", LongType(), "size of the image bytes"),
        col("brightness", DoubleType(), "mean gray level, 0-255"),
        col("contrast", DoubleType(), "standard deviation of the gray levels"),
        col("sharpness", DoubleType(), "variance of the Laplacian of the gray image"),
        col("phash", LongType(), "64-bit DCT perceptual hash; near-duplicates differ in few bits"),
    ]
)

IMAGES = TableSpec(
    name="images",
    comment="One row per ingested image file, with its bytes and measured metadata.",
    key=("source", "path"),
    partition_by=("source",),
    # Delta's file statistics only for columns queries filter on (not the bytes, not the
    # paths, whose first 32 characters are all alike): cheaper writes, same data skipping.
    properties={
        "delta.dataSkippingStatsColumns": (
            "label_id,split,image_id,format,height,width,color_space,ingested_at,run_id"
        )
    },
    references={"source": "sources.source_id", "label_id": "emotions.emotion_id"},
    schema=StructType(
        [
            col("source", StringType(), "source_id in sources", nullable=False),
            col(
                "path",
                StringType(),
                "where the image was read (file URI, or CSV URI#line=N)",
                nullable=False,
            ),
            col("label", StringType(), "label as the source wrote it (folder name, CSV value)"),
            col("label_id", IntegerType(), "emotion_id the label maps to"),
            col("split", StringType(), "train, test, val or unsplit"),
            *IMAGE_FACTS.fields,
            col(
                "content", BinaryType(), "the image bytes, so crops are reproducible from the table"
            ),
            *_ORIGIN,
            col("ingested_at", TimestampType(), "when the row was written"),
            *_RUN,
        ]
    ),
)

QUARANTINE = TableSpec(
    name="quarantine",
    comment="Every input femo rejected, with a machine-readable reason and a detail.",
    key=("source", "path"),
    references={"source": "sources.source_id"},
    schema=StructType(
        [
            col("source", StringType(), "source_id in sources", nullable=False),
            col("path", StringType(), "the rejected file (or CSV URI#line=N)", nullable=False),
            col(
                "reason",
                StringType(),
                "machine-readable reason, e.g. truncated, unknown_label",
                nullable=False,
            ),
            col("detail", StringType(), "what exactly was wrong"),
            col("label", StringType(), "label as the source wrote it, if any"),
            col("split", StringType(), "split as found, if any"),
            *_ORIGIN,
            col("seen_at", TimestampType(), "when the rejection was recorded"),
            *_RUN,
        ]
    ),
)

INGESTED_FILES = TableSpec(
    name="ingested_files",
    comment=(
        "One row per file each time an ingest run finished it: its fingerprint and how many "
        "rows it gave. A file whose fingerprint is here is skipped by later runs."
    ),
    key=("source", "origin", "run_id"),
    references={"source": "sources.source_id"},
    schema=StructType(
        [
            col("source", StringType(), "source_id in sources", nullable=False),
            *_ORIGIN,
            col("layout", StringType(), "folders or fer_csv"),
            col("images", LongType(), "rows the file gave to images"),
            col("quarantined", LongType(), "rows the file gave to quarantine"),
            col("ingested_at", TimestampType(), "when the file was finished"),
            *_RUN,
        ]
    ),
)

FACES = TableSpec(
    name="faces",
    comment="Faces found in images (one row per face, or one no_face row per image), with crops.",
    key=("image_id", "policy", "detector_version", "face_index"),
    references={"image_id": "images.image_id"},
    schema=StructType(
        [
            col(
                "face_id",
                StringType(),
                "sha256 of image_id|policy|detector_version|face_index",
                nullable=False,
            ),
            col("image_id", StringType(), "the image (images.image_id)", nullable=False),
            col(
                "policy",
                StringType(),
                "detect, or whole_image for already-cropped faces",
                nullable=False,
            ),
            col("detector", StringType(), "detector and cascade, e.g. opencv-haar:haarcascade_..."),
            col(
                "detector_version",
                StringType(),
                "hash of detector and crop parameters",
                nullable=False,
            ),
            col("detector_params", StringType(), "the parameters as JSON"),
            col("status", StringType(), "face, no_face or undecodable"),
            col("face_index", IntegerType(), "0 is the largest face", nullable=False),
            col("faces_in_image", IntegerType(), "faces this row's image yielded"),
            col(
                "detected_faces",
                IntegerType(),
                "what the detector found (a check under whole_image)",
            ),
            col("bbox_x", IntegerType(), "left, original pixels"),
            col("bbox_y", IntegerType(), "top, original pixels"),
            col("bbox_w", IntegerType(), "width, original pixels"),
            col("bbox_h", IntegerType(), "height, original pixels"),
            col("crop", BinaryType(), "PNG of the square grayscale crop, ready for training"),
            col("crop_size", IntegerType(), "crop side in pixels"),
            col("detected_at", TimestampType(), "when the row was written"),
            *_RUN,
        ]
    ),
)

# -- FACS tables (jobs/scrape_facs.py) --
_SCRAPE = (
    col("source_url", StringType(), "the page the row was read from"),
    col("scraped_at", TimestampType(), "when the row was first written or last changed"),
    col("run_id", StringType(), "the scrape run that last wrote the row"),
)

ACTION_UNITS = TableSpec(
    name="action_units",
    comment="FACS action units as the iMotions guide lists them: name, muscle, example GIF.",
    key=("action_unit",),
    schema=StructType(
        [
            col("action_unit", IntegerType(), "FACS action unit number, e.g. 12", nullable=False),
            col("name", StringType(), "the guide's description, e.g. Lip Corner Puller"),
            col("facial_muscle", StringType(), "the muscle(s) behind the movement"),
            col("example_gif_url", StringType(), "animated example of the movement"),
            col("note", StringType(), "the AU cell's remark, e.g. also shows slight AU4 and AU10"),
            *_SCRAPE,
        ]
    ),
)

EMOTION_ACTION_UNITS = TableSpec(
    name="emotion_action_units",
    comment="Which action units make up each emotion (one row per emotion and action unit).",
    key=("emotion_id", "action_unit"),
    references={
        "emotion_id": "emotions.emotion_id",
        "action_unit": "action_units.action_unit",
    },
    schema=StructType(
        [
            col("emotion_id", IntegerType(), "the emotion (emotions.emotion_id)", nullable=False),
            col("emotion", StringType(), "the emotion as the page wrote it, e.g. Happiness / Joy"),
            col("action_unit", IntegerType(), "one action unit of the emotion", nullable=False),
            col("position", IntegerType(), "1-based place of the AU in the page's combination"),
            col("action_units_text", StringType(), "the combination as written, e.g. 6 + 12"),
            col("note", StringType(), "the combination's remark, e.g. on one side of the face"),
            col("description", StringType(), "the page's description of the combination"),
            *_SCRAPE,
        ]
    ),
)

FACS_TABLES: tuple[TableSpec, ...] = (ACTION_UNITS, EMOTION_ACTION_UNITS)

# -- everyday emotions (jobs/ingest_everyday.py) --
EVERYDAY_EMOTIONS = TableSpec(
    name="everyday_emotions",
    comment=(
        "Emotions in everyday life (Trampe, Quoidbach & Taquet 2015): one row per complete, "
        "valid response of the study's CSV; rejected lines are in quarantine."
    ),
    key=("source", "origin", "line_no"),
    references={"source": "sources.source_id", "felt": "everyday_emotion_names.emotion"},
    schema=StructType(
        [
            col("source", StringType(), "source_id in sources", nullable=False),
            col("origin", StringType(), "URI of the CSV the row was read from", nullable=False),
            col("line_no", LongType(), "line in the CSV, 1-based (header: 1)", nullable=False),
            col("id", StringType(), "the row's id as published (text: an identifier)"),
            col("hour", IntegerType(), "hour of the report, 0-23 (the CSV's Hours)"),
            col("day", StringType(), "the CSV's Day as written, trimmed"),
            col("weekday", StringType(), "Monday ... Sunday"),
            col("weekday_no", IntegerType(), "ISO 8601 weekday: 1 = Monday ... 7 = Sunday"),
            col(
                "felt",
                ArrayType(StringType(), False),
                "clean names of the emotions flagged 1, in the CSV's column order; "
                "everyday_emotion_names holds all 18 with their valence",
            ),
            col("ingested_at", TimestampType(), "when the row was last written"),
            *_RUN,
        ]
    ),
)

EVERYDAY_EMOTION_NAMES = TableSpec(
    name="everyday_emotion_names",
    comment=(
        "The 18 emotions of the everyday-emotions CSV: published column name, clean name, "
        "valence; written from femo.sources.everyday.STUDY_EMOTIONS."
    ),
    key=("emotion",),
    references={"emotion_id": "emotions.emotion_id"},
    schema=StructType(
        [
            col("emotion", StringType(), "clean snake_case name, e.g. offense", nullable=False),
            col("original_name", StringType(), "column name as published, e.g. Ofense"),
            col("valence", StringType(), "positive or negative, as the study groups them"),
            col("position", IntegerType(), "column order in the CSV, 1-18"),
            col("emotion_id", IntegerType(), "the femo emotion it is a label of, if any"),
        ]
    ),
)

EVERYDAY_TABLES: tuple[TableSpec, ...] = (EVERYDAY_EMOTIONS, EVERYDAY_EMOTION_NAMES)

# -- downloads (jobs/fetch_api_images.py: image APIs and web image searches) --
DOWNLOADS = TableSpec(
    name="downloads",
    comment="Manifest of images downloaded from image APIs and web searches into the landing "
    "zone: one row per source image, where it came from and where it lies.",
    key=("source", "source_image_id"),
    references={
        "source": "sources.source_id",
        "emotion_id": "emotions.emotion_id",
        "sha256": "images.image_id",
    },
    schema=StructType(
        [
            col("source", StringType(), "source_id in sources (the connector)", nullable=False),
            col(
                "source_image_id",
                StringType(),
                "the source's id of the image (Pixabay id; a hash of the URL for web searches)",
                nullable=False,
            ),
            col("emotion_id", IntegerType(), "emotion the query asked for"),
            col("emotion", StringType(), "its name: the landing folder, the label at ingest"),
            col("query", StringType(), "search text sent, e.g. 'happy face'"),
            col("page_url", StringType(), "page that shows the image (redacted)"),
            col("image_url", StringType(), "URL the bytes were downloaded from (redacted)"),
            col("title", StringType(), "title or tags as the source gives them"),
            col("licence", StringType(), "licence or terms of use of the image"),
            col("author", StringType(), "author or uploader, when the source names one"),
            col("width", IntegerType(), "width in pixels as announced by the source"),
            col("height", IntegerType(), "height in pixels as announced by the source"),
            col("status", StringType(), "downloaded, or duplicate (same bytes as duplicate_of)"),
            col("duplicate_of", StringType(), "source_image_id of the stored copy, if duplicate"),
            col("sha256", StringType(), "sha256 of the bytes: images.image_id once ingested"),
            col("format", StringType(), "format sniffed from the bytes"),
            col("size_bytes", LongType(), "bytes downloaded"),
            col("landing_path", StringType(), "file in the landing zone (the stored copy)"),
            col("fetched_at", TimestampType(), "when the bytes were downloaded"),
            *_RUN,
        ]
    ),
)
DOWNLOAD_TABLES: tuple[TableSpec, ...] = (DOWNLOADS,)

# -- Training sets (jobs/build_training_set.py) --
TRAINING_SETS = TableSpec(
    name="training_sets",
    comment="One row per training set: how it was chosen, the Delta versions it read, counts.",
    key=("set_id",),
    schema=StructType(
        [
            col(
                "set_id",
                StringType(),
                "hash of the parameters and the table versions read: same inputs, same id",
                nullable=False,
            ),
            col("params", StringType(), "the selection parameters as JSON"),
            col(
                "table_versions",
                MapType(StringType(), LongType()),
                "Delta version of each table read (faces, images, emotions): rebuild with them",
            ),
            col("classes", ArrayType(IntegerType()), "emotion ids the set trains, in order"),
            col(
                "class_weights",
                MapType(IntegerType(), DoubleType()),
                "emotion id -> weight, train rows / (classes x rows of that class)",
            ),
            col("split_counts", MapType(StringType(), LongType()), "rows per split"),
            col(
                "excluded",
                MapType(StringType(), LongType()),
                "candidates left out, by reason (in_test, similar_to_test, label_conflict, ...)",
            ),
            col("rows", LongType(), "rows in training_examples"),
            col("created_at", TimestampType(), "when the set was completed"),
            col("run_id", StringType(), "the run that built the set"),
        ]
    ),
)

TRAINING_EXAMPLES = TableSpec(
    name="training_examples",
    comment="The rows of each training set: a face crop, its label, split and class weight.",
    key=("set_id", "source", "path"),
    partition_by=("set_id", "split"),
    references={
        "set_id": "training_sets.set_id",
        "face_id": "faces.face_id",
        "image_id": "images.image_id",
        "label_id": "emotions.emotion_id",
    },
    schema=StructType(
        [
            col("set_id", StringType(), "the set (training_sets.set_id)", nullable=False),
            col("source", StringType(), "source of the image copy", nullable=False),
            col("path", StringType(), "path of the image copy", nullable=False),
            col("image_id", StringType(), "the image (images.image_id)", nullable=False),
            col("face_id", StringType(), "the face (faces.face_id)", nullable=False),
            col("label_id", IntegerType(), "emotion id", nullable=False),
            col("split", StringType(), "train, val or test", nullable=False),
            col("weight", DoubleType(), "class weight of the label"),
            col("phash", LongType(), "64-bit DCT perceptual hash of the crop"),
            col("crop", BinaryType(), "PNG of the crop (faces.crop)", nullable=False),
            col("crop_size", IntegerType(), "crop side in pixels"),
        ]
    ),
)

# -- Training runs (jobs/train.py); the registry and its aliases live in MLflow --
TRAINING_RUNS = TableSpec(
    name="training_runs",
    comment="One row per finished training run, keyed by its MLflow run id.",
    key=("run_id",),
    references={"set_id": "training_sets.set_id"},
    schema=StructType(
        [
            col(
                "run_id",
                StringType(),
                "MLflow run id (the run's page and artefacts)",
                nullable=False,
            ),
            col("set_id", StringType(), "training set it learned from", nullable=False),
            col("model_name", StringType(), "registered model in MLflow"),
            col("model_version", IntegerType(), "version of model_name this run registered"),
            col("architecture", StringType(), "zoo network (femo.ml.zoo)"),
            col("parameters", LongType(), "trainable and other weights of the network"),
            col("params", StringType(), "training settings as JSON"),
            col("ranks", IntegerType(), "Horovod ranks it ran on"),
            col("epochs", IntegerType(), "epochs trained"),
            col("best_epoch", IntegerType(), "epoch whose weights were kept (best val accuracy)"),
            col("stopped_by", StringType(), "epochs, budget or early_stopping"),
            col("train_seconds", DoubleType(), "wall-clock seconds of the epochs"),
            col("val_accuracy", DoubleType(), "best validation accuracy"),
            col("test_accuracy", DoubleType(), "accuracy on the set's test split"),
            col("test_macro_f1", DoubleType(), "macro-F1 on the test split"),
            col(
                "test_accuracy_flip",
                DoubleType(),
                "test accuracy averaging the picture and its mirror image (test-time augmentation)",
            ),
            col("training_examples_version", LongType(), "Delta version of training_examples read"),
            col("finished_at", TimestampType(), "when the run was recorded"),
        ]
    ),
)

RUN_METRICS = TableSpec(
    name="run_metrics",
    comment="Evaluation of each training run: overall and per-class metrics, confusion matrix.",
    key=("run_id", "split", "metric", "label_id", "predicted_id"),
    references={
        "run_id": "training_runs.run_id",
        "set_id": "training_sets.set_id",
        "label_id": "emotions.emotion_id",
    },
    schema=StructType(
        [
            col("run_id", StringType(), "MLflow run id", nullable=False),
            col("set_id", StringType(), "training set of the run", nullable=False),
            col("split", StringType(), "split evaluated: val or test", nullable=False),
            col(
                "metric",
                StringType(),
                "accuracy, macro_f1, examples; per class precision, recall, f1, support; "
                "confusion (a cell of the matrix)",
                nullable=False,
            ),
            col("label_id", IntegerType(), "true emotion id; NULL for overall metrics"),
            col("predicted_id", IntegerType(), "predicted emotion id (confusion cells only)"),
            col("value", DoubleType(), "the figure (a count for support and confusion)"),
        ]
    ),
)

ML_TABLES: tuple[TableSpec, ...] = (TRAINING_SETS, TRAINING_EXAMPLES, TRAINING_RUNS, RUN_METRICS)

# -- Leases (femo.platform.leases) --
JOB_LEASES = TableSpec(
    name="job_leases",
    comment="Which run of a writing job holds each source now (released_at NULL) or held it "
    "last: one row per job and source; a second run of the same job on the same source stops "
    "while the lease is held.",
    key=("lease",),
    references={"scope": "sources.source_id"},
    schema=StructType(
        [
            col("lease", StringType(), "job/scope, e.g. ingest_images/fer2013", nullable=False),
            col("job", StringType(), "the job holding it, e.g. ingest_images", nullable=False),
            col("scope", StringType(), "what it writes: a source id", nullable=False),
            col("token", StringType(), "id of this holding (new each time it is taken)"),
            col("host", StringType(), "host name of the holding driver"),
            col("pid", IntegerType(), "process id of the holding driver"),
            col("pid_started", LongType(), "its start time in clock ticks after boot (Linux)"),
            col("application_id", StringType(), "Spark application id of the holder"),
            col("acquired_at", TimestampType(), "when the holder took it"),
            col("heartbeat_at", TimestampType(), "when the holder last said it was alive"),
            col("released_at", TimestampType(), "when the holder gave it back; NULL: held"),
        ]
    ),
)

#: Tables of femo's own bookkeeping.
PLATFORM_TABLES: tuple[TableSpec, ...] = (JOB_LEASES,)

#: Dimension tables created by ``jobs/init_catalog.py``.
DIMENSION_TABLES: tuple[TableSpec, ...] = (EMOTIONS, SOURCES)

#: Tables written by ``jobs/ingest_images.py`` and ``jobs/detect_faces.py``.
INGEST_TABLES: tuple[TableSpec, ...] = (IMAGES, QUARANTINE, INGESTED_FILES, FACES)

#: Tables written by the jobs that read external sources (pages, CSVs, APIs).
EXTERNAL_TABLES: tuple[TableSpec, ...] = (*FACS_TABLES, *EVERYDAY_TABLES, *DOWNLOAD_TABLES)
