"""An ingest killed half way (SIGKILL, no clean-up) and re-run ends with every file once."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from femo.ingest.sample import write_sample

from .conftest import SubmittedHome
from .submit import ROOT, job_environ, submit

pytestmark = pytest.mark.submit


def test_killed_ingest_rerun_loses_nothing_and_duplicates_nothing(
    spark: SparkSession, submitted_home: SubmittedHome, tmp_path: Path
) -> None:
    sample = write_sample(tmp_path / "data", per_class=12)
    files = sum(1 for p in sample.images.rglob("*") if p.is_file())
    # The session's home that jobs built through spark-submit: its catalog is in place, so the
    # kill lands in the ingest itself; the source `kill` is this test's alone.
    home = submitted_home.home

    args = ["jobs/ingest_images.py", "--source", "kill", "--path", str(sample.images)]
    victim = subprocess.Popen(
        [str(ROOT / "spark-submit.sh"), *args],
        cwd=ROOT,
        env=job_environ(home),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(25)  # past JVM start and the listing: somewhere in reading or committing
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(30)

    rerun = submit(*args, home=home)
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
    # The tables read by path from the shared session (one JVM start less than a query job).
    tables = home / "warehouse" / "femo.db"
    got = {}
    for table in ("images", "quarantine"):
        rows = spark.read.format("delta").load(str(tables / table)).where("source = 'kill'")
        got[table] = (rows.count(), rows.select("path").distinct().count())
    assert got == {
        "images": (sample.good_files, sample.good_files),
        "quarantine": (files - sample.good_files, files - sample.good_files),
    }
