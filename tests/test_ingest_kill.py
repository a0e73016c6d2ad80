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
    tables = home / "warehouse" / "femo.db"
    commits = tables / "images" / "_delta_log"
    before = set(commits.glob("*.json"))
    victim = subprocess.Popen(
        [str(ROOT / "spark-submit.sh"), *args],
        cwd=ROOT,
        env=job_environ(home),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Kill at a known point, detected rather than timed: right after the images commit, before
    # the quarantine append that follows it (femo.ingest.run's order of commits).
    deadline = time.monotonic() + 300
    while not set(commits.glob("*.json")) - before:
        assert victim.poll() is None, "the ingest ended before its images commit"
        assert time.monotonic() < deadline, "no images commit within 300 s"
        time.sleep(0.02)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(30)

    def rows() -> dict[str, tuple[int, int]]:
        # The tables read by path from the shared session (one JVM start less than a query job).
        got = {}
        for table in ("images", "quarantine"):
            found = spark.read.format("delta").load(str(tables / table)).where("source = 'kill'")
            got[table] = (found.count(), found.select("path").distinct().count())
        return got

    # The kill landed between the two commits: images written, their rejections not.
    assert rows() == {"images": (sample.good_files, sample.good_files), "quarantine": (0, 0)}

    rerun = submit(*args, home=home)
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
    assert rows() == {
        "images": (sample.good_files, sample.good_files),
        "quarantine": (files - sample.good_files, files - sample.good_files),
    }
