"""Two real processes on one shared metastore (the Hive metastore service that
docs/sql-server.md runs from pyspark's jars): while one run holds the lease of a job and
source, a second run of that job on that source stops at once with one line naming the holder
and writes nothing; when the holder is killed, the next run takes the lease over and does the
work, once."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from femo.ingest.sample import write_images

from .submit import ROOT, job_environ, submit

pytestmark = pytest.mark.submit


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the metastore service exited: {log.read_text()[-3000:]}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(1)
    pytest.fail(f"the metastore service did not listen within {seconds} s")


@dataclass(frozen=True)
class Shared:
    """A femo home whose jobs share the metastore service at ``uri``."""

    home: Path
    uri: str

    def settings(self) -> tuple[str, ...]:
        return (
            "--set",
            "spark.master=local[1]",
            "--set",
            "spark.show_progress=false",
            "--set",
            f"catalog.metastore_uri={self.uri}",
        )


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    """A Hive metastore service on a fresh Derby database, and the catalog made through it."""
    import pyspark

    root = tmp_path_factory.mktemp("shared-metastore")
    port = free_port()
    log = root / "metastore.log"
    spark_home = Path(pyspark.__file__).parent
    env = {
        **os.environ,
        "SPARK_JAVA_OPTS": f"-Dderby.system.home={root}",
        "SPARK_HOME": str(spark_home),
    }
    db = f"jdbc:derby:;databaseName={root}/metastore_db;create=true"
    service = subprocess.Popen(
        [
            str(spark_home / "bin" / "spark-class"),
            "org.apache.hadoop.hive.metastore.HiveMetaStore",
            "-p",
            str(port),
            *("--hiveconf", "hive.async.log.enabled=false"),
            *("--hiveconf", f"javax.jdo.option.ConnectionURL={db}"),
            *("--hiveconf", "hive.metastore.schema.verification=false"),
            *("--hiveconf", "datanucleus.schema.autoCreateAll=true"),
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    try:
        wait_for_port(port, service, log, 180)
        here = Shared(root / "home", f"thrift://127.0.0.1:{port}")
        init = submit("jobs/init_catalog.py", *here.settings(), home=here.home)
        assert init.returncode == 0, init.stdout + init.stderr
        yield here
    finally:
        os.killpg(service.pid, signal.SIGTERM)
        service.wait(timeout=60)


HOLDER = textwrap.dedent(
    """
    import sys
    from femo.platform.cli import base_parser, settings_from_args
    from femo.platform.leases import held
    from femo.platform.session import build_session

    settings = settings_from_args(base_parser("hold a lease").parse_args(sys.argv[1:]))
    spark = build_session(settings)
    with held(spark, settings, "ingest_images", ["held"]):
        print("holding", flush=True)
        sys.stdin.readline()
    """
)


def images_of(shared: Shared, source: str) -> list[str]:
    """The origins of ``source``'s rows in femo.images, read straight from the Delta table."""
    from deltalake import DeltaTable

    table = DeltaTable(str(shared.home / "warehouse" / "femo.db" / "images"))
    rows = table.to_pyarrow_table(columns=["origin"], filters=[("source", "=", source)])
    return sorted(rows.column("origin").to_pylist())


def test_a_second_run_stops_while_another_process_holds_the_lease(
    shared: Shared, tmp_path: Path
) -> None:
    good, _ = write_images(tmp_path / "images", per_class=1)
    ingest = ("jobs/ingest_images.py", "--source", "held", "--path", str(tmp_path / "images"))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, *shared.settings()],
        cwd=ROOT,
        env=job_environ(shared.home, PYTHONPATH=str(ROOT)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
        second = submit(*ingest, *shared.settings(), home=shared.home)
        assert second.returncode == 1, second.stdout + second.stderr
        said = (second.stdout + second.stderr).splitlines()  # spark-submit merges the driver's
        errors = [line for line in said if line.startswith("error: ")]
        assert len(errors) == 1, said
        assert errors[0].startswith(
            f"error: ingest_images is already running for source held: pid {holder.pid} on "
            f"{socket.gethostname()}, Spark application local-"
        )
        assert ", since 20" in errors[0]
        assert images_of(shared, "held") == []  # it wrote nothing

        holder.kill()  # dies holding the lease
        holder.wait(timeout=60)
        third = submit(*ingest, *shared.settings(), home=shared.home)
        assert third.returncode == 0, third.stdout + third.stderr
        assert (
            f"taking over the lease ingest_images/held of pid {holder.pid}"
            in third.stdout + third.stderr
        )
        origins = images_of(shared, "held")
        assert len(origins) == good and len(set(origins)) == good
    finally:
        holder.kill()
        holder.wait(timeout=60)


def test_two_ingests_at_once_write_every_file_once(shared: Shared, tmp_path: Path) -> None:
    good, _ = write_images(tmp_path / "images", per_class=4)
    ingest = ("jobs/ingest_images.py", "--source", "race", "--path", str(tmp_path / "images"))
    runs = [
        subprocess.Popen(
            [str(ROOT / "spark-submit.sh"), *ingest, *shared.settings()],
            cwd=ROOT,
            env=job_environ(shared.home),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outcomes = [(run.wait(timeout=600), *run.communicate()) for run in runs]
    codes = sorted(code for code, _, _ in outcomes)
    # both ran (one after the other), or one found the other holding the lease
    assert codes in ([0, 0], [0, 1]), outcomes
    for code, out, err in outcomes:
        if code == 1:
            assert "error: ingest_images is already running for source race: pid " in out + err
    origins = images_of(shared, "race")
    assert len(origins) == good and len(set(origins)) == good
