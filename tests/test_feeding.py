"""femo.ml.feeding: one Delta snapshot's files through Petastorm into tf.data, without Spark.

The table is written with delta-rs in the layout of ``training_examples`` (partitions
``set_id``/``split``); every crop is distinct noise and carries its row number in its first
pixel, so which rows a reader gave back is known exactly.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pytest
from deltalake import write_deltalake

from femo.ml.feeding import (
    check_shards,
    evaluation_stream,
    label_table,
    make_reader,
    random_erasing,
    split_files,
    steps_per_epoch,
    training_stream,
)
from femo.ml.selection import TrainingSetError
from femo.platform.settings import AugmentSettings

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")

CLASSES = [0, 3, 4]  # emotion ids -> class indices 0, 1, 2
NO_AUGMENT = AugmentSettings(flip=False, shift=0, rotation=0, zoom=0)


def examples(set_id: str, split: str, first: int, count: int) -> pa.Table:
    rng = np.random.default_rng(first)
    crops = []
    for number in range(first, first + count):
        pixels = rng.integers(0, 256, (48, 48), dtype=np.uint8)
        pixels[0, 0] = number
        crops.append(cv2.imencode(".png", pixels)[1].tobytes())
    return pa.table(
        {
            "set_id": [set_id] * count,
            "split": [split] * count,
            "label_id": pa.array([CLASSES[n % 3] for n in range(first, first + count)], pa.int32()),
            "weight": [1.0 + (n % 3) for n in range(first, first + count)],
            "crop": pa.array(crops, pa.binary()),
        }
    )


def write(path: Path, table: pa.Table, **options: object) -> None:
    write_deltalake(
        str(path),
        table,
        partition_by=["set_id", "split"],
        mode="append",
        max_rows_per_file=10,
        max_rows_per_group=10,
        min_rows_per_group=1,
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Version 0: set a, 40 train rows (4 files) and 13 test rows. Version 1: set b. Version 2:
    set a's train replaced by rows 100-139: its old files stay in the folder, superseded."""
    path = tmp_path_factory.mktemp("feeding") / "training_examples"
    write(path, pa.concat_tables([examples("a", "train", 0, 40), examples("a", "test", 50, 13)]))
    write(path, examples("b", "train", 200, 30))
    write_deltalake(
        str(path),
        examples("a", "train", 100, 40),
        partition_by=["set_id", "split"],
        mode="overwrite",
        partition_filters=[("set_id", "=", "a"), ("split", "=", "train")],
        max_rows_per_file=10,
        max_rows_per_group=10,
        min_rows_per_group=1,
    )
    return path


def numbers_read(files: object, **options: object) -> list[int]:
    with make_reader(files, shuffle=False, **options) as reader:  # type: ignore[arg-type]
        return sorted(
            int(cv2.imdecode(np.frombuffer(crop, np.uint8), cv2.IMREAD_GRAYSCALE)[0, 0])
            for batch in reader
            for crop in batch.crop
        )


def test_the_files_of_one_snapshot_and_never_the_superseded_ones(table: Path) -> None:
    latest = split_files(str(table), "a", "train")
    assert (latest.version, latest.rows, latest.row_groups, len(latest.urls)) == (2, 40, 4, 4)
    assert numbers_read(latest) == list(range(100, 140))
    parquet_in_folder = list((table / "set_id=a" / "split=train").glob("*.parquet"))
    assert len(parquet_in_folder) == 8  # what reading the folder would have mixed in
    pinned = split_files(str(table), "a", "train", version=1)
    assert numbers_read(pinned) == list(range(40))
    assert numbers_read(split_files(str(table), "a", "test")) == list(range(50, 63))


def test_a_split_without_rows_is_named(table: Path) -> None:
    with pytest.raises(TrainingSetError, match="training set b has no test rows"):
        split_files(str(table), "b", "test")


def test_shards_are_disjoint_and_cover_the_split(table: Path) -> None:
    files = split_files(str(table), "a", "train")
    shards = [numbers_read(files, rank=rank, ranks=2, epochs=1) for rank in (0, 1)]
    assert shards[0] and shards[1]
    assert not set(shards[0]) & set(shards[1])
    assert sorted(shards[0] + shards[1]) == list(range(100, 140))


def test_too_few_row_groups_for_the_ranks(table: Path) -> None:
    files = split_files(str(table), "a", "train")
    check_shards(files, 4)
    with pytest.raises(TrainingSetError, match="4 Parquet row group.*for 5 ranks"):
        check_shards(files, 5)
    with pytest.raises(TrainingSetError, match="for 5 ranks"):
        make_reader(files, rank=0, ranks=5)


