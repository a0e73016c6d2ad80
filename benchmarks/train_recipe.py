"""Recipe study: how far a zoo network gets on a built training set in a wall-clock budget, on
one process, fed by femo.ml.feeding (Petastorm over the set's Delta files into tf.data).

Not the training job (jobs/train.py, Horovod and MLflow, comes next): this measures what a
recipe reaches on this machine, so the job's defaults are chosen from figures, not guesses.
Prints one line per epoch and, at the end, test accuracy, macro-F1, per-class recall and the
flip-averaged (test-time augmentation) accuracy as JSON.

    FEMO_HOME=~/.femo PYTHONPATH=. .venv/bin/python benchmarks/train_recipe.py --model compact \\
        --bfloat16 --minutes 45
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from femo.ml.feeding import (
    evaluation_stream,
    make_reader,
    split_files,
    steps_per_epoch,
    training_stream,
)
from femo.ml.zoo import build_model
from femo.platform.settings import CONF_ENV, load_settings


def newest_set(database: Path) -> dict[str, Any]:
    """The newest row of ``training_sets`` (read with delta-rs)."""
    from deltalake import DeltaTable

    rows = DeltaTable(str(database / "training_sets")).to_pyarrow_table().to_pylist()
    if not rows:
        raise SystemExit(f"no training set under {database}: run jobs/build_training_set.py")
    return max(rows, key=lambda r: r["created_at"])


def in_memory(files: Any, classes: list[int], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Every row of a split, decoded, as arrays (validation and test are small)."""
    with make_reader(files, epochs=1, shuffle=False) as reader:
        batches = list(evaluation_stream(reader, classes, image_size=size, batch_size=512))
    return np.concatenate([b[0].numpy() for b in batches]), np.concatenate(
        [b[1].numpy() for b in batches]
    )


def macro_f1(truth: np.ndarray, guess: np.ndarray, classes: int) -> tuple[float, list[float]]:
    """Macro-F1 and per-class recall."""
    f1s, recalls = [], []
    for c in range(classes):
        tp = float(np.sum((guess == c) & (truth == c)))
        precision = tp / max(1.0, float(np.sum(guess == c)))
        recall = tp / max(1.0, float(np.sum(truth == c)))
        recalls.append(recall)
        f1s.append(0.0 if tp == 0 else 2 * precision * recall / (precision + recall))
    return float(np.mean(f1s)), recalls


def main() -> None:
    # the femo home, database and feeding (training.*) from the settings, as a job reads them
    settings = load_settings(os.environ.get(CONF_ENV), environ=os.environ)
    feed = settings.training
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="compact")
    parser.add_argument("--epochs", type=int, default=200, help="at most this many")
    parser.add_argument("--minutes", type=float, default=45, help="wall-clock budget")
    parser.add_argument("--batch", type=int, default=feed.batch_size)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--bfloat16", action="store_true", help="Keras mixed_bfloat16 policy")
    parser.add_argument("--class-weights", action="store_true", help="weight the loss by class")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import tensorflow as tf

    tf.keras.utils.set_random_seed(args.seed)
    if args.bfloat16:
        tf.keras.mixed_precision.set_global_policy("mixed_bfloat16")
    database = Path(settings.warehouse_dir) / f"{settings.catalog.database}.db"
    chosen = newest_set(database)
    set_id, classes = chosen["set_id"], list(chosen["classes"])
    examples = str(database / "training_examples")
    train = split_files(examples, set_id, "train")
    size = feed.image_size
    val_x, val_y = in_memory(split_files(examples, set_id, "val"), classes, size)
    test_x, test_y = in_memory(split_files(examples, set_id, "test"), classes, size)
    print(f"set {set_id}: {train.rows} train, {len(val_y)} val, {len(test_y)} test", flush=True)

    model = build_model(args.model, (size, size, 1), len(classes))
    model.compile(
        optimizer=tf.keras.optimizers.Adam(args.lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    started = time.monotonic()
    budget_s = args.minutes * 60

    class Budget(tf.keras.callbacks.Callback):  # type: ignore[misc]
        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            elapsed = time.monotonic() - started
            if elapsed * (epoch + 2) / (epoch + 1) > budget_s:
                self.model.stop_training = True  # another epoch would overrun the budget

    with make_reader(train, epochs=None, seed=args.seed) as reader:
        stream = training_stream(
            reader,
            classes,
            image_size=size,
            batch_size=args.batch,
            augment=feed.augment,
            shuffle_buffer=feed.shuffle_buffer,
        )
        if not args.class_weights:
            stream = stream.map(lambda x, y, w: (x, y))
        history = model.fit(
            stream,
            steps_per_epoch=steps_per_epoch(train.rows, 1, args.batch),
            epochs=args.epochs,
            validation_data=(val_x, val_y),
            callbacks=[
                Budget(),
                tf.keras.callbacks.ReduceLROnPlateau("val_accuracy", factor=0.5, patience=4),
                tf.keras.callbacks.EarlyStopping(
                    "val_accuracy", patience=12, restore_best_weights=True
                ),
            ],
            verbose=2,
        )
    train_s = time.monotonic() - started
    probabilities = model.predict(test_x, batch_size=512, verbose=0)
    flipped = model.predict(test_x[:, :, ::-1, :], batch_size=512, verbose=0)
    guess = probabilities.argmax(axis=1)
    f1, recalls = macro_f1(test_y, guess, len(classes))
    result = {
        "set_id": set_id,
        "model": args.model,
        "params": model.count_params(),
        "bfloat16": args.bfloat16,
        "class_weights": args.class_weights,
        "epochs": len(history.history["loss"]),
        "train_minutes": round(train_s / 60, 1),
        "best_val_accuracy": round(max(history.history["val_accuracy"]), 4),
        "test_images": int(len(test_y)),
        "test_accuracy": round(float(np.mean(guess == test_y)), 4),
        "test_macro_f1": round(f1, 4),
        "test_recall_by_class": dict(
            zip(map(str, classes), [round(r, 3) for r in recalls], strict=True)
        ),
        "test_accuracy_flip_tta": round(
            float(np.mean((probabilities + flipped).argmax(axis=1) == test_y)), 4
        ),
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
