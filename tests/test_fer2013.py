"""The real FER-2013 copy: every file accounted for, counts as published. Runs when
FEMO_DATA_DIR holds fer2013/ (CI sets it); skipped otherwise. The jobs run in process on the
shared session (the end-to-end submit of an ingest is test_ingest_kill's)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from pyspark.sql import SparkSession

from femo.platform.settings import Settings
from jobs.eda_report import EdaReport
from jobs.ingest_images import IngestImages
from jobs.query import Query

from .conftest import own_database, run_job
from .test_report import section_table

pytestmark = pytest.mark.realdata

DATA = Path(os.environ.get("FEMO_DATA_DIR", "/nonexistent")) / "fer2013"

#: ../shared/datasets/README.md: images per emotion (FER-2013 id) and split.
PUBLISHED = {
    ("angry", "train"): 3995, ("angry", "test"): 958,
    ("disgust", "train"): 436, ("disgust", "test"): 111,
    ("fear", "train"): 4097, ("fear", "test"): 1024,
    ("happy", "train"): 7215, ("happy", "test"): 1774,
    ("sad", "train"): 4830, ("sad", "test"): 1247,
    ("surprise", "train"): 3171, ("surprise", "test"): 831,
    ("neutral", "train"): 4965, ("neutral", "test"): 1233,
}  # fmt: skip


@pytest.fixture
def fer_settings(spark: SparkSession, catalog: Settings) -> Iterator[Settings]:
    """A database of its own in the shared session: the other tests' sources never show here."""
    with own_database(spark, catalog, "femo_fer2013") as own:
        yield own


def csv_rows(spark: SparkSession, settings: Settings, *argv: str) -> list[list[str]]:
    """``jobs/query.py --format csv ARGV``: the data rows, split."""
    out = run_job(Query, spark, settings, "--format", "csv", *argv)
    return [line.split(",") for line in out.splitlines()[1:]]


@pytest.mark.skipif(not (DATA / "train").is_dir(), reason="FEMO_DATA_DIR has no fer2013/")
def test_fer2013_ingest_accounts_for_every_file(
    spark: SparkSession, fer_settings: Settings, tmp_path: Path
) -> None:
    files = sum(1 for p in DATA.rglob("*") if p.is_file())
    assert files == 35_887
    ingest = ("--source", "fer2013", "--path", str(DATA))
    first = run_job(IngestImages, spark, fer_settings, *ingest)
    assert first.splitlines()[-1] == (
        "fer2013: accepted 35887, quarantined 0, skipped 0 already ingested"
    )
    counts = csv_rows(
        spark,
        fer_settings,
        "--file",
        "sql/insights/images_per_emotion_and_split.sql",
        "--param",
        "source=fer2013",
    )
    assert {(emotion, split): int(n) for emotion, _, split, n in counts} == PUBLISHED
    accounted = csv_rows(
        spark,
        fer_settings,
        "--sql",
        "SELECT (SELECT count(*) FROM images) + (SELECT count(*) FROM quarantine) AS n",
    )
    assert accounted == [[str(files)]]
    # Identical bytes under different labels are kept and findable with one query.
    conflicts = run_job(
        Query,
        spark,
        fer_settings,
        "--format",
        "json",
        "--file",
        "sql/insights/label_conflicts.sql",
    )
    assert len(conflicts.splitlines()) > 0
    again = run_job(IngestImages, spark, fer_settings, *ingest)
    assert again.splitlines()[-1] == (
        "fer2013: accepted 0, quarantined 0, skipped 35887 already ingested"
    )
    # The EDA report's class balance is the published table.
    page = tmp_path / "eda.html"
    run_job(EdaReport, spark, fer_settings, "--output", str(page))
    balance = section_table(
        BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser"),
        "Class balance per source and split",
    )
    assert {(r.emotion, r.split): int(r.images) for r in balance.itertuples()} == PUBLISHED
