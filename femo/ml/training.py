"""Horovod training of a zoo network on a training set: what every rank runs.

:func:`train_fn` is self-contained (TensorFlow and Horovod are imported inside it), so
``horovod.spark.run`` can ship it to executors, ``horovodrun`` can start it in each process, and
a lone process can call it as a single rank. Each rank:

- calls ``hvd.init()``, pins one GPU by local rank where there are GPUs, or limits TensorFlow to
  ``threads`` CPU threads;
- reads its shard of the train split through Petastorm (:mod:`femo.ml.feeding`), endless, with
  the same number of steps per epoch on every rank (uneven shards hang the allreduce), and the
  whole validation split once per epoch (so every rank computes the same validation figures);
- trains with ``hvd.DistributedOptimizer``; callbacks in the order Horovod asks for:
  ``BroadcastGlobalVariablesCallback(0)`` first, then ``MetricAverageCallback``, then
  :func:`make_schedule`, femo's one callback for everything that must agree across ranks: the
  learning rate (:func:`learning_rate`: warm-up to rate x ranks, then a cosine decay over the
  epochs or the wall-clock budget, whichever ends first), early stopping on validation accuracy
  with the best weights restored, and the time budget. Rank 0 decides, and broadcasts each
  decision, so no rank stops alone and leaves the others waiting in an allreduce.

Rank 0 alone writes: checkpoints (model and optimizer, each epoch), the best weights, TensorBoard
logs and ``state.json`` in the run folder (:class:`RunFolder`). A run started again with the same
key finds ``state.json`` and resumes after the last finished epoch, its budget, patience and best
figure included; a finished run is not trained again. Rank 0 returns the final model (the best
weights) as Keras H5 bytes with the epoch history; the driver does the rest (evaluation, MLflow,
tables): workers never talk to MLflow.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from femo.ml.feeding import SplitFiles
from femo.platform.errors import FemoError, RunFailedError
from femo.platform.settings import AugmentSettings

log = logging.getLogger(__name__)

#: What the state file of a run folder is called.
STATE_FILE = "state.json"
#: The final model (best weights, no optimizer) in a run folder.
MODEL_FILE = "model.h5"
#: Fields added to :class:`TrainSpec` after runs were recorded, with the value that turns them
#: off: at that value a field stays out of the run key, so that the same command still finds
#: the run it made before the field existed.
LATER_FIELDS: dict[str, Any] = {"ema_decay": 0.0}


class TrainingError(FemoError):
    """Training could not start or did not finish; the message says why and what to do."""


class TrainingFailedError(TrainingError, RunFailedError):
    """A rank failed or stalled while training: a re-run resumes from the last checkpoint."""


@dataclass(frozen=True)
class TrainSpec:
    """Everything a rank needs, picklable (shipped to every executor)."""

    model: str
    classes: tuple[int, ...]
    train: SplitFiles
    val: SplitFiles
    folder: str
    image_size: int = 48
    batch_size: int = 128
    shuffle_buffer: int = 4096
    augment: AugmentSettings = field(default_factory=AugmentSettings)  # type: ignore[arg-type]
    epochs: int = 100
    minutes: float | None = None
    learning_rate: float = 1e-3
    warmup_epochs: int = 3
    patience: int = 15
    precision: str = "float32"
    class_weights: bool = False
    label_smoothing: float = 0.0
    ema_decay: float = 0.0
    seed: int = 0
    threads: int | None = None
    weights_file: str | None = None

    def key_fields(self) -> dict[str, Any]:
        """The fields that decide what a run learns (not where it writes)."""
        fields = asdict(self)
        fields.pop("folder")
        fields["train"] = [self.train.set_id, self.train.version]
        fields["val"] = [self.val.set_id, self.val.version]
        fields.pop("threads")
        for name, off in LATER_FIELDS.items():
            if fields[name] == off:
                fields.pop(name)
        return fields

    def params(self) -> dict[str, Any]:
        """The hyper-parameters a run records (MLflow params, ``training_runs.params``): the
        key fields less the splits, which the set id names."""
        return {k: v for k, v in self.key_fields().items() if k not in ("train", "val")}


def run_key(spec: TrainSpec, ranks: int) -> str:
    """A short hash of what a run learns and on how many ranks: a run with the same key
    resumes the other's checkpoints."""
    text = json.dumps({**spec.key_fields(), "ranks": ranks}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def learning_rate(
    epoch: int,
    *,
    base: float,
    ranks: int,
    warmup_epochs: int,
    epochs: int,
    elapsed_s: float = 0.0,
    budget_s: float | None = None,
) -> float:
    """The rate for ``epoch`` (0-based): a linear warm-up from ``base`` to ``base x ranks`` over
    ``warmup_epochs`` (Goyal et al.'s rule for a global batch ``ranks`` times larger), then a
    cosine decay to 0 along the run's progress: the larger of the share of epochs done and the
    share of the wall-clock budget spent."""
    peak = base * ranks
    if epoch < warmup_epochs:
        return base + (peak - base) * epoch / warmup_epochs
    done = (epoch - warmup_epochs) / max(1, epochs - warmup_epochs)
    if budget_s:
        done = max(done, elapsed_s / budget_s)
    return peak * 0.5 * (1.0 + math.cos(math.pi * min(1.0, done)))


def budget_left(elapsed_s: float, epochs_done: int, budget_s: float | None) -> bool:
    """Whether another epoch of the mean length so far fits in the budget."""
    if not budget_s or epochs_done == 0:
        return True
    return elapsed_s + elapsed_s / epochs_done <= budget_s


def average_decay(decay: float, updates: int) -> float:
    """The decay of the weight average's ``updates``-th update (0-based): ``decay``, but less
    while few updates went in, ``(1 + n) / (10 + n)``, so that the average soon leaves the
    initial weights behind (the warm-up of TensorFlow's ``ExponentialMovingAverage``)."""
    return min(decay, (1.0 + updates) / (10.0 + updates))


@dataclass
class RunState:
    """What rank 0 keeps in ``state.json`` between epochs and runs."""

    key: str
    epochs_done: int = 0
    trained_s: float = 0.0
    best_val_accuracy: float = -1.0
    best_epoch: int = -1
    wait: int = 0
    finished: bool = False
    stopped_by: str = ""
    history: list[dict[str, float]] = field(default_factory=list)
    mlflow_run_id: str | None = None


class RunFolder:
    """A run's folder on rank 0's filesystem: ``state.json``, ``checkpoints/`` (model and
    optimizer), ``best.weights.h5``, ``tensorboard/`` and, once finished, ``model.h5``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def state_path(self) -> Path:
        return self.root / STATE_FILE

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def best_weights(self) -> Path:
        return self.root / "best.weights.h5"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def model(self) -> Path:
        return self.root / MODEL_FILE

    def load(self, key: str) -> RunState:
        """The saved state, or a fresh one; a state of another key is an error."""
        if not self.state_path.is_file():
            return RunState(key)
        state = RunState(**json.loads(self.state_path.read_text()))
        if state.key != key:
            raise TrainingError(
                f"{self.root} holds run {state.key}, not {key}: start with --fresh or elsewhere"
            )
        return state

    def save(self, state: RunState) -> None:
        """Write ``state`` atomically (a killed write leaves the previous one)."""
        self.root.mkdir(parents=True, exist_ok=True)
        partial = self.state_path.with_suffix(".tmp")
        partial.write_text(json.dumps(asdict(state), indent=1))
        os.replace(partial, self.state_path)


def train_fn(spec: TrainSpec, key: str) -> dict[str, Any]:
    """Train ``spec`` as one Horovod rank; rank 0 returns the run's result (the final model as
    H5 bytes, the history and how it stopped), the other ranks ``{"rank": r}``."""
    import horovod.tensorflow.keras as hvd
    import tensorflow as tf
    from horovod.tensorflow import broadcast_object

    from femo.ml.feeding import make_reader, steps_per_epoch, training_stream
    from femo.ml.zoo import build_model

    # petastorm 0.13 on pyarrow 10 warns of deprecated pyarrow calls on every reader
    warnings.filterwarnings("ignore", category=FutureWarning, module="petastorm")
    warnings.filterwarnings("ignore", message="schema_fields behavior has changed")
    hvd.init()
    rank, ranks = hvd.rank(), hvd.size()
    if rank == 0 and not logging.getLogger().handlers:  # a rank's own process: say what it does
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        logging.getLogger("femo").setLevel(logging.INFO)
    _devices(spec, hvd.local_rank())

    folder = RunFolder(spec.folder)
    state = folder.load(key) if rank == 0 else RunState(key)
    state = broadcast_object(state, root_rank=0)
    model = build_model(
        spec.model,
        (spec.image_size, spec.image_size, 1),
        len(spec.classes),
        weights=spec.weights_file,
    )
    optimizer = hvd.DistributedOptimizer(
        tf.keras.optimizers.legacy.Adam(learning_rate=spec.learning_rate)
    )
    _compile(model, optimizer, spec.class_weights, spec.label_smoothing)
    validation = _validation(spec) if not state.finished else None
    average = (
        make_average(model, spec.ema_decay, validation) if rank == 0 and spec.ema_decay else None
    )
    manager = None
    if rank == 0:
        manager = _checkpoints(folder, state, model=model, optimizer=optimizer, average=average)

    result: dict[str, Any] = {
        "rank": rank,
        "where": f"{socket.gethostname()} pid {os.getpid()} in {os.getcwd()}",
    }
    if not state.finished:
        steps = steps_per_epoch(spec.train.rows, ranks, spec.batch_size)
        with make_reader(
            spec.train, rank=rank, ranks=ranks, epochs=1, seed=spec.seed + rank
        ) as reader:  # one pass: the stream caches it and repeats from memory
            stream = training_stream(
                reader,
                spec.classes,
                image_size=spec.image_size,
                batch_size=spec.batch_size,
                augment=spec.augment,
                seed=spec.seed + rank,
                shuffle_buffer=spec.shuffle_buffer,
            )

            def targets(x: Any, y: Any, w: Any) -> tuple[Any, ...]:
                onehot = tf.one_hot(y, len(spec.classes))  # the smoothed loss takes one-hot
                return (x, onehot, w) if spec.class_weights else (x, onehot)

            stream = stream.map(targets)
            schedule = make_schedule(
                spec, ranks, rank, folder, state, manager, broadcast_object, average
            )
            callbacks: list[Any] = [
                hvd.callbacks.BroadcastGlobalVariablesCallback(0),
                hvd.callbacks.MetricAverageCallback(),
                schedule,
            ]
            if rank == 0:
                callbacks.append(
                    tf.keras.callbacks.TensorBoard(str(folder.tensorboard), profile_batch=0)
                )
            model.fit(
                stream,
                steps_per_epoch=steps,
                epochs=spec.epochs,
                initial_epoch=state.epochs_done,
                validation_data=validation,
                callbacks=callbacks,
                verbose=2 if rank == 0 else 0,
            )
        state = schedule.state
    if rank == 0:
        if not folder.model.is_file():
            if folder.best_weights.is_file():
                model.load_weights(str(folder.best_weights))
            model.save(str(folder.model), include_optimizer=False, save_format="h5")
        result.update(
            model_h5=folder.model.read_bytes(),
            state=asdict(state),
            ranks=ranks,
            params=int(model.count_params()),
        )
    return result


def _checkpoints(folder: RunFolder, state: RunState, **objects: Any) -> Any:
    """Rank 0's checkpoint manager over ``objects`` (the model, the optimizer and, where there
    is one, the weight average; None: left out), restored from the last checkpoint when the
    run has finished epochs (the optimizer's slots on its first step)."""
    import tensorflow as tf

    checkpoint = tf.train.Checkpoint(**{k: v for k, v in objects.items() if v is not None})
    manager = tf.train.CheckpointManager(checkpoint, str(folder.checkpoints), max_to_keep=2)
    if state.epochs_done and manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint)
        log.info(
            "resuming run %s after epoch %d (%.1f min trained)",
            state.key,
            state.epochs_done,
            state.trained_s / 60,
        )
    return manager


