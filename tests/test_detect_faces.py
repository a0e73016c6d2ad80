"""jobs/detect_faces.py over ingested images: per-source policy, versions, idempotence."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from pyspark.sql import SparkSession
from skimage import data

from femo.ingest.sample import encode, face_like
from femo.platform.settings import Settings
from jobs.detect_faces import DetectFaces
from jobs.ingest_images import IngestImages

from .conftest import own_database
from .conftest import run_job as run


@pytest.fixture(scope="module")
def ingested(
    spark: SparkSession, catalog: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    root = tmp_path_factory.mktemp("faces")
    photos = root / "photos"
    (photos / "happy").mkdir(parents=True)
    (photos / "sad").mkdir()
    (photos / "happy" / "astronaut.png").write_bytes(
        encode(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), ".png")
    )
    rng = np.random.default_rng(8)
    (photos / "sad" / "noise.png").write_bytes(
        encode(rng.integers(0, 256, (240, 320), dtype=np.uint8), ".png")
    )
    (photos / "sad" / "gradient.png").write_bytes(
        encode(np.tile(np.arange(200, dtype=np.uint8), (150, 1)), ".png")
    )
    fer = root / "fer" / "train" / "angry"
    fer.mkdir(parents=True)
    for i in range(3):
        (fer / f"Training_{i}.jpg").write_bytes(encode(face_like(rng, 48, color=False), ".jpg"))
    run(IngestImages, spark, catalog, "--source", "photos", "--path", str(photos))
    run(IngestImages, spark, catalog, "--source", "fer2013", "--path", str(root / "fer"))
    return catalog


def test_detection_by_policy(spark: SparkSession, ingested: Settings) -> None:
    line = run(DetectFaces, spark, ingested, "--source", "photos", "--source", "fer2013")
    found = re.fullmatch(r"detector [0-9a-f]{12}: images 6, face (\d+), no_face 2", line)
    assert found, line
    assert int(found.group(1)) >= 4  # the astronaut's face(s) and 3 whole FER images
    rows = spark.sql(
        "SELECT regexp_extract(path, '[^/]+$', 0) AS file, source, policy, status, "
        "faces_in_image, bbox_w, crop_size FROM femo.faces_current ORDER BY file, face_index"
    ).collect()
    by_file = {}
    for r in rows:
        by_file.setdefault(r.file, []).append(r)
    astronaut = by_file["astronaut.png"][0]
    assert (astronaut.policy, astronaut.status, astronaut.crop_size) == ("detect", "face", 48)
    assert 80 <= astronaut.bbox_w <= 120
    assert [(r.status, r.faces_in_image) for r in by_file["noise.png"]] == [("no_face", 0)]
    assert [(r.status, r.faces_in_image) for r in by_file["gradient.png"]] == [("no_face", 0)]
    for i in range(3):
        (row,) = by_file[f"Training_{i}.jpg"]
        assert (row.policy, row.status, row.faces_in_image, row.bbox_w) == (
            "whole_image",
            "face",
            1,
            48,
        )


def test_rerun_adds_nothing_and_new_parameters_add_a_version(
    spark: SparkSession, ingested: Settings
) -> None:
    run(DetectFaces, spark, ingested, "--source", "photos", "--source", "fer2013")
    before = spark.sql("SELECT count(*) n FROM femo.faces").first().n
    versions = spark.sql("DESCRIBE HISTORY femo.faces").count()
    again = run(DetectFaces, spark, ingested, "--source", "photos", "--source", "fer2013")
    assert again.endswith(": images 0")
    assert spark.sql("SELECT count(*) n FROM femo.faces").first().n == before
    assert spark.sql("DESCRIBE HISTORY femo.faces").count() == versions

    newer = run(
        DetectFaces,
        spark,
        ingested,
        "--source",
        "photos",
        overrides=("faces.min_neighbors=3", "faces.crop_size=64"),
    )
    assert newer.split(":")[1].strip().startswith("images 3")
    detectors = spark.sql("SELECT DISTINCT detector_version FROM femo.faces").count()
    assert detectors == 2
    current = spark.sql(
        "SELECT source, detector_version, crop_size FROM femo.faces_current "
        "WHERE status = 'face' GROUP BY ALL ORDER BY source"
    ).collect()
    assert [(r.source, r.crop_size) for r in current] == [("fer2013", 48), ("photos", 64)]
    assert newer.split(":")[0] == f"detector {current[1].detector_version}"


def test_detection_rate_insight(spark: SparkSession, ingested: Settings) -> None:
    rows = spark.sql(
        (Path(__file__).parents[1] / "sql" / "insights" / "face_detection_rate.sql").read_text()
    ).collect()
    rates = {
        (r.source, r.emotion): (r.images, r.detection_rate)
        for r in rows
        if r.source in ("photos", "fer2013")
    }
    assert rates == {
        ("fer2013", "angry"): (3, 1.0),
        ("photos", "happy"): (1, 1.0),
        ("photos", "sad"): (2, 0.0),
    }


def test_an_image_under_two_sources_shows_each_copy_its_own_policy(
    spark: SparkSession, ingested: Settings, tmp_path: Path
) -> None:
    """FER-2013's crops copied into a source of the default policy (detect): each copy shows
    its own source's detection only, and per-source figures equal a direct count."""
    fer = spark.sql(
        "SELECT path, content FROM femo.images WHERE source = 'fer2013' ORDER BY path"
    ).collect()
    for source in ("fer2013", "copies"):
        folder = tmp_path / source / "angry"
        folder.mkdir(parents=True)
        for row in fer:
            (folder / row.path.rsplit("/", 1)[-1]).write_bytes(row.content)
    db = "femo_two_sources"
    with own_database(spark, ingested, db) as own:
        for source in ("fer2013", "copies"):
            run(IngestImages, spark, own, "--source", source, "--path", str(tmp_path / source))
        run(DetectFaces, spark, own, "--source", "copies", "--source", "fer2013")
        policies = dict(spark.sql(f"SELECT source_id, face_policy FROM {db}.sources").collect())
        assert {s: policies[s] for s in ("copies", "fer2013")} == {
            "copies": "detect",
            "fer2013": "whole_image",
        }
        shown = spark.sql(
            "SELECT source, policy, count(DISTINCT image_id) AS images, count(*) AS rows "
            f"FROM {db}.faces_current GROUP BY ALL"
        ).collect()
        assert {(r.source, r.policy) for r in shown} == {
            ("copies", "detect"),
            ("fer2013", "whole_image"),
        }
        direct = spark.sql(
            f"SELECT i.source, count(*) AS rows FROM {db}.images AS i JOIN {db}.faces AS f "
            "ON f.image_id = i.image_id AND f.policy = CASE WHEN i.source = 'fer2013' "
            "THEN 'whole_image' ELSE 'detect' END GROUP BY i.source"
        ).collect()
        assert {r.source: r.rows for r in shown} == {r.source: r.rows for r in direct}
        assert all(r.images == len(fer) for r in shown)
