"""Notebooks run top to bottom against a warehouse that jobs wrote."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from .conftest import SubmittedHome
from .submit import ROOT, SHORT_DRIVER_OPTS

#: Each notebook runs in its own kernel, with its own JVM, after jobs run through spark-submit.
pytestmark = pytest.mark.submit


def execute(name: str, home: Path) -> dict[int, str]:
    """Run ``notebooks/<name>`` with ``home`` as FEMO_HOME; the text output of each code cell
    by cell index. A cell that raises fails the test (nbclient raises CellExecutionError)."""
    notebook = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    env_before = dict(os.environ)
    os.environ.update(
        {
            "FEMO_HOME": str(home),
            "FEMO_CONF": str(ROOT / "conf" / "local.yaml"),
            "PYSPARK_PYTHON": sys.executable,
            "SPARK_SUBMIT_OPTS": os.environ.get("SPARK_SUBMIT_OPTS", SHORT_DRIVER_OPTS),
        }
    )
    try:
        NotebookClient(
            notebook,
            timeout=300,
            kernel_name="python3",
            resources={"metadata": {"path": str(ROOT / "notebooks")}},
        ).execute()
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    return {
        i: "".join(
            o.get("data", {}).get("text/plain", "") + o.get("text", "")
            for o in cell.get("outputs", [])
        )
        for i, cell in enumerate(notebook.cells)
        if cell.cell_type == "code"
    }


@pytest.fixture(scope="module")
def home(submitted_home: SubmittedHome) -> Path:
    """The session's home that jobs built through spark-submit (catalog, views and the generated
    sample): both notebooks read it."""
    return submitted_home.home


def test_quickstart_sees_the_tables_jobs_created(home: Path) -> None:
    outputs = execute("quickstart.ipynb", home)
    assert f"warehouse: {home}/warehouse" in outputs[1]
    assert "emotions" in outputs[3] and "sources" in outputs[3]
    names = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "contempt"]
    positions = [outputs[5].find(f" {name} ") for name in names]
    assert -1 not in positions and positions == sorted(positions)
    assert "negative" in outputs[6] and "5" in outputs[6]


def test_eda_notebook_explores_an_ingested_collection(home: Path) -> None:
    outputs = execute("eda.ipynb", home)
    text = "\n".join(outputs.values())
    cells = nbformat.read(ROOT / "notebooks" / "eda.ipynb", as_version=4).cells
    by_source = {c.source.splitlines()[0]: outputs.get(i, "") for i, c in enumerate(cells)}
    balance = by_source["balance = run_sql(spark, 'insights/class_balance_by_split').toPandas()"]
    # The generated sample, write_images(per_class=4): 8 happy and 5 sad train images, 2 test
    # images per emotion (columns: index, source, split, label_id, emotion, images, share).
    rows = [line.split() for line in balance.splitlines()[1:]]
    counts = {(r[2], r[4]): int(r[5]) for r in rows if len(r) >= 6 and r[1] == "sample"}
    assert counts[("train", "happy")] == 8 and counts[("train", "sad")] == 5
    assert counts[("test", "angry")] == 2 and len(counts) == 14
    assert "insights/quality_by_emotion" in text and "insights/label_conflicts" in text
    assert "unknown_label" in text  # quarantine by reason
