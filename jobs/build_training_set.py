"""Choose a training set from femo.faces and record it, pinned to the Delta versions it read.

Labelled faces (the largest of each image copy, newest detection) keep their dataset's test
split; validation is carved from train by a hash of the image id; train and validation lose
pictures that also occur in test (same bytes or same perceptual hash), pictures under two
labels, and extra copies. Rows go to femo.training_examples, the set to femo.training_sets.
The same tables and options give the same set id: building it again does nothing.
"""

from __future__ import annotations

import argparse
import uuid

from femo.ml.selection import SelectionParams
from femo.ml.training_set import build_training_set
from femo.platform.catalog import ensure_catalog
from femo.platform.job import Job


class BuildTrainingSet(Job):
    """``./spark-submit.sh jobs/build_training_set.py [--per-emotion N] [--fraction F] ...``"""

    description = __doc__

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        defaults = SelectionParams()
        parser.add_argument(
            "--per-emotion",
            type=int,
            default=None,
            metavar="N",
            help="at most N faces per emotion in each split (the original project took 200)",
        )
        parser.add_argument(
            "--fraction",
            type=float,
            default=None,
            metavar="F",
            help="keep this share of each split, stratified by emotion (0 < F <= 1)",
        )
        parser.add_argument(
            "--seed", type=int, default=defaults.seed, help="seed of the sample (default 0)"
        )
        parser.add_argument(
            "--val-fraction",
            type=float,
            default=defaults.val_fraction,
            metavar="F",
            help=f"share of train held out for validation (default {defaults.val_fraction})",
        )
        parser.add_argument(
            "--test-fraction",
            type=float,
            default=defaults.test_fraction,
            metavar="F",
            help="share of images without a split of their own held out for test "
            f"(default {defaults.test_fraction})",
        )
        parser.add_argument(
            "--source",
            action="append",
            default=[],
            help="only faces of this source (repeatable; default: all)",
        )
        parser.add_argument(
            "--rebuild",
            default=None,
            metavar="SET_ID",
            help="build this recorded set's rows again, from the versions it read",
        )

    def run(self, args: argparse.Namespace) -> int:
        params = SelectionParams(
            per_emotion=args.per_emotion,
            fraction=args.fraction,
            seed=args.seed,
            val_fraction=args.val_fraction,
            test_fraction=args.test_fraction,
            sources=tuple(sorted(set(args.source))),
        )
        ensure_catalog(self.spark, self.settings)
        summary = build_training_set(
            self.spark,
            self.settings.catalog.database,
            params,
            self.settings.faces,
            run_id=uuid.uuid4().hex,
            rebuild=args.rebuild,
        )
        self.say(summary.line())
        return self.finished(args, idle=summary.status == "exists")


if __name__ == "__main__":
    raise SystemExit(BuildTrainingSet.main(prog="jobs/build_training_set.py"))