def test_equal_steps_on_every_rank() -> None:
    assert steps_per_epoch(28_709, 2, 128) == 112
    assert steps_per_epoch(28_709, 1, 128) == 224
    assert steps_per_epoch(10, 4, 128) == 1
    with pytest.raises(TrainingSetError):
        steps_per_epoch(0, 2, 128)


def test_labels_map_to_class_positions() -> None:
    assert label_table(CLASSES) == [0, -1, -1, 1, 2]


def test_training_stream_is_endless_batched_and_weighted(table: Path) -> None:
    files = split_files(str(table), "a", "train")
    with make_reader(files, epochs=1, rank=1, ranks=2, seed=3) as reader:
        stream = training_stream(
            reader, CLASSES, image_size=48, batch_size=8, augment=NO_AUGMENT, seed=3
        )
        batches = list(stream.take(3 * steps_per_epoch(files.rows, 2, 8)))  # three epochs
    assert len(batches) == 6  # 48 examples from a shard of 20 read once: it repeats from memory
    for pixels, labels, weights in batches:
        assert pixels.shape == (8, 48, 48, 1) and pixels.dtype.name == "float32"
        numbers = pixels.numpy()[:, 0, 0, 0].astype(int)
        assert labels.numpy().tolist() == [n % 3 for n in numbers]  # class index, not emotion id
        assert weights.numpy().tolist() == [1.0 + n % 3 for n in numbers]
    seen = {int(n) for pixels, _, _ in batches for n in pixels.numpy()[:, 0, 0, 0]}
    assert seen <= set(range(100, 140)) and len(seen) <= 20  # one shard of two


def first_batch(files: object, augment: AugmentSettings) -> tuple[np.ndarray, list[int]]:
    """One batch of the whole split (its 40 rows: the first pass, unshuffled)."""
    with make_reader(files, epochs=1, seed=1) as reader:  # type: ignore[arg-type]
        stream = training_stream(
            reader, CLASSES, image_size=48, batch_size=40, augment=augment, shuffle_buffer=1
        )
        pixels, labels, _ = next(iter(stream))
    return pixels.numpy(), sorted(labels.numpy().tolist())


def test_an_endless_reader_is_not_cached_nor_decoded_twice(table: Path) -> None:
    files = split_files(str(table), "a", "train")
    with make_reader(files, epochs=None) as reader:
        with pytest.raises(ValueError, match="needs a reader of one epoch"):
            training_stream(reader, CLASSES, image_size=48, batch_size=8, augment=NO_AUGMENT)
        stream = training_stream(
            reader, CLASSES, image_size=48, batch_size=8, augment=NO_AUGMENT, cache=False
        )
        batches = list(stream.take(12))  # 96 examples of 40: read again each time
    assert len(batches) == 12


def test_augmentation_changes_pixels_not_shapes_or_labels(table: Path) -> None:
    files = split_files(str(table), "a", "train")
    plain, plain_labels = first_batch(files, NO_AUGMENT)
    moved, moved_labels = first_batch(files, AugmentSettings())
    assert moved.shape == plain.shape == (40, 48, 48, 1)
    assert moved_labels == plain_labels
    originals = {image.tobytes() for image in plain}
    assert sum(image.tobytes() in originals for image in moved) < 30  # most of them moved


def test_random_erasing_covers_one_rectangle_of_noise_in_chosen_images() -> None:
    import tensorflow as tf

    tf.random.set_seed(3)
    images = np.full((200, 48, 48, 1), 128.0, dtype=np.float32)  # noise is never exactly 128
    erased = random_erasing(tf.constant(images), 0.5, seed=7).numpy()
    changed = erased != 128.0
    touched = changed.reshape(200, -1).any(axis=1)
    assert 60 < touched.sum() < 140  # about half
    for image in changed[touched, :, :, 0]:
        rows, cols = np.nonzero(image.any(axis=1))[0], np.nonzero(image.any(axis=0))[0]
        box = image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        assert box.all() and box.size == image.sum()  # one solid rectangle
        assert 0.01 <= box.size / image.size <= 0.27  # of 2-25 % of the picture
    assert (erased[~touched] == 128.0).all()
    assert (random_erasing(tf.constant(images), 0.0, seed=7).numpy() == 128.0).all()


def test_evaluation_reads_every_row_once(table: Path) -> None:
    files = split_files(str(table), "a", "test")
    with make_reader(files, epochs=1, shuffle=False) as reader:
        batches = list(evaluation_stream(reader, CLASSES, image_size=48, batch_size=5))
    assert [int(b[0].shape[0]) for b in batches] == [5, 5, 3]
    numbers = sorted(int(n) for b in batches for n in b[0].numpy()[:, 0, 0, 0])
    assert numbers == list(range(50, 63))
