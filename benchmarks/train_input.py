"""Input benchmark: can Petastorm feed training as fast as arrays in memory? (issue 16, 8a)

The train split of the newest training set of a femo home goes through the training stream
(femo.ml.feeding.training_stream: Petastorm over the set's Delta files, PNG decode, shuffle,
batch, augment) and, as the baseline, the same crops decoded beforehand into a numpy array
through the same shuffle, batch and augmentation in tf.data. Prints samples per second of each
and their ratio, for the first pass (Petastorm reads and decodes every crop) and for later
epochs (the decoded crops are cached, as in training), beside what the compact model consumes.

    FEMO_HOME=<home with a set> PYTHONPATH=. .venv/bin/python benchmarks/train_input.py
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from benchmarks._common import newest_training_set
from femo.ml.feeding import make_reader, split_files, training_stream
from femo.platform.settings import CONF_ENV, load_settings


def rate(stream: Any, batches: int, batch_size: int) -> float:
    """Samples per second over ``batches`` batches of ``stream``."""
    iterator = iter(stream)
    started = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - started)


def main() -> None:
    settings = load_settings(os.environ.get(CONF_ENV), environ=os.environ)
    feed = settings.training
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=feed.batch_size)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    database = Path(settings.warehouse_dir) / f"{settings.catalog.database}.db"
    chosen = newest_training_set(database)
    classes = list(chosen["classes"])
    files = split_files(str(database / "training_examples"), chosen["set_id"], "train")
    epoch = files.rows // args.batch

    # the baseline: every crop decoded up front, then the same shuffle/batch/augment
    from deltalake import DeltaTable

    from femo.ml.feeding import augmenter, label_table

    table = DeltaTable(str(database / "training_examples")).to_pyarrow_table(
        columns=["crop", "label_id"],
        filters=[("set_id", "=", chosen["set_id"]), ("split", "=", "train")],
    )
    import cv2

    pixels = np.stack(
        [
            cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
            for png in table.column("crop").to_pylist()
        ]
    ).astype(np.float32)[..., None]
    lookup = np.array(label_table(classes))
    labels = lookup[np.array(table.column("label_id").to_pylist())]
    weights = np.ones(len(labels), np.float32)
    model = augmenter(feed.augment, 0)
    arrays = (
        tf.data.Dataset.from_tensor_slices((pixels, labels, weights))
        .repeat()
        .shuffle(feed.shuffle_buffer)
        .batch(args.batch, drop_remainder=True)
        .map(lambda x, y, w: (model(x, training=True), y, w), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    numpy_rate = rate(arrays, epoch, args.batch)

    with make_reader(files, epochs=1) as reader:  # as training reads it: once, then cached
        stream = training_stream(
            reader,
            classes,
            image_size=feed.image_size,
            batch_size=args.batch,
            augment=feed.augment,
            shuffle_buffer=feed.shuffle_buffer,
        )
        first_rate = rate(stream, epoch, args.batch)  # reads and decodes, fills the cache
        cached_rate = rate(stream, epoch, args.batch)  # a later epoch
    result = {
        "set_id": chosen["set_id"],
        "train_rows": files.rows,
        "batch": args.batch,
        "threads": args.threads,
        "numpy_samples_per_s": round(numpy_rate),
        "petastorm_first_pass_samples_per_s": round(first_rate),
        "petastorm_cached_samples_per_s": round(cached_rate),
        "first_pass_ratio": round(first_rate / numpy_rate, 2),
        "cached_ratio": round(cached_rate / numpy_rate, 2),
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
