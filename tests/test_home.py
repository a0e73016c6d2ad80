"""femo.platform.home: one process at a time on a home with the embedded metastore.

Before the claim, a second job on a busy home failed after a long wait in Derby's stack traces
(``XSDB6: Another instance of Derby may have already booted the database``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from femo.platform.errors import MissingPrerequisiteError
from femo.platform.home import claim_home, lock_path
from femo.platform.settings import Settings

from .conftest import LOCAL_CONF, ROOT, make_settings
from .submit import clean_environ

HOLD = """
import sys, time
from femo.platform.home import claim_home
from femo.platform.settings import load_settings
claim_home(load_settings(sys.argv[1], environ={"FEMO_HOME": sys.argv[2]}), job="holder-job")
print("claimed", flush=True)
time.sleep(120)
"""


def python_env(**env: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return clean_environ(PYTHONPATH=path, **env)


def test_a_second_process_is_refused_naming_the_holder(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(LOCAL_CONF), str(tmp_path)],
        env=python_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "claimed"
        settings = make_settings(tmp_path)
        with pytest.raises(MissingPrerequisiteError) as refused:
            claim_home(settings)
        message = str(refused.value)
        assert "\n" not in message
        assert f"holder-job (pid {holder.pid}) since " in message
        assert "catalog.metastore_uri" in message and "docs/sql-server.md" in message
        record = json.loads(lock_path(settings).read_text(encoding="utf-8"))
        assert record["pid"] == holder.pid
    finally:
        holder.kill()
        holder.wait()
    # The kernel let the lock go with the killed holder: no stale claim to clean up.
    claim_home(make_settings(tmp_path))
    claim_home(make_settings(tmp_path))  # claiming again in the same process is fine
    record = json.loads(lock_path(make_settings(tmp_path)).read_text(encoding="utf-8"))
    assert record["pid"] == os.getpid()


def test_a_shared_metastore_claims_nothing(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "catalog.metastore_uri=thrift://127.0.0.1:9083")
    claim_home(settings)
    assert not lock_path(settings).exists()


def test_a_job_on_the_home_of_a_running_session_stops_at_once(
    spark: object, settings: Settings
) -> None:
    # The shared test session holds its home: a job started on it must not wait for Derby.
    environ = python_env(FEMO_HOME=settings.home, FEMO_CONF=str(LOCAL_CONF))
    result = subprocess.run(
        [sys.executable, str(ROOT / "jobs" / "init_catalog.py")],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, result.stderr
    assert f"(pid {os.getpid()}) since " in errors[0]
    assert "docs/sql-server.md" in errors[0]
    # One line and no Derby or Spark start-up output: the claim came before any JVM.
    assert "XSDB6" not in result.stderr
