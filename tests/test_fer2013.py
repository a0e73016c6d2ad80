"""The real FER-2013 copy: every file accounted for, counts as published. Runs when
FEMO_DATA_DIR holds fer2013/ (CI sets it); skipped otherwise."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from .submit import job_lines, submit
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


@pytest.mark.skipif(not (DATA / "train").is_dir(), reason="FEMO_DATA_DIR has no fer2013/")
def test_fer2013_ingest_accounts_for_every_file(tmp_path: Path) -> None:
    files = sum(1 for p in DATA.rglob("*") if p.is_file())
    assert files == 35_887
    first = submit(
        "jobs/ingest_images.py",
        "--source",
        "fer2013",
        "--path",
        str(DATA),
        home=tmp_path,
        timeout=1200,
    )
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert job_lines(first)[-1] == (
        "fer2013: accepted 35887, quarantined 0, skipped 0 already ingested"
    )
    counts = submit(
        "jobs/query.py",
        "--format",
        "csv",
        "--file",
        "sql/insights/images_per_emotion_and_split.sql",
        "--param",
        "source=fer2013",
        home=tmp_path,
    )
    assert counts.returncode == 0, counts.stdout + counts.stderr
    rows = [line.split(",") for line in job_lines(counts)[1:]]
    assert {(emotion, split): int(n) for emotion, _, split, n in rows} == PUBLISHED
    accounted = submit(
        "jobs/query.py",
        "--format",
        "csv",
        "--sql",
        "SELECT (SELECT count(*) FROM images) + (SELECT count(*) FROM quarantine) AS n",
        home=tmp_path,
    )
    assert job_lines(accounted)[-1] == str(files)
    # Identical bytes under different labels are kept and findable with one query.
    conflicts = submit(
        "jobs/query.py",
        "--format",
        "json",
        "--file",
        "sql/insights/label_conflicts.sql",
        home=tmp_path,
    )
    assert conflicts.returncode == 0, conflicts.stdout + conflicts.stderr
    assert len(job_lines(conflicts)) > 0
    again = submit(
        "jobs/ingest_images.py",
        "--source",
        "fer2013",
        "--path",
        str(DATA),
        home=tmp_path,
        timeout=1200,
    )
    assert job_lines(again)[-1] == (
        "fer2013: accepted 0, quarantined 0, skipped 35887 already ingested"
    )
    # The EDA report's class balance is the published table.
    page = tmp_path / "eda.html"
    report = submit("jobs/eda_report.py", "--output", str(page), home=tmp_path)
    assert report.returncode == 0, report.stdout[-3000:] + report.stderr[-3000:]
    balance = section_table(
        BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser"),
        "Class balance per source and split",
    )
    assert {(r.emotion, r.split): int(r.images) for r in balance.itertuples()} == PUBLISHED
    shutil.rmtree(tmp_path / "warehouse", ignore_errors=True)
