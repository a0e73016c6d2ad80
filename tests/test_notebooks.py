"""Notebooks run top to bottom against a warehouse that jobs wrote."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from .submit import ROOT, submit


def test_quickstart_sees_the_tables_jobs_created(tmp_path: Path) -> None:
    init = submit("jobs/init_catalog.py", "--set", "spark.master=local[2]", home=tmp_path)
    assert init.returncode == 0, init.stdout + init.stderr

    notebook = nbformat.read(ROOT / "notebooks" / "quickstart.ipynb", as_version=4)
    env_before = dict(os.environ)
    os.environ.update(
        {
            "FEMO_HOME": str(tmp_path),
            "FEMO_CONF": str(ROOT / "conf" / "local.yaml"),
            "PYSPARK_PYTHON": sys.executable,
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

    outputs = {
        i: "".join(
            o.get("data", {}).get("text/plain", "") + o.get("text", "")
            for o in cell.get("outputs", [])
        )
        for i, cell in enumerate(notebook.cells)
        if cell.cell_type == "code"
    }
    assert f"warehouse: {tmp_path}/warehouse" in outputs[1]
    assert "emotions" in outputs[3] and "sources" in outputs[3]
    names = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "contempt"]
    positions = [outputs[5].find(f" {name} ") for name in names]
    assert -1 not in positions and positions == sorted(positions)
    assert "negative" in outputs[6] and "5" in outputs[6]
