"""spark-submit.sh against a real Spark standalone cluster (master + worker on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .submit import job_lines, submit

pytestmark = pytest.mark.cluster


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def master_state(ui_port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=5) as response:
        return json.load(response)


def wait_for(check, what: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(1)
    raise TimeoutError(f"{what} not up after {seconds}s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a daemon and everything it started (executors), whatever state it is in."""
    if process.poll() is not None:
        return
    for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, Path]]:
    """A standalone master and one worker (2 cores); stopped whatever happens."""
    base = tmp_path_factory.mktemp("standalone")
    home = spark_home()
    env = {
        **os.environ,
        "SPARK_HOME": str(home),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOG_DIR": str(base),
        "SPARK_WORKER_DIR": str(base / "work"),
    }
    port, ui = free_port(), free_port()
    url = f"spark://127.0.0.1:{port}"
    daemons: list[subprocess.Popen[bytes]] = []

    def start(*args: str, log: str) -> None:
        daemons.append(
            subprocess.Popen(
                [str(home / "bin" / "spark-class"), *args],
                env=env,
                stdout=(base / log).open("wb"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    try:
        start(
            "org.apache.spark.deploy.master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--webui-port",
            str(ui),
            log="master.log",
        )
        wait_for(lambda: master_state(ui)["status"] == "ALIVE", "master")
        start(
            "org.apache.spark.deploy.worker.Worker",
            url,
            "--host",
            "127.0.0.1",
            "--cores",
            "2",
            "--memory",
            "3g",
            "--webui-port",
            str(free_port()),
            "--work-dir",
            str(base / "work"),
            log="worker.log",
        )
        wait_for(lambda: master_state(ui)["aliveworkers"] == 1, "worker")
        yield url, ui, base / "work"
    finally:
        for daemon in reversed(daemons):
            stop(daemon)


def test_bootstrap_and_query_on_a_standalone_cluster(
    cluster: tuple[str, int, Path], tmp_path: Path
) -> None:
    url, ui, workdir = cluster
    init = submit("--master", url, "jobs/init_catalog.py", home=tmp_path)
    assert init.returncode == 0, init.stdout + init.stderr
    assert job_lines(init)[-1].endswith("rows emotions 8, sources 7")

    query = submit(
        "--master",
        url,
        "jobs/query.py",
        "--format",
        "json",
        "--sql",
        "SELECT count(*) AS n, sum(emotion_id) AS total, "
        "count_if(array_contains(synonyms, 'joy')) AS joy FROM emotions",
        home=tmp_path,
    )
    assert query.returncode == 0, query.stdout + query.stderr
    assert [json.loads(line) for line in job_lines(query)] == [{"n": 8, "total": 28, "joy": 1}]

    # Both ran as applications of this master, with executors started by its worker.
    finished = master_state(ui)["completedapps"]
    assert [app["name"] for app in finished] == ["femo", "femo"]
    executor_logs = sorted(workdir.glob("app-*/*/stderr"))
    assert {log.parent.parent.name for log in executor_logs} == {app["id"] for app in finished}
