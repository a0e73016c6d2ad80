"""JDBC access: scripts/sql-server.sh starts Spark's Thrift server over a real Delta warehouse,
beeline (shipped with pyspark) runs an insight query through it, and the server stops.

The server runs over the session's home that jobs built through spark-submit
(``conftest.submitted_home``), not the shared ``spark`` fixture's: that session holds its own
embedded Derby metastore, and Derby admits one process per metastore.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from femo.analytics.sql_server import server_args, shell_assignments
from femo.platform.errors import MissingPrerequisiteError
from femo.platform.home import THRIFT_SERVER_CLASS, check_metastore_free, pid_file, running_pid
from femo.platform.settings import Settings, SettingsError
from femo.platform.submit import submit_args

from .conftest import SUBMIT_SETTINGS, SubmittedHome, make_settings
from .submit import ROOT, job_environ, job_lines, submit

#: The tests that start the server (the derivation tests below need no JVM).
sqlserver = pytest.mark.sqlserver

#: The server: small and without a web UI (no port clashes with other Spark processes).
SERVER_SETTINGS = (
    *SUBMIT_SETTINGS,
    "--set",
    "spark.driver_memory=1g",
    "--set",
    "spark.conf.spark.ui.enabled=false",
)
SCRIPT = ROOT / "scripts" / "sql-server.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def still_the_server(pid: int) -> bool:
    try:
        return b"HiveThriftServer2" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def environ(home: Path) -> dict[str, str]:
    return job_environ(home, SPARK_HOME=str(spark_home()))


@dataclass(frozen=True)
class Server:
    home: Path
    port: int
    settings: tuple[str, ...]
    bad_files: dict[str, str]  # the sample's rejected files and the reason each must get
    good_files: int

    def script(self, command: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(SCRIPT), command, *self.settings],
            cwd=ROOT,
            env=environ(self.home),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def beeline(self, *args: str) -> list[list[str]]:
        """Rows (header first) of what beeline prints in tsv2; fails on a non-zero exit."""
        result = subprocess.run(
            [
                str(spark_home() / "bin" / "beeline"),
                "-u",
                f"jdbc:hive2://127.0.0.1:{self.port}/femo",
                "-n",
                "femo",
                "--silent=true",
                "--outputformat=tsv2",
                *args,
            ],
            cwd=ROOT,
            env=environ(self.home),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return [line.split("\t") for line in result.stdout.splitlines() if line.strip()]

    def pid(self) -> int | None:
        try:
            return int((self.home / "run" / "sql-server.pid").read_text().strip())
        except (OSError, ValueError):
            return None


@pytest.fixture(scope="module")
def server(submitted_home: SubmittedHome) -> Iterator[Server]:
    """The Thrift server over the session's home that jobs built through spark-submit (the
    generated sample ingested as ``sample``); stopped (by the script, else by its pid) whatever
    happens, so the home is free for jobs again."""
    home, good, bad = submitted_home.home, submitted_home.good_files, submitted_home.bad_files
    assert job_lines(submitted_home.ingest)[-1].startswith(
        f"sample: accepted {good}, quarantined {len(bad)}"
    )

    port = free_port()
    server = Server(home, port, (*SERVER_SETTINGS, "--set", f"sql_server.port={port}"), bad, good)
    try:
        started = server.script("start")
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"jdbc:hive2://127.0.0.1:{port}/femo" in started.stdout
        yield server
    finally:
        pid = server.pid()
        try:
            server.script("stop", timeout=120)
        finally:
            if pid is not None and still_the_server(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)


@sqlserver
def test_insight_query_over_delta_through_beeline(server: Server) -> None:
    rows = server.beeline("-f", str(ROOT / "sql" / "insights" / "quarantine_by_reason.sql"))
    assert rows[0] == ["source", "reason", "files", "example"]
    mine = [r for r in rows[1:] if r[0] == "sample"]  # other tests' sources share the home
    assert Counter({r[1]: int(r[2]) for r in mine}) == Counter(server.bad_files.values())
    assert all(r[3] for r in rows[1:])  # every reason comes with an example detail


@sqlserver
def test_views_and_delta_tables_by_name(server: Server) -> None:
    rows = server.beeline(
        "-e",
        "SELECT count(*) AS images, count(DISTINCT source) AS sources FROM images_sample; "
        "DESCRIBE DETAIL images;",
    )
    assert rows[:2] == [["images", "sources"], [str(server.good_files), "1"]]
    detail = dict(zip(rows[2], rows[3], strict=True))
    assert (detail["format"], detail["partitionColumns"]) == ("delta", '["source"]')


@sqlserver
def test_start_again_and_status_see_the_running_server(server: Server) -> None:
    again = server.script("start")
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.startswith(f"sql-server already running (pid {server.pid()})")
    status = server.script("status")
    assert status.returncode == 0 and status.stdout.startswith("sql-server running")


@sqlserver
def test_a_batch_job_says_the_server_holds_the_metastore(server: Server) -> None:
    job = submit(
        "jobs/query.py", *SUBMIT_SETTINGS, "--sql", "SELECT 1", home=server.home, timeout=300
    )
    assert job.returncode == 2, job.stdout + job.stderr
    assert job_lines(job)[-1].startswith(
        f"error: the femo SQL server (pid {server.pid()}) holds the embedded Derby metastore"
    )
    assert "Traceback" not in job.stderr and "XSDB6" not in job.stdout + job.stderr


@sqlserver
def test_stop_closes_the_port_and_frees_the_metastore(server: Server) -> None:
    started = time.monotonic()
    stopped = server.script("stop", timeout=120)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert stopped.stdout.startswith("sql-server stopped")
    assert time.monotonic() - started < 60
    assert not port_open(server.port)
    assert server.pid() is None  # the pid file is gone
    status = server.script("status")
    assert status.returncode == 3 and status.stdout.startswith("sql-server not running")
    assert server.script("stop").stdout.strip() == "sql-server not running"  # idempotent

    job = submit(
        "jobs/query.py",
        *SUBMIT_SETTINGS,
        "--format",
        "json",
        "--sql",
        "SELECT count(*) AS n FROM quarantine WHERE source = 'sample'",
        home=server.home,
    )
    assert job.returncode == 0, job.stdout + job.stderr
    assert [json.loads(line) for line in job_lines(job)] == [{"n": len(server.bad_files)}]


def test_server_gets_the_jobs_arguments_plus_class_bind_and_delta_class_path(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, "sql_server.port=10123", "sql_server.host=127.0.0.1")
    job = submit_args(settings, "/x/log4j2.properties")
    args = server_args(settings, "/x/log4j2.properties")
    assert args[: len(job)] == job  # the very same Spark properties as every job
    rest = args[len(job) :]
    jars = job[job.index("--jars") + 1].split(",")
    assert rest == [
        "--driver-class-path",
        ":".join(jars),
        "--name",
        "femo sql-server",
        "--class",
        THRIFT_SERVER_CLASS,
        "spark-internal",
        "--hiveconf",
        "hive.server2.thrift.bind.host=127.0.0.1",
        "--hiveconf",
        "hive.server2.thrift.port=10123",
        "--hiveconf",
        "hive.server2.authentication=NONE",
    ]
    assert any(j.split("/")[-1].startswith("delta-spark_") for j in jars)
    assert f"pid_file={tmp_path}/run/sql-server.pid\n" in shell_assignments(settings)
    assert "url=jdbc:hive2://127.0.0.1:10123/femo\n" in shell_assignments(settings)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "10.1.2.3", "db.example.org"])
def test_an_unauthenticated_server_beyond_loopback_is_refused(tmp_path: Path, host: str) -> None:
    with pytest.raises(SettingsError, match=r"sql_server.host .* sql_server.authentication"):
        make_settings(tmp_path, f"sql_server.host={host!r}")
    with pytest.raises(SettingsError, match="no password"):
        make_settings(tmp_path, f"sql_server.host={host!r}", "sql_server.authentication=NOSASL")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.1.1", "::1", "localhost"])
def test_loopback_needs_no_authentication(tmp_path: Path, host: str) -> None:
    assert make_settings(tmp_path, f"sql_server.host={host!r}").sql_server.host == host


def test_beyond_loopback_with_authentication_or_a_trusted_network(tmp_path: Path) -> None:
    ldap = make_settings(
        tmp_path,
        "sql_server.host=0.0.0.0",
        "sql_server.authentication=LDAP",
        "sql_server.hiveconf.hive.server2.authentication.ldap.url=ldaps://ldap.example.org",
    )
    assert server_args(ldap)[-5:] == [
        "hive.server2.thrift.port=10000",
        "--hiveconf",
        "hive.server2.authentication=LDAP",
        "--hiveconf",
        "hive.server2.authentication.ldap.url=ldaps://ldap.example.org",
    ]
    trusted = make_settings(tmp_path, "sql_server.host=10.1.2.3", "sql_server.trusted_network=true")
    assert "hive.server2.thrift.bind.host=10.1.2.3" in server_args(trusted)


def test_jobs_refuse_only_while_a_live_server_holds_derby(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    check_metastore_free(settings)  # no pid file
    pid_file(settings).parent.mkdir(parents=True)
    pid_file(settings).write_text(f"{os.getpid()}\n")  # a live process, but not a server
    assert running_pid(settings) is None
    check_metastore_free(settings)

    sleeper = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", THRIFT_SERVER_CLASS]
    )  # looks like one
    try:
        pid_file(settings).write_text(f"{sleeper.pid}\n")
        cmdline = Path(f"/proc/{sleeper.pid}/cmdline")
        deadline = time.monotonic() + 10
        while not cmdline.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.05)  # just after fork, /proc may show an empty command line
        assert running_pid(settings) == sleeper.pid
        with pytest.raises(
            MissingPrerequisiteError, match=f"femo SQL server \\(pid {sleeper.pid}\\)"
        ):
            check_metastore_free(settings)
        shared: Settings = make_settings(tmp_path, "catalog.metastore_uri=thrift://127.0.0.1:9083")
        check_metastore_free(shared)  # a shared metastore has no such limit
    finally:
        sleeper.kill()
        sleeper.wait()
