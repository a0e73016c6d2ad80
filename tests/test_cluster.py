"""spark-submit.sh against a real Spark standalone cluster on 127.0.0.1: a master and two
workers of one core each, so that two Horovod ranks run in two executors and talk over Gloo."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import SUBMIT_SETTINGS
from .submit import job_lines, submit
from .test_training import write_collection

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
    """A standalone master and two workers of one core each; stopped whatever happens."""
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
        for worker in ("worker-1", "worker-2"):
            start(
                "org.apache.spark.deploy.worker.Worker",
                url,
                "--host",
                "127.0.0.1",
                "--cores",
                "1",
                "--memory",
                "3g",
                "--webui-port",
                str(free_port()),
                "--work-dir",
                str(base / "work"),
                log=f"{worker}.log",
            )
        wait_for(lambda: master_state(ui)["aliveworkers"] == 2, "workers")
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


def test_training_runs_two_horovod_ranks_in_two_executors(
    cluster: tuple[str, int, Path], tmp_path: Path
) -> None:
    """The data jobs build a small training set locally; jobs/train.py is submitted to the
    cluster, whose two one-core executors each hold one rank (Gloo between them)."""
    url, ui, workdir = cluster
    home = tmp_path / "home"
    write_collection(tmp_path / "fer")
    # the data jobs in one local driver: what they do is proved elsewhere, one JVM start each
    # would add a minute here
    data = submit(
        "tests/jobs_in_one_driver.py",
        *SUBMIT_SETTINGS,
        "--set",
        "faces.policies.fer_train=whole_image",
        *("jobs/ingest_images.py", "--source", "fer_train", "--path", str(tmp_path / "fer")),
        *("+", "jobs/detect_faces.py", "--source", "fer_train"),
        *("+", "jobs/build_training_set.py", "--source", "fer_train"),
        home=home,
    )
    assert data.returncode == 0, data.stdout + data.stderr
    assert job_lines(data)[-1].startswith("training set ")
    train = submit(
        "--master",
        url,
        "jobs/train.py",
        "--model",
        "dense",
        "--epochs",
        "1",
        "--num-proc",
        "2",
        "--set",
        "training.batch_size=8",
        home=home,
        timeout=600,
    )
    assert train.returncode == 0, train.stdout + train.stderr
    assert job_lines(train)[-1].startswith("trained dense on set ")
    assert " with 2 rank(s): 1 epochs in " in job_lines(train)[-1]
    # each rank ran in its own executor's folder: <work>/<app>/<executor>
    places = re.findall(r"rank (\d) ran on \S+ pid \d+ in (\S+)", train.stdout + train.stderr)
    assert sorted(rank for rank, _ in places) == ["0", "1"]
    folders = {Path(folder) for _, folder in places}
    assert len(folders) == 2
    assert len({f.parent for f in folders}) == 1  # one application
    assert next(iter(folders)).parent.parent == workdir
