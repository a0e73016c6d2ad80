"""The model that ships with femo: a fresh clone predicts without training.

``femo/ml/models/`` holds one Keras 2 H5 model (the network rescales its own 0-255 pixels),
``<name>.json`` (its classes as emotion ids and names, the training set and its Delta versions,
the MLflow run and the test figures) and ``<name>.md``, its model card. :func:`export` writes the
three from a recorded training run; :func:`load` reads them back.

    python -m femo.ml.shipped --run-id <mlflow run id> [--name compact-fer2013]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from femo.platform.errors import EXIT_USAGE, FemoError, MissingPrerequisiteError, exit_code

#: Where shipped models live, inside the package.
MODELS_DIR = Path(__file__).resolve().parent / "models"
#: The model femo ships by default.
DEFAULT_NAME = "compact-fer2013"
#: A shipped model must stay small enough to live in the repository and the wheel.
MAX_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class ShippedModel:
    """A shipped model's files and what its JSON says."""

    name: str
    model_path: Path
    info: dict[str, Any]

    @property
    def classes(self) -> list[int]:
        """Emotion id of each output position."""
        return [int(c) for c in self.info["classes"]]

    @property
    def class_names(self) -> list[str]:
        return [str(n) for n in self.info["class_names"]]

    def keras_model(self) -> Any:
        """The network (TensorFlow is imported here), compiled for inference only."""
        import tensorflow as tf

        return tf.keras.models.load_model(str(self.model_path), compile=False)


def load(name: str = DEFAULT_NAME, folder: Path = MODELS_DIR) -> ShippedModel:
    """The shipped model ``name``.

    Raises:
        MissingPrerequisiteError: it is not there (one line naming the folder).
    """
    model_path, info_path = folder / f"{name}.h5", folder / f"{name}.json"
    if not model_path.is_file() or not info_path.is_file():
        raise MissingPrerequisiteError(f"no shipped model {name!r} in {folder}")
    return ShippedModel(name, model_path, json.loads(info_path.read_text()))


def card(info: dict[str, Any]) -> str:
    """The model card (Markdown) of a shipped model's JSON."""
    test = info["test"]
    lines = [
        f"# {info['name']}: {info['architecture']} on {info['dataset']}",
        "",
        f"A {info['architecture']} network ({info['parameters']:,} weights, `femo/ml/zoo.py`) "
        "for 48x48 grayscale face crops with pixels 0-255 (it rescales them itself), output: "
        "softmax over "
        + ", ".join(f"{n} ({c})" for c, n in zip(info["classes"], info["class_names"], strict=True))
        + ".",
        "",
        "## How it was trained",
        "",
        f"    {info['command']}",
        "",
        f"- training set `{info['set_id']}`: "
        + ", ".join(f"{v:,} {k}" for k, v in sorted(info["split_counts"].items()))
        + "; left out of train and validation: "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(info["excluded"].items()) if v),
        "- built from Delta versions "
        + ", ".join(f"{t} v{v}" for t, v in sorted(info["table_versions"].items()))
        + f" (training_examples v{info['training_examples_version']}): rebuild with "
        f"`jobs/build_training_set.py --rebuild {info['set_id']}`",
        f"- {info['epochs']} epochs ({info['stopped_by']}), best epoch {info['best_epoch']}, "
        f"{info['train_minutes']:.1f} min on {info['ranks']} rank(s), {info['machine']}",
        f"- MLflow run `{info['mlflow_run_id']}`",
        "",
        f"## Test split ({test['examples']:,} images)",
        "",
        f"Accuracy **{test['accuracy']:.2%}**, macro-F1 {test['macro_f1']:.3f}; averaging each "
        f"picture with its mirror image (test-time augmentation): "
        f"{info['test_accuracy_flip']:.2%}.",
        "",
        "| emotion | precision | recall | F1 | images |",
        "|---|---|---|---|---|",
    ]
    for emotion, figures in test["per_class"].items():
        lines.append(
            f"| {emotion} | {figures['precision']:.3f} | {figures['recall']:.3f} | "
            f"{figures['f1']:.3f} | {figures['support']:,} |"
        )
    lines += [
        "",
        "## Limits",
        "",
        "FER-2013's faces are small, grayscale, mostly frontal web images labelled by one "
        "annotator each; about one label in ten is disputed in later relabellings (FER+). "
        "Expect lower figures on other populations, poses and lighting, and do not use it to "
        "make decisions about people.",
        "",
    ]
    return "\n".join(lines)


