"""Scaling benchmark: epoch time of 2 Horovod ranks beside 1 (issue 16, 8b), and per zoo model.

Each configuration trains ``--epochs`` epochs of a training set through the job's own path
(femo.ml.launch.run_on_spark -> horovod.spark.run on a local Spark session -> train_fn), with
the same data and the same global batch: 1 rank x batch B, or 2 ranks x batch B/2, every rank
limited to one core (pinned to the core of its local rank, TensorFlow intra- and inter-op
threads 1, OMP 1; ``--no-pin`` leaves tf.data's threads free). The first epoch decodes
and caches the crops, so the figure is the mean of the later epochs. Prints one JSON line per
configuration and the speed-up.

    FEMO_HOME=<home with a set> PYTHONPATH=. .venv/bin/python benchmarks/train_scaling.py \\
        --training-set <set id> --model compact --epochs 3
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from dataclasses import replace
from pathlib import Path
from statistics import mean

from femo.ml.feeding import split_files
from femo.ml.launch import run_on_spark
from femo.ml.training import RunState, TrainSpec, run_key, train_fn
from femo.platform.session import build_session
from femo.platform.settings import CONF_ENV, load_settings

ROOT = Path(__file__).resolve().parents[1]


def one_core(spec: TrainSpec, key: str) -> dict[str, object]:
    """``train_fn`` pinned to the core of its local rank: TensorFlow's thread settings do not
    bound tf.data's own threads (augmentation, prefetch), so without this one rank uses more
    than one core and the comparison flatters it."""
    os.sched_setaffinity(0, {int(os.environ.get("HOROVOD_LOCAL_RANK", "0"))})
    return train_fn(spec, key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--training-set", required=True, dest="set_id")
    parser.add_argument("--model", action="append", default=[], help="repeatable; compact")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=128, help="global batch")
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--ranks", default="1,2", help="rank counts to compare")
    parser.add_argument(
        "--no-pin", dest="pin", action="store_false", help="do not pin each rank to one core"
    )
    args = parser.parse_args()

    os.environ["PYTHONPATH"] = str(ROOT)
    settings = load_settings(
        os.environ.get(CONF_ENV),
        ["spark.master=local[2]", "spark.show_progress=false", "spark.conf.spark.ui.enabled=false"],
        environ=os.environ,
    )
    spark = build_session(settings)
    database = Path(settings.warehouse_dir) / f"{settings.catalog.database}.db"
    examples = str(database / "training_examples")
    train = split_files(examples, args.set_id, "train")
    val = split_files(examples, args.set_id, "val", train.version)
    from deltalake import DeltaTable

    sets = DeltaTable(str(database / "training_sets")).to_pyarrow_table(
        filters=[("set_id", "=", args.set_id)]
    )
    classes = tuple(int(c) for c in sets.column("classes")[0].as_py())
    rank_counts = [int(r) for r in args.ranks.split(",")]
    for model in args.model or ["compact"]:
        seconds: dict[int, float] = {}
        for ranks in rank_counts:
            with tempfile.TemporaryDirectory() as folder:
                spec = TrainSpec(
                    model=model,
                    classes=classes,
                    train=train,
                    val=val,
                    folder=folder,
                    batch_size=args.batch // ranks,
                    epochs=args.epochs,
                    patience=args.epochs + 1,
                    precision=args.precision,
                    threads=1,
                )
                results = run_on_spark(
                    spark,
                    one_core if args.pin else train_fn,
                    (spec, run_key(replace(spec, folder=""), ranks)),
                    num_proc=ranks,
                    timeout_s=3600,
                    start_timeout_s=120,
                    stall_seconds=300,
                    threads=1,
                )
            state = RunState(**next(r for r in results if r["rank"] == 0)["state"])
            later = [h["epoch_seconds"] for h in state.history[1:]] or [
                state.history[0]["epoch_seconds"]
            ]
            seconds[ranks] = mean(later)
            print(
                json.dumps(
                    {
                        "model": model,
                        "ranks": ranks,
                        "batch_per_rank": spec.batch_size,
                        "train_rows": train.rows,
                        "first_epoch_s": round(state.history[0]["epoch_seconds"], 1),
                        "later_epoch_s": round(seconds[ranks], 1),
                        "val_accuracy": round(state.history[-1]["val_accuracy"], 4),
                    }
                ),
                flush=True,
            )
        if 1 in seconds and len(seconds) > 1:
            for ranks, value in seconds.items():
                if ranks != 1:
                    print(f"{model}: {ranks} ranks {seconds[1] / value:.2f}x the speed of 1")
    spark.stop()


if __name__ == "__main__":
    main()