def _validation(spec: TrainSpec) -> tuple[Any, Any]:
    """The whole validation split in memory, as pixels and one-hot targets (every rank holds
    all of it, so that each computes the same val metrics)."""
    import tensorflow as tf

    from femo.ml.feeding import evaluation_stream, make_reader

    with make_reader(spec.val, epochs=1, shuffle=False) as reader:
        val = list(
            evaluation_stream(reader, spec.classes, image_size=spec.image_size, batch_size=512)
        )
    pixels = tf.concat([b[0] for b in val], axis=0)
    return pixels, tf.one_hot(tf.concat([b[1] for b in val], axis=0), len(spec.classes))


def _devices(spec: TrainSpec, local_rank: int) -> None:
    """One GPU per rank (by local rank) where there are GPUs, else ``spec.threads`` CPU
    threads; the seed (the same initial weights on every rank) and the Keras policy."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    try:
        if gpus:
            tf.config.experimental.set_memory_growth(gpus[local_rank], True)
            tf.config.set_visible_devices(gpus[local_rank], "GPU")
        elif spec.threads:
            tf.config.threading.set_intra_op_parallelism_threads(spec.threads)
            tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, spec.threads)))
    except RuntimeError:  # under horovodrun the spec's broadcast has started TensorFlow
        log.info(
            "TensorFlow is running already: devices and threads stay as they are "
            "(TF_NUM_INTRAOP_THREADS and CUDA_VISIBLE_DEVICES set them before it starts)"
        )
    tf.keras.utils.set_random_seed(spec.seed)
    tf.keras.mixed_precision.set_global_policy(spec.precision)


def _compile(model: Any, optimizer: Any, weighted: bool, label_smoothing: float) -> None:
    """Cross-entropy over one-hot targets, ``label_smoothing`` of each spread evenly over the
    classes (Szegedy et al. 2016: FER-2013's labels are noisy, and a model that must not be
    sure of them overfits later), and accuracy (weighted by the class weights when the loss
    is)."""
    import tensorflow as tf

    model.compile(
        optimizer=optimizer,
        loss=tf.keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
        weighted_metrics=["accuracy"] if weighted else None,
        metrics=None if weighted else ["accuracy"],
        experimental_run_tf_function=False,
    )


def make_average(model: Any, decay: float, validation: tuple[Any, Any] | None = None) -> Any:
    """An exponential moving average of all of ``model``'s weights (batch-norm statistics
    included), a ``tf.Module`` that a checkpoint saves: ``update()`` after each step folds the
    weights in (:func:`average_decay`), ``swapped()`` puts the average into the model for a
    while, and ``judged(logs)`` is an epoch's ``logs`` with the figures of the swapped-in
    average on ``validation`` (pixels, one-hot targets) as ``val_*`` and the raw weights' as
    ``val_*_raw``. On noisy labels such as FER-2013's, the average of the last few epochs'
    weights generalises better than the weights of any one step (Polyak averaging; Izmailov et
    al. 2018 for the same idea over epochs)."""
    import contextlib

    import tensorflow as tf

    class Average(tf.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(name="weight_average")
            self.updates = tf.Variable(0, dtype=tf.int64, trainable=False)
            self.shadows = [
                tf.Variable(w, trainable=False, name=w.name.split(":")[0].replace("/", "_"))
                for w in model.weights
            ]
            self._count: int | None = None  # updates on the host: no device sync per step

        def update(self) -> None:
            if self._count is None:  # first update, after any checkpoint was restored
                self._count = int(self.updates.numpy())
            rate = average_decay(decay, self._count)
            self._count += 1
            self._fold(tf.constant(rate, tf.float32))  # a tensor: one trace for every rate

        @tf.function  # type: ignore[misc]
        def _fold(self, rate: Any) -> None:
            for shadow, weight in zip(self.shadows, model.weights, strict=True):
                shadow.assign(rate * shadow + (1.0 - rate) * tf.cast(weight, shadow.dtype))
            self.updates.assign_add(1)

        @contextlib.contextmanager
        def swapped(self) -> Any:
            own = model.get_weights()
            model.set_weights([s.numpy() for s in self.shadows])
            try:
                yield
            finally:
                model.set_weights(own)

        def judged(self, logs: dict[str, float]) -> dict[str, float]:
            if validation is None:
                return logs
            raw = {f"{k}_raw": logs[k] for k in ("val_accuracy", "val_loss") if k in logs}
            figures = model.evaluate(*validation, batch_size=512, verbose=0, return_dict=True)
            return logs | raw | {f"val_{k}": float(v) for k, v in figures.items()}

    return Average()


def make_schedule(
    spec: TrainSpec,
    ranks: int,
    rank: int,
    folder: RunFolder,
    state: RunState,
    manager: Any,
    broadcast: Callable[..., Any],
    average: Any = None,
) -> Any:
    """femo's Keras callback for what must agree across ranks: each epoch's rate (rank 0's,
    broadcast), and at each epoch's end rank 0's bookkeeping (history, best weights, patience,
    budget, checkpoint, ``state.json``) and its decision to stop, broadcast. With a weight
    ``average`` (:func:`make_average`, rank 0 only), rank 0 updates it after every step and at
    each epoch's end judges the average on validation instead of the raw weights: its
    ``val_accuracy`` decides the best epoch and early stopping, and the best weights saved are
    the average's (the raw figures stay in the history as ``val_accuracy_raw`` and
    ``val_loss_raw``). Built here so that importing this module does not import TensorFlow."""
    import contextlib

    import tensorflow as tf

    budget_s = spec.minutes * 60 if spec.minutes else None

    class Schedule(tf.keras.callbacks.Callback):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.state = state
            self._started = 0.0

        def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            rate = learning_rate(
                epoch,
                base=spec.learning_rate,
                ranks=ranks,
                warmup_epochs=spec.warmup_epochs,
                epochs=spec.epochs,
                elapsed_s=self.state.trained_s,
                budget_s=budget_s,
            )
            rate = broadcast(rate, root_rank=0)
            tf.keras.backend.set_value(self.model.optimizer.learning_rate, rate)
            self._started = time.monotonic()

        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            decision = None
            if rank == 0:
                decision = self._bookkeeping(epoch, dict(logs or {}))
            if broadcast(decision, root_rank=0):
                self.model.stop_training = True

        def _bookkeeping(self, epoch: int, logs: dict[str, float]) -> bool:
            current = self.state
            averaged = average.swapped() if average is not None else contextlib.nullcontext()
            with averaged:
                if average is not None:
                    logs = average.judged(logs)
                val = float(logs.get("val_accuracy", -1.0))
                if val > current.best_val_accuracy:
                    current.best_val_accuracy, current.best_epoch = val, epoch + 1
                    current.wait = 0
                    self.model.save_weights(str(folder.best_weights))
                else:
                    current.wait += 1
            seconds = time.monotonic() - self._started
            current.trained_s += seconds
            current.epochs_done = epoch + 1
            rate = float(tf.keras.backend.get_value(self.model.optimizer.learning_rate))
            current.history.append(
                {k: float(v) for k, v in logs.items()}
                | {"epoch": epoch + 1, "lr": rate, "epoch_seconds": seconds}
            )
            if current.wait >= spec.patience:
                current.stopped_by = "early_stopping"
            elif not budget_left(current.trained_s, current.epochs_done, budget_s):
                current.stopped_by = "budget"
            elif current.epochs_done >= spec.epochs:
                current.stopped_by = "epochs"
            current.finished = bool(current.stopped_by)
            manager.save(checkpoint_number=epoch + 1)
            folder.save(current)
            return current.finished

    if average is None:
        return Schedule()

    class Averaging(Schedule):  # only then does Keras call a hook after every step
        def __init__(self) -> None:
            super().__init__()
            self._supports_tf_logs = True  # the hook needs no logs as numbers

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            average.update()

    return Averaging()
