"""An ingest killed half way (SIGKILL, no clean-up) and re-run ends with every file once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from femo.ingest.sample import write_sample

from .submit import ROOT, job_lines, submit

pytestmark = pytest.mark.submit


def test_killed_ingest_rerun_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    sample = write_sample(tmp_path / "data", per_class=12)
    files = sum(1 for p in sample.images.rglob("*") if p.is_file())
    home = tmp_path / "home"
    assert submit("jobs/init_catalog.py", home=home).returncode == 0

    env = {k: v for k, v in os.environ.items() if not k.startswith("FEMO_")}
    env.update(FEMO_HOME=str(home), FEMO_CONF=str(ROOT / "conf" / "local.yaml"))
    args = ["jobs/ingest_images.py", "--source", "kill", "--path", str(sample.images)]
    victim = subprocess.Popen(
        [str(ROOT / "spark-submit.sh"), *args],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(25)  # past JVM start and the listing: somewhere in reading or committing
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(30)

    rerun = submit(*args, home=home)
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
    counts = submit(
        "jobs/query.py",
        "--format",
        "json",
        "--sql",
        "SELECT (SELECT count(*) FROM images WHERE source = 'kill') AS images, "
        "(SELECT count(DISTINCT path) FROM images WHERE source = 'kill') AS image_paths, "
        "(SELECT count(*) FROM quarantine WHERE source = 'kill') AS quarantined, "
        "(SELECT count(DISTINCT path) FROM quarantine WHERE source = 'kill') AS quarantine_paths",
        home=home,
    )
    got = json.loads(job_lines(counts)[-1])
    assert got == {
        "images": sample.good_files,
        "image_paths": sample.good_files,
        "quarantined": files - sample.good_files,
        "quarantine_paths": files - sample.good_files,
    }
