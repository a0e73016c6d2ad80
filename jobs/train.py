"""Train a zoo network on a training set with Horovod, track it in MLflow, register it.

The ranks run as Spark tasks (horovod.spark.run, Gloo; NCCL between GPUs where Horovod has it),
each reading its shard of the set through Petastorm; rank 0 checkpoints. The driver evaluates
the final model on the set's test split, logs the run to MLflow, registers a model version,
writes femo.training_runs and femo.run_metrics, and only then gives the version the alias
'challenger'. The same command again resumes an interrupted run from its last checkpoint, and
does nothing once the run is recorded.
"""

from __future__ import annotations

import argparse

from femo.ml.launch import horovod_world
from femo.ml.runs import LAUNCHERS, TrainRequest, follow, train
from femo.ml.zoo import ZOO
from femo.platform.catalog import ensure_catalog
from femo.platform.job import Job


class Train(Job):
    """``./spark-submit.sh jobs/train.py [--model NAME] [--training-set ID] ...``"""

    description = __doc__

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--model", default=None, help=f"zoo network: {', '.join(ZOO)} (training.model)"
        )
        parser.add_argument(
            "--training-set",
            default=None,
            metavar="ID",
            dest="set_id",
            help="set id from femo.training_sets (default: the newest set)",
        )
        parser.add_argument(
            "--epochs", type=int, default=None, metavar="N", help="most epochs (training.epochs)"
        )
        parser.add_argument(
            "--minutes",
            type=float,
            default=None,
            metavar="M",
            help="wall-clock budget of the epochs (training.minutes)",
        )
        parser.add_argument(
            "--num-proc",
            type=int,
            default=None,
            metavar="N",
            help="Horovod ranks, one Spark task each (training.num_proc)",
        )
        parser.add_argument(
            "--launcher",
            choices=LAUNCHERS,
            default="spark",
            help="spark: ranks as Spark tasks (horovod.spark.run); here: this process is the "
            "rank, or each process is one under horovodrun",
        )
        parser.add_argument(
            "--fresh",
            action="store_true",
            help="discard the checkpoints of an earlier run of the same settings",
        )

    def run(self, args: argparse.Namespace) -> int:
        request = TrainRequest(
            model=args.model,
            set_id=args.set_id,
            epochs=args.epochs,
            minutes=args.minutes,
            num_proc=args.num_proc,
            launcher=args.launcher,
            fresh=args.fresh,
        )
        if request.launcher == "here" and horovod_world()[0] != 0:
            follow(self.settings)  # a rank of horovodrun's other than 0: no Spark, no MLflow
            return 0
        ensure_catalog(self.spark, self.settings)
        summary = train(self.spark, self.settings, request)
        self.say(summary.line())
        return self.finished(args, idle=summary.status == "recorded")


if __name__ == "__main__":
    raise SystemExit(Train.main(prog="jobs/train.py"))