def export(
    run_id: str,
    warehouse_db: Path,
    runs_dir: Path,
    mlflow_client: Any,
    *,
    name: str = DEFAULT_NAME,
    command: str,
    machine: str,
    folder: Path = MODELS_DIR,
) -> ShippedModel:
    """Write model, JSON and card of recorded training run ``run_id`` into ``folder``."""
    from deltalake import DeltaTable

    def one(table: str, key: str, value: str) -> dict[str, Any]:
        rows = (
            DeltaTable(str(warehouse_db / table))
            .to_pyarrow_table(filters=[(key, "=", value)])
            .to_pylist()
        )
        if not rows:
            raise FemoError(f"no {table} row with {key} = {value}")
        return dict(rows[0])

    run = one("training_runs", "run_id", run_id)
    chosen = one("training_sets", "set_id", run["set_id"])
    tags = mlflow_client.get_run(run_id).data.tags
    evaluation = json.loads(
        Path(mlflow_client.download_artifacts(run_id, "evaluation.json")).read_text()
    )
    model_file = runs_dir / tags["femo.run_key"] / "model.h5"
    if model_file.stat().st_size > MAX_BYTES:
        raise FemoError(f"{model_file} is {model_file.stat().st_size:,} bytes, over {MAX_BYTES:,}")
    names = list(evaluation["test"]["per_class"])
    info = {
        "name": name,
        "architecture": run["architecture"],
        "parameters": int(run["parameters"]),
        "dataset": "FER-2013",
        "classes": [int(c) for c in chosen["classes"]],
        "class_names": names,
        "command": command,
        "machine": machine,
        "set_id": run["set_id"],
        "split_counts": {k: int(v) for k, v in chosen["split_counts"]},
        "excluded": {k: int(v) for k, v in chosen["excluded"]},
        "table_versions": {k: int(v) for k, v in chosen["table_versions"]},
        "training_examples_version": int(run["training_examples_version"]),
        "epochs": int(run["epochs"]),
        "best_epoch": int(run["best_epoch"]),
        "stopped_by": run["stopped_by"],
        "train_minutes": float(run["train_seconds"]) / 60,
        "ranks": int(run["ranks"]),
        "mlflow_run_id": run_id,
        "test": evaluation["test"],
        "test_accuracy_flip": evaluation["test_accuracy_flip"],
    }
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model_file, folder / f"{name}.h5")
    (folder / f"{name}.json").write_text(json.dumps(info, indent=1) + "\n")
    (folder / f"{name}.md").write_text(card(info))
    return load(name, folder)


def main(argv: list[str] | None = None) -> int:
    """``python -m femo.ml.shipped --run-id ID``: ship a recorded run's model."""
    from femo.ml.tracking import open_store
    from femo.platform.settings import CONF_ENV, load_settings

    parser = argparse.ArgumentParser(description="Ship a recorded training run's model.")
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--name", default=DEFAULT_NAME)
    parser.add_argument("--command", required=True, help="the command that trained it")
    parser.add_argument("--machine", default="2 cores, no GPU", help="where it trained")
    args = parser.parse_args(argv)
    settings = load_settings(os.environ.get(CONF_ENV), environ=os.environ)
    try:
        client, _ = open_store(settings)
        shipped = export(
            args.run_id,
            Path(settings.warehouse_dir) / f"{settings.catalog.database}.db",
            Path(settings.runs_dir),
            client,
            name=args.name,
            command=args.command,
            machine=args.machine,
        )
    except FemoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_code(exc) or EXIT_USAGE
    print(f"shipped {shipped.name}: {shipped.model_path} ({shipped.model_path.stat().st_size:,} B)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
