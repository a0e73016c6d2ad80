"""Training: the rate schedule and budget (pure), a rank's train_fn on a delta-rs table (one
process, no Spark: checkpoints, resume), and jobs/train.py in process on the shared session
with two Horovod ranks as Spark tasks, MLflow on SQLite under the test home, and the tables.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from deltalake import write_deltalake

from femo.ingest.sample import encode
from femo.ml.feeding import split_files
from femo.ml.tracking import CHALLENGER
from femo.ml.training import (
    RunFolder,
    RunState,
    TrainingError,
    TrainSpec,
    average_decay,
    budget_left,
    learning_rate,
    make_average,
    run_key,
    train_fn,
)
from femo.platform.errors import FemoError
from femo.platform.settings import AugmentSettings, Settings
from jobs.build_training_set import BuildTrainingSet
from jobs.detect_faces import DetectFaces
from jobs.ingest_images import IngestImages
from jobs.train import Train

from .conftest import make_settings, own_database, run_job

pytestmark = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning",
    "ignore::FutureWarning",
    # horovod.spark.run's own thread sees its Spark job cancelled when a rank fails
    "ignore::pytest.PytestUnhandledThreadExceptionWarning",
)

CLASSES = (0, 3, 4)


# -- the schedule -------------------------------------------------------------------------
def test_the_rate_warms_up_to_ranks_times_base_then_decays_by_cosine() -> None:
    rates = [learning_rate(e, base=0.001, ranks=4, warmup_epochs=3, epochs=13) for e in range(13)]
    assert rates[:4] == pytest.approx([0.001, 0.002, 0.003, 0.004])
    assert rates[8] == pytest.approx(0.002)  # half way through the decay: half the peak
    assert all(a > b for a, b in itertools.pairwise(rates[3:]))
    assert rates[12] == pytest.approx(0.004 * 0.5 * (1 + math.cos(math.pi * 0.9)))


def test_the_budget_speeds_up_the_decay_and_stops_in_time() -> None:
    by_epochs = learning_rate(5, base=0.01, ranks=1, warmup_epochs=0, epochs=100)
    by_clock = learning_rate(
        5, base=0.01, ranks=1, warmup_epochs=0, epochs=100, elapsed_s=450, budget_s=600
    )
    assert by_clock == pytest.approx(0.01 * 0.5 * (1 + math.cos(math.pi * 0.75)))
    assert by_clock < by_epochs
    assert budget_left(480, 4, 600)  # 120 s an epoch: one more just fits
    assert not budget_left(481, 4, 600)
    assert budget_left(10_000, 3, None)


# -- one rank, no Spark -------------------------------------------------------------------
def examples(split: str, count: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    crops = [encode(rng.integers(0, 256, (48, 48), dtype=np.uint8), ".png") for _ in range(count)]
    return pa.table(
        {
            "set_id": ["s"] * count,
            "split": [split] * count,
            "label_id": pa.array([CLASSES[n % 3] for n in range(count)], pa.int32()),
            "weight": [1.0] * count,
            "crop": pa.array(crops, pa.binary()),
        }
    )


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> TrainSpec:
    path = tmp_path_factory.mktemp("train-fn") / "training_examples"
    write_deltalake(
        str(path),
        pa.concat_tables([examples("train", 48, 1), examples("val", 12, 2)]),
        partition_by=["set_id", "split"],
        max_rows_per_file=12,
        max_rows_per_group=12,
        min_rows_per_group=1,
    )
    return TrainSpec(
        model="dense",
        classes=CLASSES,
        train=split_files(str(path), "s", "train"),
        val=split_files(str(path), "s", "val"),
        folder=str(path.parent / "run"),
        batch_size=16,
        epochs=3,
        warmup_epochs=1,
        label_smoothing=0.1,
        augment=AugmentSettings(erase=0.5),
        threads=1,
    )


def test_a_rank_trains_checkpoints_and_a_rerun_resumes(spec: TrainSpec) -> None:
    key = run_key(spec, 1)
    first = train_fn(spec, key)
    folder = RunFolder(spec.folder)
    state = RunState(**first["state"])
    assert (first["rank"], first["ranks"], state.epochs_done, state.stopped_by) == (
        0,
        1,
        3,
        "epochs",
    )
    assert [h["epoch"] for h in state.history] == [1, 2, 3]
    assert state.history[0]["lr"] == pytest.approx(spec.learning_rate)
    assert json.loads(folder.state_path.read_text())["finished"] is True
    assert folder.model.read_bytes() == first["model_h5"]
    assert 1 <= state.best_epoch <= 3 and folder.best_weights.is_file()

    again = train_fn(spec, key)  # finished: nothing trained, the same model back
    assert again["model_h5"] == first["model_h5"]
    assert RunState(**again["state"]).history == state.history

    # as if killed after epoch 2: the next run trains epoch 3 only, from the checkpoint
    killed = replace(state, epochs_done=2, finished=False, stopped_by="", history=state.history[:2])
    folder.save(killed)
    folder.model.unlink()
    resumed = RunState(**train_fn(spec, key)["state"])
    assert resumed.epochs_done == 3 and resumed.history[:2] == state.history[:2]
    assert resumed.history[2]["lr"] == pytest.approx(state.history[2]["lr"])
    assert folder.model.is_file()


def test_a_folder_of_another_run_is_refused(spec: TrainSpec) -> None:
    other = replace(spec, seed=5)
    with pytest.raises(TrainingError, match="start with --fresh"):
        train_fn(other, run_key(other, 1))
    assert run_key(other, 1) != run_key(spec, 1) != run_key(spec, 2)
    assert run_key(replace(spec, threads=2), 1) == run_key(spec, 1)


def test_the_weight_average_folds_each_step_in_and_swaps_back() -> None:
    import tensorflow as tf

    assert [average_decay(0.999, n) for n in (0, 8)] == pytest.approx([0.1, 0.5])
    assert average_decay(0.9, 1000) == 0.9
    inputs = tf.keras.Input((2,))
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(1)(inputs))
    start = [w.copy() for w in model.get_weights()]
    average = make_average(model, 0.9)
    model.set_weights([w + 1.0 for w in start])
    average.update()  # decay 0.1: 0.1 x start + 0.9 x (start + 1)
    model.set_weights([w + 3.0 for w in start])
    average.update()  # decay 2/11
    first = [s + 0.9 for s in start]
    expected = [2 / 11 * f + 9 / 11 * (s + 3.0) for f, s in zip(first, start, strict=True)]
    with average.swapped():
        for got, want in zip(model.get_weights(), expected, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-6)
    for got, own in zip(model.get_weights(), start, strict=True):
        np.testing.assert_allclose(got, own + 3.0)  # the model's own weights are back
    assert int(average.updates.numpy()) == 2
    # a restored average goes on from its checkpointed count, not from the first update's decay
    resumed = make_average(model, 0.9)  # its shadows: the model's weights now, start + 3
    resumed.updates.assign(8)  # as a checkpoint restore leaves it, before the first update
    model.set_weights([w + 5.0 for w in start])
    resumed.update()  # decay 9/18: half the shadows, half the model's weights
    with resumed.swapped():
        for got, own in zip(model.get_weights(), start, strict=True):
            np.testing.assert_allclose(got, own + 4.0, rtol=1e-6)
    assert int(resumed.updates.numpy()) == 9


def test_a_rank_with_an_average_judges_and_keeps_the_average(
    spec: TrainSpec, tmp_path: Path
) -> None:
    import tensorflow as tf

    averaged = replace(spec, ema_decay=0.9, folder=str(tmp_path / "run"))
    result = train_fn(averaged, run_key(averaged, 1))
    state = RunState(**result["state"])
    assert run_key(averaged, 1) != run_key(spec, 1)
    assert "ema_decay" not in spec.key_fields()  # off: the keys of earlier runs still hold
    judged = {"val_accuracy", "val_accuracy_raw", "val_loss_raw"}
    assert all(judged <= set(h) for h in state.history)
    assert state.best_val_accuracy == max(h["val_accuracy"] for h in state.history)
    # the model shipped is the average of the best epoch, not the raw weights of any step
    folder = RunFolder(averaged.folder)
    best = tf.keras.models.load_model(folder.model, compile=False).get_weights()
    reader = tf.train.load_checkpoint(str(folder.checkpoints))
    names = [n for n, _ in tf.train.list_variables(str(folder.checkpoints))]
    shadows = [n for n in names if n.startswith("average/shadows/")]
    assert len(shadows) == len(best) and any(n.startswith("model/") for n in names)
    if state.best_epoch == state.epochs_done:  # the last checkpoint holds that average
        kernel = next(w for w in best if w.ndim == 2)
        stored = [reader.get_tensor(n) for n in shadows]
        assert any(s.shape == kernel.shape and np.allclose(s, kernel) for s in stored)


# -- jobs/train.py on the shared session --------------------------------------------------
DATABASE = "femo_training"
SOURCE = "fer_train"


def write_collection(root: Path) -> None:
    """12 train and 3 test pictures of each of three emotions, each distinct noise."""
    rng = np.random.default_rng(5)
    for emotion in ("angry", "happy", "sad"):
        for split, count in (("train", 12), ("test", 3)):
            folder = root / split / emotion
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                pixels = rng.integers(10, 240, (48, 48), dtype=np.uint8)
                (folder / f"{emotion}_{i}.png").write_bytes(encode(pixels, ".png"))


@dataclass
class Trained:
    settings: Settings
    line: str
    set_id: str


def train_job(spark: object, settings: Settings, *argv: str) -> str:
    return run_job(Train, spark, settings, *argv)


@pytest.fixture(scope="module")
def trained(
    spark: object, catalog: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Trained]:
    root = tmp_path_factory.mktemp("training")
    write_collection(root / "fer")
    with own_database(spark, catalog, DATABASE):
        settings = make_settings(
            Path(catalog.home),
            f"catalog.database={DATABASE}",
            f"faces.policies.{SOURCE}=whole_image",
            "training.batch_size=8",
            "training.warmup_epochs=0",
            f"mlflow.tracking_uri=sqlite:///{root / 'mlflow.db'}",
            f"mlflow.artifact_root={root / 'artifacts'}",
        )
        run_job(IngestImages, spark, settings, "--source", SOURCE, "--path", str(root / "fer"))
        run_job(DetectFaces, spark, settings, "--source", SOURCE)
        built = run_job(BuildTrainingSet, spark, settings, "--source", SOURCE)
        set_id = built.split()[2]
        line = train_job(spark, settings, "--model", "dense", "--epochs", "2", "--num-proc", "2")
        yield Trained(settings, line, set_id)


def client(settings: Settings) -> object:
    from mlflow.tracking import MlflowClient

    return MlflowClient(settings.mlflow.tracking_uri, registry_uri=settings.mlflow.tracking_uri)


@pytest.mark.ranks
def test_two_ranks_train_and_the_run_is_tracked_registered_and_tabled(
    spark: object, trained: Trained
) -> None:
    line = trained.line
    assert line.startswith(f"trained dense on set {trained.set_id} with 2 rank(s): 2 epochs in ")
    assert line.endswith("femo-emotion v1 = challenger")
    run_id = line.split("MLflow run ")[1].split(",")[0]

    mlflow = client(trained.settings)
    run = mlflow.get_run(run_id)  # type: ignore[attr-defined]
    assert run.info.status == "FINISHED"
    assert run.data.params["set_id"] == trained.set_id
    assert run.data.params["ranks"] == "2"
    assert {"loss", "val_accuracy", "lr", "test_accuracy", "test_macro_f1"} <= set(run.data.metrics)
    assert [m.step for m in mlflow.get_metric_history(run_id, "val_accuracy")] == [1, 2]  # type: ignore[attr-defined]
    artifacts = {a.path for a in mlflow.list_artifacts(run_id)}  # type: ignore[attr-defined]
    assert {"model", "evaluation.json", "confusion_test.png"} <= artifacts
    version = mlflow.get_model_version_by_alias("femo-emotion", CHALLENGER)  # type: ignore[attr-defined]
    assert (int(version.version), version.run_id) == (1, run_id)

    runs = spark.sql(  # type: ignore[attr-defined]
        f"SELECT * FROM {DATABASE}.training_runs WHERE run_id = '{run_id}'"
    ).collect()
    assert len(runs) == 1
    row = runs[0]
    assert (row.set_id, row.architecture, row.ranks, row.epochs, row.model_version) == (
        trained.set_id,
        "dense",
        2,
        2,
        1,
    )
    assert row.test_accuracy == pytest.approx(run.data.metrics["test_accuracy"])
    cells = spark.sql(  # type: ignore[attr-defined]
        f"SELECT label_id, sum(value) AS n FROM {DATABASE}.run_metrics WHERE run_id = '{run_id}' "
        "AND split = 'test' AND metric = 'confusion' GROUP BY label_id ORDER BY label_id"
    ).collect()
    assert [(c.label_id, c.n) for c in cells] == [(0, 3.0), (3, 3.0), (4, 3.0)]


@pytest.mark.ranks
def test_the_model_predicts_from_its_own_pixels(trained: Trained) -> None:
    import mlflow

    mlflow.set_tracking_uri(trained.settings.mlflow.tracking_uri)
    model = mlflow.tensorflow.load_model("models:/femo-emotion@challenger")
    probabilities = model.predict(np.full((2, 48, 48, 1), 128.0, np.float32), verbose=0)
    assert probabilities.shape == (2, 3)
    assert probabilities.sum(axis=1) == pytest.approx([1.0, 1.0], abs=1e-4)


@pytest.mark.ranks
def test_the_same_command_again_has_nothing_to_do(spark: object, trained: Trained) -> None:
    again = train_job(
        spark, trained.settings, "--model", "dense", "--epochs", "2", "--num-proc", "2"
    )
    assert again.endswith("nothing to do (--fresh trains again)"), again
    versions = client(trained.settings).search_model_versions("name = 'femo-emotion'")  # type: ignore[attr-defined]
    assert len(versions) == 1


def fails(spark: object, settings: Settings, *argv: str) -> str:
    parser = argparse.ArgumentParser()
    Train.add_arguments(parser)
    with pytest.raises(FemoError) as failure:
        Train(settings, spark, out=io.StringIO()).run(parser.parse_args(list(argv)))  # type: ignore[arg-type]
    assert "\n" not in str(failure.value)
    return str(failure.value)


@pytest.mark.ranks
def test_bad_requests_are_one_line_errors_and_register_nothing(
    spark: object, trained: Trained, tmp_path: Path
) -> None:
    settings = trained.settings
    assert "unknown model 'resnet999'; the zoo holds: dense," in fails(
        spark, settings, "--model", "resnet999"
    )
    assert "no training set " + "0" * 32 in fails(spark, settings, "--training-set", "0" * 32)
    assert "is not a training set id" in fails(spark, settings, "--training-set", "x' OR 1=1")
    assert "epochs must be at least 1" in fails(spark, settings, "--epochs", "0")
    assert "3 Horovod ranks need 3 task slots" in fails(spark, settings, "--num-proc", "3")
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    store = settings.mlflow.model_copy(update={"tracking_uri": f"sqlite:///{blocked}/x.db"})
    broken = settings.model_copy(update={"mlflow": store})
    assert "cannot open the MLflow tracking store" in fails(spark, broken, "--epochs", "1")
    versions = client(settings).search_model_versions("name = 'femo-emotion'")  # type: ignore[attr-defined]
    assert len(versions) == 1


@pytest.mark.ranks
def test_a_failure_while_recording_leaves_no_version_and_no_alias(
    spark: object, trained: Trained, monkeypatch: pytest.MonkeyPatch
) -> None:
    import femo.ml.runs

    def broken(*_: object, **__: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(femo.ml.runs, "write_tables", broken)
    argv = ("--model", "dense", "--epochs", "1", "--num-proc", "1")
    with pytest.raises(OSError, match="disk full"):
        train_job(spark, trained.settings, *argv)
    mlflow = client(trained.settings)
    versions = mlflow.search_model_versions("name = 'femo-emotion'")  # type: ignore[attr-defined]
    assert [int(v.version) for v in versions] == [1]
    challenger = mlflow.get_model_version_by_alias("femo-emotion", CHALLENGER)  # type: ignore[attr-defined]
    assert int(challenger.version) == 1
    failed = mlflow.search_runs(  # type: ignore[attr-defined]
        [mlflow.get_experiment_by_name("femo").experiment_id],  # type: ignore[attr-defined]
        "attributes.status = 'FAILED'",
    )
    assert len(failed) == 1

    monkeypatch.undo()  # the same command again: trained already, it only records
    line = train_job(spark, trained.settings, *argv)
    assert " with 1 rank(s): 1 epochs in " in line, line
    new_run = line.split("MLflow run ")[1].split(",")[0]
    challenger = mlflow.get_model_version_by_alias("femo-emotion", CHALLENGER)  # type: ignore[attr-defined]
    assert challenger.run_id == new_run and int(challenger.version) > 1
    rows = spark.sql(  # type: ignore[attr-defined]
        f"SELECT count(*) AS n FROM {DATABASE}.training_runs"
    ).first()
    assert rows.n == 2


# -- a rank that fails or stalls ends the run in bounded time -------------------------------
def rank_one_fails() -> int:
    import horovod.tensorflow as hvd
    import tensorflow as tf

    hvd.init()
    if hvd.rank() == 1:
        raise ValueError("rank 1 lost its data")
    return int(hvd.allreduce(tf.constant(1)).numpy())  # waits for rank 1 for ever


def rank_one_stalls() -> int:
    import time

    import horovod.tensorflow as hvd

    hvd.init()
    if hvd.rank() == 1:
        time.sleep(3600)
    return hvd.rank()


def fails_within(spark: object, fn: object, cause: str, timeout_s: float, bound_s: float) -> None:
    """Two ranks of ``fn`` fail with ``cause`` in under ``bound_s`` seconds."""
    import time

    from femo.ml.launch import run_on_spark

    started = time.monotonic()
    with pytest.raises(TrainingError, match=cause):
        run_on_spark(
            spark,  # type: ignore[arg-type]
            fn,  # type: ignore[arg-type]
            (),
            num_proc=2,
            timeout_s=timeout_s,
            start_timeout_s=60,
            stall_seconds=30,
            threads=1,
        )
    assert time.monotonic() - started < bound_s


@pytest.mark.ranks
def test_a_failed_rank_fails_the_run_with_its_error(spark: object) -> None:
    cause = "training failed: rank 1: ValueError: rank 1 lost its data; a re-run resumes"
    fails_within(spark, rank_one_fails, cause, timeout_s=300, bound_s=120)


@pytest.mark.ranks
def test_a_stalled_rank_is_stopped_at_the_timeout(spark: object) -> None:
    cause = "training failed: rank 1: did not finish within 25 s"
    fails_within(spark, rank_one_stalls, cause, timeout_s=25, bound_s=90)
    # the session is usable afterwards
    assert spark.range(3).count() == 3  # type: ignore[attr-defined]
