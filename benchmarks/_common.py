"""What the benchmarks share: settings for a throw-away femo home, the session and catalog, and
ingesting a folder collection as one source."""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from femo.ingest.run import IngestSummary, ingest, inspect_options
from femo.platform.catalog import init_catalog
from femo.platform.session import build_session
from femo.platform.settings import Settings, load_settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

ROOT = Path(__file__).resolve().parents[1]


def bench_settings(home: Path, cores: int, overrides: Sequence[str] = ()) -> Settings:
    """``conf/local.yaml`` on ``local[cores]``, no progress bar nor UI, femo's home at ``home``."""
    return load_settings(
        ROOT / "conf" / "local.yaml",
        [
            f"spark.master=local[{cores}]",
            "spark.show_progress=false",
            "spark.conf.spark.ui.enabled=false",
            *overrides,
        ],
        environ={"FEMO_HOME": str(home)},
    )


def start(settings: Settings) -> SparkSession:
    """A session (Python workers import this checkout's ``femo``) with the catalog created."""
    os.environ["PYTHONPATH"] = str(ROOT)
    spark = build_session(settings)
    init_catalog(spark, settings)
    return spark


def ingest_folders(
    spark: SparkSession, settings: Settings, source: str, root: Path
) -> IngestSummary:
    """Ingest the folder collection under ``root`` as ``source`` (labels from its folders)."""
    return ingest(
        spark,
        "femo",
        source,
        str(root),
        "folders",
        lambda: inspect_options(spark, "femo", str(root), "path", settings.ingest),
        settings.ingest,
        uuid.uuid4().hex,
    )


def newest_training_set(database: Path) -> dict[str, Any]:
    """The newest row of ``training_sets`` in the database folder ``database`` (delta-rs)."""
    from deltalake import DeltaTable

    rows = DeltaTable(str(database / "training_sets")).to_pyarrow_table().to_pylist()
    if not rows:
        raise SystemExit(f"no training set under {database}: run jobs/build_training_set.py")
    return dict(max(rows, key=lambda r: r["created_at"]))
