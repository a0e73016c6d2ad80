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
    BinaryType,
    DataType,
    DoubleType,
    IntegerType,
    LongType,
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
    #: (``python -m femo.erd``) draws its relations from these.
    references: dict[str, str] = field(default_factory=dict)

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
FACS_TABLES: tuple[TableSpec, ...] = ()

# -- everyday emotions (jobs/ingest_everyday.py) --
EVERYDAY_TABLES: tuple[TableSpec, ...] = ()

# -- downloads (jobs/fetch_api_images.py, jobs/fetch_search_images.py) --
DOWNLOAD_TABLES: tuple[TableSpec, ...] = ()

#: Dimension tables created by ``jobs/init_catalog.py``.
DIMENSION_TABLES: tuple[TableSpec, ...] = (EMOTIONS, SOURCES)

#: Tables written by ``jobs/ingest_images.py`` and ``jobs/detect_faces.py``.
INGEST_TABLES: tuple[TableSpec, ...] = (IMAGES, QUARANTINE, FACES)

#: Tables written by the jobs that read external sources (pages, CSVs, APIs).
EXTERNAL_TABLES: tuple[TableSpec, ...] = (*FACS_TABLES, *EVERYDAY_TABLES, *DOWNLOAD_TABLES)
