"""jobs/build_training_set.py over ingested and detected faces, in process on a database of its
own: leaks out of train, duplicates, conflicts, splits, samples, ids, time travel, reruns.

The collection is FER-like (source ``fer_sets``, policy ``whole_image``: each image is its own
face) and every picture is distinct noise unless a case makes it a copy, so every count below is
known in advance. Every build reads this source only (``--source``).
"""

from __future__ import annotations

import argparse
import io
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import SparkSession

import femo.ml.training_set
from femo.ingest.sample import encode
from femo.ml.selection import TrainingSetError
from femo.platform.settings import Settings
from jobs.build_training_set import BuildTrainingSet
from jobs.detect_faces import DetectFaces
from jobs.ingest_images import IngestImages

from .conftest import make_settings, own_database, run_job

DATABASE = "femo_training_sets"
SOURCE = "fer_sets"
#: Distinct train pictures per emotion (angry 0, happy 3, sad 4) and test pictures of each.
TRAIN = {"angry": 4, "happy": 12, "sad": 8}
TEST_PER_EMOTION = 2


def noise(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(10, 240, (48, 48), dtype=np.uint8)


def write_collection(root: Path) -> None:
    """Distinct pictures plus one copy of each kind the set must leave out of train."""
    rng = np.random.default_rng(21)
    for emotion, count in TRAIN.items():
        for i in range(count):
            path = root / "train" / emotion / f"{emotion}_{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(encode(noise(rng), ".png"))
        for i in range(TEST_PER_EMOTION):
            path = root / "test" / emotion / f"test_{emotion}_{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(encode(noise(rng), ".png"))
    # the bytes of a test picture under train: in_test
    shutil.copy(root / "test/happy/test_happy_0.png", root / "train/happy/leak.png")
    # a test picture made a little brighter: other bytes, same perceptual hash
    brighter = noise(np.random.default_rng(0)) // 2 + 100
    (root / "test/sad/test_sad_bright.png").write_bytes(encode(brighter, ".png"))
    (root / "train/sad/similar.png").write_bytes(encode(brighter + 2, ".png"))
    # one picture under two labels: label_conflict, both copies
    twin = encode(noise(rng), ".png")
    (root / "train/angry/conflict.png").write_bytes(twin)
    (root / "train/sad/conflict_twin.png").write_bytes(twin)
    # a second copy of a train picture: duplicate
    shutil.copy(root / "train/happy/happy_0.png", root / "train/happy/happy_0_copy.png")


def build(spark: SparkSession, settings: Settings, *argv: str) -> str:
    return run_job(BuildTrainingSet, spark, settings, "--source", SOURCE, *argv)


def ingest(spark: SparkSession, settings: Settings, path: Path) -> None:
    run_job(IngestImages, spark, settings, "--source", SOURCE, "--path", str(path))
    run_job(DetectFaces, spark, settings, "--source", SOURCE)


def set_id_of(line: str) -> str:
    return line.split()[2]


def rows_of(spark: SparkSession, set_id: str) -> list[tuple[str, str, int, float]]:
    return sorted(
        (r.path.rsplit("/", 2)[-2] + "/" + r.path.rsplit("/", 1)[-1], r.split, r.label_id, r.weight)
        for r in spark.table(f"{DATABASE}.training_examples")
        .where(f"set_id = '{set_id}'")
        .collect()
    )


def history(spark: SparkSession, table: str) -> int:
    return spark.sql(f"DESCRIBE HISTORY {DATABASE}.{table}").count()


@dataclass
class Built:
    settings: Settings
    root: Path
    first: str  # --val-fraction 0
    first_rows: list[tuple[str, str, int, float]]


@pytest.fixture(scope="module")
def built(
    spark: SparkSession, catalog: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Built]:
    root = tmp_path_factory.mktemp("training-set")
    write_collection(root / "fer")
    with own_database(spark, catalog, DATABASE):
        settings = make_settings(
            Path(catalog.home),
            f"catalog.database={DATABASE}",
            f"faces.policies.{SOURCE}=whole_image",
        )
        ingest(spark, settings, root / "fer")
        first = build(spark, settings, "--val-fraction", "0")
        yield Built(settings, root, first, rows_of(spark, set_id_of(first)))


def test_leaks_conflicts_and_copies_leave_train(built: Built) -> None:
    assert built.first.startswith("training set ")
    assert ": 24 train, 0 val, 7 test rows of 3 emotions; left out: duplicate 1, in_test 1, " in (
        built.first
    )
    assert "label_conflict 2, similar_to_test 1; class weights 0.67-2.00; read " in built.first
    files = {name for name, split, _, _ in built.first_rows if split == "train"}
    assert not files & {"happy/leak.png", "sad/similar.png", "angry/conflict.png"}
    assert not files & {"sad/conflict_twin.png"}
    assert len({"happy/happy_0.png", "happy/happy_0_copy.png"} & files) == 1
    test = sorted(name for name, split, _, _ in built.first_rows if split == "test")
    assert test == sorted(
        [f"{e}/test_{e}_{i}.png" for e in TRAIN for i in range(TEST_PER_EMOTION)]
        + ["sad/test_sad_bright.png"]
    )


def test_class_weights_come_from_train(spark: SparkSession, built: Built) -> None:
    weights = {label: weight for _, split, label, weight in built.first_rows if split == "train"}
    assert weights == pytest.approx({0: 2.0, 3: 2 / 3, 4: 1.0})  # 4, 12 and 8 of 24
    record = (
        spark.table(f"{DATABASE}.training_sets")
        .where(f"set_id = '{set_id_of(built.first)}'")
        .first()
    )
    assert record.classes == [0, 3, 4]
    assert record.split_counts == {"train": 24, "test": 7}
    assert record.rows == 31
    assert set(record.table_versions) == {"emotions", "faces", "images"}


def test_same_tables_and_options_build_nothing(spark: SparkSession, built: Built) -> None:
    before = (history(spark, "training_sets"), history(spark, "training_examples"))
    again = build(spark, built.settings, "--val-fraction", "0")
    assert again.startswith(f"training set {set_id_of(built.first)} is already built from ")
    assert again.endswith(": nothing to do")
    assert (history(spark, "training_sets"), history(spark, "training_examples")) == before


def test_validation_is_carved_by_image_and_not_by_seed(spark: SparkSession, built: Built) -> None:
    rows = {}
    for seed in ("1", "2"):
        line = build(spark, built.settings, "--val-fraction", "0.25", "--seed", seed)
        rows[seed] = rows_of(spark, set_id_of(line))
    assert rows["1"] == rows["2"]  # no sample: the seed changes nothing but the id
    val = {name for name, split, _, _ in rows["1"] if split == "val"}
    train = {name for name, split, _, _ in rows["1"] if split == "train"}
    assert 2 <= len(val) <= 12 and len(val) + len(train) == 24
    assert train | val == {name for name, split, _, _ in built.first_rows if split == "train"}


def test_per_emotion_sample(spark: SparkSession, built: Built) -> None:
    line = build(spark, built.settings, "--val-fraction", "0", "--per-emotion", "1")
    assert ": 3 train, 0 val, 3 test rows of 3 emotions; " in line
    assert "not_sampled 25" in line  # 21 of train, 4 of test
    rows = rows_of(spark, set_id_of(line))
    assert sorted((split, label) for _, split, label, _ in rows) == sorted(
        [("train", 0), ("train", 3), ("train", 4), ("test", 0), ("test", 3), ("test", 4)]
    )
    assert {weight for _, _, _, weight in rows} == {1.0}


def test_rebuild_from_the_recorded_versions(spark: SparkSession, built: Built) -> None:
    extra = built.root / "more" / "train" / "angry"
    extra.mkdir(parents=True)
    (extra / "new.png").write_bytes(encode(noise(np.random.default_rng(99)), ".png"))
    ingest(spark, built.settings, extra.parents[1])
    newer = build(spark, built.settings, "--val-fraction", "0")
    assert set_id_of(newer) != set_id_of(built.first)
    assert ": 25 train, 0 val, 7 test rows" in newer
    spark.sql(f"DELETE FROM {DATABASE}.training_examples WHERE set_id = '{set_id_of(built.first)}'")
    rebuilt = build(spark, built.settings, "--rebuild", set_id_of(built.first))
    assert rebuilt.startswith(
        f"training set {set_id_of(built.first)} rebuilt: 24 train, 0 val, 7 test"
    )
    assert rows_of(spark, set_id_of(built.first)) == built.first_rows


def test_a_run_killed_before_its_record_is_replaced_not_doubled(
    spark: SparkSession, built: Built, monkeypatch: pytest.MonkeyPatch
) -> None:
    def killed(*_: object, **__: object) -> None:
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(femo.ml.training_set, "record_set", killed)
    with pytest.raises(KeyboardInterrupt):
        build(spark, built.settings, "--val-fraction", "0", "--fraction", "1")
    monkeypatch.undo()
    line = build(spark, built.settings, "--val-fraction", "0", "--fraction", "1")
    found = re.search(r" built: (\d+) train, 0 val, (\d+) test rows", line)
    assert found, line
    assert len(rows_of(spark, set_id_of(line))) == int(found[1]) + int(found[2]) >= 31


def fails(spark: SparkSession, settings: Settings, *argv: str) -> str:
    parser = argparse.ArgumentParser()
    BuildTrainingSet.add_arguments(parser)
    job = BuildTrainingSet(settings, spark, out=io.StringIO())
    with pytest.raises(TrainingSetError) as failure:
        job.run(parser.parse_args(list(argv)))
    return str(failure.value)


def test_bad_requests_are_one_line_errors(spark: SparkSession, built: Built) -> None:
    assert "no rows" in fails(spark, built.settings, "--source", "no_such_source")
    assert "no training set 0123" in fails(spark, built.settings, "--rebuild", "0123" + "0" * 28)
    assert "is not a training set id" in fails(spark, built.settings, "--rebuild", "x' OR 1=1")
    assert "--per-emotion must be at least 1" in fails(spark, built.settings, "--per-emotion", "0")


def test_face_rows_without_a_readable_crop_are_counted_out(
    spark: SparkSession, built: Built
) -> None:
    ids = spark.sql(
        f"SELECT DISTINCT image_id FROM {DATABASE}.images WHERE path LIKE '%/train/happy/happy_1%'"
    ).collect()
    assert len(ids) == 3
    listed = ", ".join(f"'{r.image_id}'" for r in ids)  # sha256 hex digests
    spark.sql(f"UPDATE {DATABASE}.faces SET crop = X'00FF' WHERE image_id IN ({listed})")
    line = build(spark, built.settings, "--val-fraction", "0", "--seed", "7")
    # happy_1, happy_10 and happy_11: their crops no longer decode
    assert "missing_crop 3" in line, line
    assert ": 22 train, 0 val, 7 test rows" in line  # 25 before
