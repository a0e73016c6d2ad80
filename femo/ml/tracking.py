"""MLflow: where femo tracks training runs and registers models (the driver alone writes here).

Locally the tracking store is a SQLite database and the artefact root a folder, both under
``<home>/mlflow`` as absolute paths (with a relative root MLflow writes under the working
directory); on a cluster ``mlflow.tracking_uri`` names the team's server. Every run's model is
registered under ``mlflow.model_name``; the alias ``challenger`` marks the newest finished one,
``champion`` the promoted one (set by the promotion job). Aliases live in MLflow alone: tables
and pages that show them read them from here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from femo.platform.errors import RunFailedError
from femo.platform.settings import Settings, is_uri

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)

CHALLENGER = "challenger"
CHAMPION = "champion"


class TrackingError(RunFailedError):
    """The tracking store cannot be opened or refused a write."""


def tracking_uri(settings: Settings) -> str:
    """The configured tracking URI, or SQLite at ``<home>/mlflow/mlflow.db`` (absolute)."""
    if settings.mlflow.tracking_uri:
        return settings.mlflow.tracking_uri
    return f"sqlite:///{Path(settings.mlflow_dir).resolve() / 'mlflow.db'}"


def artifact_root(settings: Settings) -> str:
    """Where new experiments keep their artefacts, as an absolute URI."""
    root = settings.mlflow.artifact_root or str(Path(settings.mlflow_dir) / "artifacts")
    if is_uri(root):
        return root
    return Path(root).expanduser().resolve().as_uri()


def open_store(settings: Settings) -> tuple[MlflowClient, str]:
    """A client on the tracking store and the id of the experiment ``mlflow.experiment``
    (created with the artefact root on first use).

    Raises:
        TrackingError: the store cannot be opened (one line naming it and why).
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = tracking_uri(settings)
    # A new SQLite store runs ~30 schema migrations under alembic's own logging set-up
    # (fileConfig: an INFO line each, and the root logger's handlers and level replaced): keep
    # them off the user's screen and give the job its logging back afterwards.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    logging.disable(logging.INFO)
    try:
        if uri.startswith("sqlite:///"):
            Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        client = MlflowClient(uri, registry_uri=uri)
        found = client.get_experiment_by_name(settings.mlflow.experiment)
        if found is not None:
            return client, str(found.experiment_id)
        experiment = client.create_experiment(
            settings.mlflow.experiment, artifact_location=artifact_root(settings)
        )
        return client, str(experiment)
    except Exception as exc:  # MLflow raises many kinds here (SQLAlchemy, HTTP, OS)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrackingError(f"cannot open the MLflow tracking store {uri}: {first}") from exc
    finally:
        logging.disable(logging.NOTSET)
        root.handlers[:] = handlers
        root.setLevel(level)


@contextmanager
def mlflow_run(
    client: MlflowClient, experiment_id: str, name: str, tags: Mapping[str, str]
) -> Iterator[str]:
    """A run that ends FINISHED when the block completes and FAILED when it raises."""
    run = client.create_run(experiment_id, run_name=name, tags=dict(tags))
    run_id = str(run.info.run_id)
    try:
        yield run_id
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")


def log_history(client: MlflowClient, run_id: str, history: list[dict[str, float]]) -> None:
    """Per-epoch metrics (``epoch`` is the step), in one batch per epoch."""
    import time

    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    for row in history:
        step = int(row["epoch"])
        metrics = [
            Metric(key, float(value), now, step)  # type: ignore[no-untyped-call]
            for key, value in row.items()
            if key != "epoch"
        ]
        client.log_batch(run_id, metrics=metrics)


def log_keras_model(run_id: str, model: Any, artifact_path: str = "model") -> None:
    """Log a Keras 2 model with ``mlflow.tensorflow`` under the run's ``artifact_path`` (the
    network rescales its own pixels, so its preprocessing travels with it)."""
    import mlflow
    import numpy as np
    import tensorflow as tf
    from mlflow.models import infer_signature

    shape = tuple(int(d) for d in model.input_shape[1:])
    example = np.zeros((1, *shape), dtype=np.float32)
    signature = infer_signature(example, model.predict(example, verbose=0))
    with mlflow.start_run(run_id=run_id):
        mlflow.tensorflow.log_model(
            model,
            artifact_path=artifact_path,
            signature=signature,
            pip_requirements=[f"tensorflow=={tf.__version__}"],
        )


def register(client: MlflowClient, name: str, run_id: str, artifact_path: str = "model") -> int:
    """Create a model version of ``name`` from the model the run logged at ``artifact_path``
    (:func:`log_keras_model`); its number."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(
            name, description="femo's facial emotion classifiers (jobs/train.py)"
        )
    artifact_uri = client.get_run(run_id).info.artifact_uri
    version = client.create_model_version(
        name, f"{artifact_uri}/{artifact_path}", run_id=run_id, await_creation_for=60
    )
    return int(version.version)


def alias_version(client: MlflowClient, name: str, alias: str) -> int | None:
    """The version of ``name`` that ``alias`` points at, None when none does."""
    from mlflow.exceptions import MlflowException

    try:
        return int(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None
