"""A training run from the driver's side: choose the set, start the ranks, evaluate, track.

``jobs/train.py`` calls :func:`train`. In order, so that a failure leaves nothing
half-registered:

1. the training set (``--training-set`` or the newest) and its split files at one version of
   ``training_examples``; the model name; the MLflow store: each checked before any rank starts;
2. the ranks train (:mod:`femo.ml.training`, started by :mod:`femo.ml.launch`); rank 0 hands
   back the final model;
3. the driver evaluates it on the set's val and test splits (and the test split mirrored, for
   the test-time augmentation figure), then, in one MLflow run: parameters, per-epoch metrics,
   the evaluation (JSON, confusion matrix PNG), TensorBoard logs and the model
   (``mlflow.tensorflow``); a model version is registered; ``training_runs`` and
   ``run_metrics`` get their rows (keyed by the MLflow run id, replaced whole on a retry); only
   then does the version get the alias ``challenger`` and the MLflow run end FINISHED.

A run folder keyed by what the run learns (:func:`femo.ml.training.run_key`) holds the ranks'
checkpoints: the same command again resumes there, and once recorded it has nothing to do.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from femo.ml import tracking
from femo.ml.evaluation import Evaluation, confusion_png, evaluate, metric_rows
from femo.ml.feeding import SplitFiles, evaluation_stream, make_reader, split_files
from femo.ml.selection import TrainingSetError
from femo.ml.training import (
    RunFolder,
    RunState,
    TrainingError,
    TrainingFailedError,
    TrainSpec,
    run_key,
    train_fn,
)
from femo.ml.training_set import check_set_id
from femo.ml.zoo import ZOO, UnknownModelError
from femo.platform.delta_files import read_where, table_location
from femo.platform.schemas import RUN_METRICS, TRAINING_EXAMPLES, TRAINING_RUNS, TRAINING_SETS
from femo.platform.settings import Settings, is_uri

if TYPE_CHECKING:
    import numpy as np
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

LAUNCHERS = ("spark", "here")


@dataclass(frozen=True)
class TrainRequest:
    """What ``jobs/train.py`` was asked for; None: the settings' value."""

    model: str | None = None
    set_id: str | None = None
    epochs: int | None = None
    minutes: float | None = None
    num_proc: int | None = None
    launcher: str = "spark"
    fresh: bool = False

    def __post_init__(self) -> None:
        for name in ("epochs", "num_proc"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise TrainingError(f"{name} must be at least 1, got {value}")
        if self.minutes is not None and self.minutes <= 0:
            raise TrainingError(f"minutes must be positive, got {self.minutes}")
        if self.launcher not in LAUNCHERS:
            raise TrainingError(f"unknown launcher {self.launcher!r}: {' or '.join(LAUNCHERS)}")


@dataclass
class TrainSummary:
    """What a run did; :meth:`line` is the job's summary."""

    run_id: str
    model: str
    set_id: str
    model_name: str = ""
    version: int | None = None
    epochs: int = 0
    ranks: int = 0
    stopped_by: str = ""
    train_minutes: float = 0.0
    test: dict[str, Any] = field(default_factory=dict)
    status: str = "trained"  # trained or recorded (nothing to do)

    def line(self) -> str:
        if self.status == "recorded":
            return (
                f"{self.model} on training set {self.set_id} is already trained and recorded "
                f"as MLflow run {self.run_id}: nothing to do (--fresh trains again)"
            )
        return (
            f"trained {self.model} on set {self.set_id} with {self.ranks} rank(s): "
            f"{self.epochs} epochs in {self.train_minutes:.1f} min (stopped by "
            f"{self.stopped_by}); test accuracy {self.test.get('accuracy', 0):.1%}, macro-F1 "
            f"{self.test.get('macro_f1', 0):.3f}, with flip {self.test.get('flip', 0):.1%}; "
            f"MLflow run {self.run_id}, {self.model_name} v{self.version} = challenger"
        )


def choose_set(spark: SparkSession, database: str, set_id: str | None) -> dict[str, Any]:
    """The ``training_sets`` row of ``set_id``, or the newest set's."""
    table = f"{database}.{TRAINING_SETS.name}"
    equals = {"set_id": check_set_id(set_id)} if set_id else {}
    rows = read_where(
        spark, table, ["set_id", "classes", "created_at", "split_counts"], equals
    ).to_pylist()
    if not rows:
        if set_id:
            raise TrainingSetError(f"no training set {set_id} in {table}")
        raise TrainingSetError(f"{table} holds no training set: run jobs/build_training_set.py")
    return max(rows, key=lambda r: r["created_at"])


def split_arrays(
    files: SplitFiles, classes: list[int], size: int
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Every row of a split, decoded, as ``(pixels, class index)`` arrays."""
    import numpy as np

    with make_reader(files, epochs=1, shuffle=False) as reader:
        batches = list(evaluation_stream(reader, classes, image_size=size, batch_size=512))
    return (
        np.concatenate([b[0].numpy() for b in batches]),
        np.concatenate([b[1].numpy() for b in batches]),
    )


def emotion_names(spark: SparkSession, database: str, classes: list[int]) -> list[str]:
    """The emotions' names in class order."""
    rows = read_where(spark, f"{database}.emotions", ["emotion_id", "name"], {}).to_pylist()
    names = {r["emotion_id"]: r["name"] for r in rows}
    return [names.get(c, str(c)) for c in classes]


def train(spark: SparkSession, settings: Settings, request: TrainRequest) -> TrainSummary:
    """Train, evaluate, track and register as this module's docstring says. With the launcher
    ``here`` this process is rank 0 of the Horovod ranks (see :func:`follow` for the others)."""
    from femo.ml.launch import horovod_world, share

    cfg = settings.training
    here = request.launcher == "here"
    ranks = horovod_world()[1] if here else None
    try:
        prepared = prepare(spark, settings, request, ranks)
    except BaseException:
        if here:
            share(None)  # the other ranks stop too
        raise
    if isinstance(prepared, TrainSummary):
        if here:
            share(None)
        return prepared
    spec, key, ranks, folder, test_files, client, experiment = prepared
    log.info(
        "training %s on set %s with %d rank(s), run folder %s",
        spec.model,
        spec.train.set_id,
        ranks,
        folder.root,
    )
    if here:
        from femo.ml.launch import run_here

        share((spec, key))
        result = run_here(train_fn, (spec, key), cfg.timeout_minutes * 60)
    else:
        from femo.ml.launch import run_on_spark

        results = run_on_spark(
            spark,
            train_fn,
            (spec, key),
            num_proc=ranks,
            timeout_s=cfg.timeout_minutes * 60,
            start_timeout_s=cfg.start_timeout_s,
            stall_seconds=cfg.stall_seconds,
            threads=spec.threads,
        )
        for r in results:
            log.info("rank %d ran on %s", r["rank"], r["where"])
        result = next(r for r in results if r["rank"] == 0)
    state = RunState(**result["state"])
    folder.root.mkdir(parents=True, exist_ok=True)
    if not folder.model.is_file():  # rank 0 ran elsewhere
        folder.model.write_bytes(result["model_h5"])

    summary = record(
        spark,
        settings,
        client,
        experiment,
        spec,
        state,
        folder,
        result,
        test_files,
        version=spec.train.version,
    )
    state.mlflow_run_id = summary.run_id
    folder.save(state)
    return summary


def follow(settings: Settings) -> None:
    """A rank other than 0 under ``horovodrun``: take rank 0's spec and train with it (no Spark,
    no MLflow here)."""
    from femo.ml.launch import run_here, share

    received = share(None)
    if received is None:
        raise TrainingFailedError("rank 0 did not start a run (its error or summary says why)")
    spec, key = received
    run_here(train_fn, (spec, key), settings.training.timeout_minutes * 60)


def spark_ranks(spark: SparkSession, cfg: Any, request: TrainRequest) -> int:
    """Ranks for ``horovod.spark.run``: asked for, set, or the cluster's default parallelism."""
    return int(request.num_proc or cfg.num_proc or spark.sparkContext.defaultParallelism)


def prepare(
    spark: SparkSession, settings: Settings, request: TrainRequest, ranks: int | None
) -> TrainSummary | tuple[TrainSpec, str, int, RunFolder, SplitFiles, Any, str]:
    """Everything checked before a rank starts: the set and its files at one version, the
    model, the tracking store; the spec, its key, the ranks and the run folder. A summary
    instead when the run is already recorded. ``ranks``: known (horovodrun), else from the
    Spark settings."""
    cfg = settings.training
    database = settings.catalog.database
    model = request.model or cfg.model
    if model not in ZOO:
        raise UnknownModelError(f"unknown model {model!r}; the zoo holds: {', '.join(ZOO)}")
    chosen = choose_set(spark, database, request.set_id)
    set_id, classes = chosen["set_id"], [int(c) for c in chosen["classes"]]
    examples = table_location(spark, f"{database}.{TRAINING_EXAMPLES.name}")
    train_files = split_files(examples, set_id, "train")
    version = train_files.version
    val_files = split_files(examples, set_id, "val", version)
    test_files = split_files(examples, set_id, "test", version)
    client, experiment = tracking.open_store(settings)
    if ranks is None:
        ranks = spark_ranks(spark, cfg, request)
        from femo.ml.launch import check_slots

        check_slots(spark, ranks)
    threads = cfg.threads_per_rank
    if threads is None and str(spark.sparkContext.master).startswith("local"):
        threads = max(1, (os.cpu_count() or 1) // ranks)
    spec = TrainSpec(
        model=model,
        classes=tuple(classes),
        train=train_files,
        val=val_files,
        folder="",
        image_size=cfg.image_size,
        batch_size=cfg.batch_size,
        shuffle_buffer=cfg.shuffle_buffer,
        augment=cfg.augment,
        epochs=request.epochs or cfg.epochs,
        minutes=request.minutes or cfg.minutes,
        learning_rate=cfg.learning_rate,
        warmup_epochs=cfg.warmup_epochs,
        patience=cfg.patience,
        precision=cfg.precision,
        class_weights=cfg.class_weights,
        label_smoothing=cfg.label_smoothing,
        ema_decay=cfg.ema_decay,
        seed=cfg.seed,
        threads=threads,
    )
    key = run_key(spec, ranks)
    if is_uri(settings.runs_dir):
        raise TrainingError(
            f"training.checkpoint_dir must be a path rank 0 and the driver share, not "
            f"{settings.runs_dir} (set it to a shared mount on a cluster)"
        )
    folder = RunFolder(Path(settings.runs_dir) / key)
    if request.fresh and folder.root.exists():
        shutil.rmtree(folder.root)
    spec = replace(spec, folder=str(folder.root))
    state = folder.load(key)
    if state.mlflow_run_id and _run_finished(client, state.mlflow_run_id):
        return TrainSummary(state.mlflow_run_id, model, set_id, status="recorded")
    return spec, key, ranks, folder, test_files, client, experiment


def _run_finished(client: Any, run_id: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_run(run_id).info.status) == "FINISHED"
    except MlflowException:
        return False


def record(
    spark: SparkSession,
    settings: Settings,
    client: Any,
    experiment: str,
    spec: TrainSpec,
    state: RunState,
    folder: RunFolder,
    result: dict[str, Any],
    test_files: SplitFiles,
    *,
    version: int,
) -> TrainSummary:
    """Evaluate the final model and record it: MLflow run, registered version, tables, alias."""
    import tensorflow as tf

    database = settings.catalog.database
    classes = list(spec.classes)
    names = emotion_names(spark, database, classes)
    model = tf.keras.models.load_model(str(folder.model), compile=False)
    evaluations: list[Evaluation] = []
    flip = 0.0
    for split, files in (("val", spec.val), ("test", test_files)):
        x, y = split_arrays(files, classes, spec.image_size)
        probabilities = model.predict(x, batch_size=512, verbose=0)
        evaluations.append(evaluate(y, probabilities.argmax(axis=1), classes, split))
        if split == "test":
            mirrored = model.predict(x[:, :, ::-1, :], batch_size=512, verbose=0)
            flip = float(((probabilities + mirrored).argmax(axis=1) == y).mean())
    val_eval, test_eval = evaluations
    mlflow_name = settings.mlflow.model_name
    params = spec.params() | {
        "set_id": spec.train.set_id,
        "ranks": result["ranks"],
        "threads": spec.threads,
        "training_examples_version": version,
    }
    with tracking.mlflow_run(
        client,
        experiment,
        f"{spec.model}-{spec.train.set_id[:8]}",
        {"femo.set_id": spec.train.set_id, "femo.run_key": state.key, "femo.model": spec.model},
    ) as run_id:
        client.log_batch(
            run_id,
            params=[_param(k, v) for k, v in sorted(params.items())],
        )
        tracking.log_history(client, run_id, state.history)
        from mlflow.entities import Metric

        now = int(datetime.now(UTC).timestamp() * 1000)
        finals = {
            "test_accuracy": test_eval.accuracy,
            "test_macro_f1": test_eval.macro_f1,
            "test_accuracy_flip": flip,
            "best_val_accuracy": val_eval.accuracy,
        }
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, now, 0) for k, v in finals.items()],  # type: ignore[no-untyped-call]
        )
        report = {
            "val": val_eval.as_dict(names),
            "test": test_eval.as_dict(names),
            "test_accuracy_flip": round(flip, 4),
            "state": asdict(state) | {"history": None},
        }
        client.log_text(run_id, json.dumps(report, indent=1), "evaluation.json")
        client.log_image(run_id, _png_image(confusion_png(test_eval, names)), "confusion_test.png")
        if folder.tensorboard.is_dir():
            client.log_artifacts(run_id, str(folder.tensorboard), "tensorboard")
        tracking.log_keras_model(run_id, model)
        model_version = tracking.register(client, mlflow_name, run_id)
        try:
            write_tables(
                spark,
                database,
                run_id,
                spec,
                state,
                result,
                model_version,
                mlflow_name,
                version,
                (val_eval, test_eval),
                flip,
            )
        except BaseException:
            client.delete_model_version(mlflow_name, str(model_version))
            raise
        client.set_registered_model_alias(mlflow_name, tracking.CHALLENGER, str(model_version))
    return TrainSummary(
        run_id,
        spec.model,
        spec.train.set_id,
        model_name=mlflow_name,
        version=model_version,
        epochs=state.epochs_done,
        ranks=int(result["ranks"]),
        stopped_by=state.stopped_by,
        train_minutes=state.trained_s / 60,
        test={"accuracy": test_eval.accuracy, "macro_f1": test_eval.macro_f1, "flip": flip},
    )


def _param(key: str, value: Any) -> Any:
    from mlflow.entities import Param

    text = json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)
    return Param(key, text[:6000])  # type: ignore[no-untyped-call]


def _png_image(png: bytes) -> Any:
    from PIL import Image

    return Image.open(io.BytesIO(png))


def write_tables(
    spark: SparkSession,
    database: str,
    run_id: str,
    spec: TrainSpec,
    state: RunState,
    result: dict[str, Any],
    model_version: int,
    model_name: str,
    version: int,
    evaluations: tuple[Evaluation, Evaluation],
    flip: float,
) -> None:
    """The run's rows of ``training_runs`` and ``run_metrics``, each table in one commit that
    replaces whatever an interrupted earlier attempt wrote for this run id."""
    val_eval, test_eval = evaluations
    params = spec.params()
    row = {
        "run_id": run_id,
        "set_id": spec.train.set_id,
        "model_name": model_name,
        "model_version": model_version,
        "architecture": spec.model,
        "parameters": int(result["params"]),
        "params": json.dumps(params, sort_keys=True, default=str),
        "ranks": int(result["ranks"]),
        "epochs": state.epochs_done,
        "best_epoch": state.best_epoch,
        "stopped_by": state.stopped_by,
        "train_seconds": float(state.trained_s),
        "val_accuracy": val_eval.accuracy,
        "test_accuracy": test_eval.accuracy,
        "test_macro_f1": test_eval.macro_f1,
        "test_accuracy_flip": flip,
        "training_examples_version": version,
        "finished_at": datetime.now(UTC),
    }
    metrics = [
        {"run_id": run_id, "set_id": spec.train.set_id} | r
        for evaluation in evaluations
        for r in metric_rows(evaluation)
    ]
    for spec_, rows in ((TRAINING_RUNS, [row]), (RUN_METRICS, metrics)):
        schema = spec_.schema
        frame = spark.createDataFrame(
            [tuple(r[f.name] for f in schema.fields) for r in rows], schema
        )
        (
            frame.write.format("delta")
            .mode("overwrite")
            .option("replaceWhere", f"run_id = '{run_id}'")  # an MLflow id: 32 hex digits
            .save(table_location(spark, f"{database}.{spec_.name}"))
        )
