"""Spark's Thrift server (HiveServer2 protocol) over the femo catalog, for JDBC/ODBC clients.

``scripts/sql-server.sh start|stop|status`` (``make sql-server``) starts
``org.apache.spark.sql.hive.thriftserver.HiveThriftServer2`` through ``spark-submit`` with the
same properties every job gets from :func:`femo.session.spark_conf` (Delta, Hive catalog,
warehouse, metastore), plus the bind address and port of ``settings.sql_server``. This module
derives that command line and where the server keeps its pid file and log:

``python -m femo.sql_server args [--log4j FILE] [--conf F] [--set k=v ...]``
    the ``spark-submit`` arguments, NUL-separated;
``python -m femo.sql_server paths [--conf F] [--set k=v ...]``
    shell assignments (``pid_file=...``, ``log_file=...``, ``host=...``, ``port=...``,
    ``url=...``, ``metastore=...``) for the script to ``eval``.

An embedded Derby metastore admits one JVM at a time: :func:`check_metastore_free` lets a job
say so clearly when the server holds it, instead of failing with Derby's stack traces.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from femo.errors import FemoError, MissingPrerequisiteError
from femo.settings import Settings, is_uri

#: The Thrift server's main class (what Spark's sbin/start-thriftserver.sh submits).
THRIFT_SERVER_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"
#: spark-submit's primary resource for a class already on Spark's classpath.
INTERNAL_RESOURCE = "spark-internal"


def run_dir(settings: Settings) -> Path:
    """Where the pid file lives: ``<home>/run``, or ``~/.femo/run`` when home is a URI."""
    home = Path("~/.femo").expanduser() if is_uri(settings.home) else Path(settings.home)
    return home / "run"


def pid_file(settings: Settings) -> Path:
    """The server's pid file."""
    return run_dir(settings) / "sql-server.pid"


def log_file(settings: Settings) -> Path:
    """The server's log (stdout and stderr of spark-submit)."""
    home = Path("~/.femo").expanduser() if is_uri(settings.home) else Path(settings.home)
    return home / "logs" / "sql-server.log"


def jdbc_url(settings: Settings) -> str:
    """The JDBC URL a client on this machine connects to (the femo database selected)."""
    host = settings.sql_server.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"jdbc:hive2://{host}:{settings.sql_server.port}/{settings.catalog.database}"


def server_args(settings: Settings, log4j_conf: str | None = None) -> list[str]:
    """``spark-submit`` arguments that start the Thrift server over femo's catalog.

    The job options of :func:`femo.submit.submit_args`, then:

    - the Delta jars also on the driver's class path (``--driver-class-path``): the server opens
      each JDBC session with Hive's class loader, which does not see ``--jars``, and fails with
      ``ClassNotFoundException: ...DeltaCatalog`` without it;
    - ``--class`` HiveThriftServer2 with the bind host and port as ``--hiveconf`` pairs.
    """
    from femo.session import spark_conf
    from femo.submit import submit_args

    conf = spark_conf(settings)
    args = submit_args(settings, log4j_conf)
    class_path = [p for p in conf.get("spark.jars", "").split(",") if p]
    extra = conf.get("spark.driver.extraClassPath")
    if extra:
        class_path.append(extra)
    if class_path:
        args += ["--driver-class-path", os.pathsep.join(class_path)]
    args += [
        "--name",
        f"{settings.spark.app_name} sql-server",
        "--class",
        THRIFT_SERVER_CLASS,
        INTERNAL_RESOURCE,
        "--hiveconf",
        f"hive.server2.thrift.bind.host={settings.sql_server.host}",
        "--hiveconf",
        f"hive.server2.thrift.port={settings.sql_server.port}",
    ]
    return args


def running_pid(settings: Settings) -> int | None:
    """The pid of the femo SQL server of these settings if it is running, else None.

    Reads :func:`pid_file` and checks that the process still runs the Thrift server (a stale
    pid file whose pid was reused does not count).
    """
    try:
        pid = int(pid_file(settings).read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return pid if THRIFT_SERVER_CLASS.encode() in cmdline else None


def check_metastore_free(settings: Settings) -> None:
    """Fail clearly when the femo SQL server holds the embedded Derby metastore of ``settings``.

    Derby lets one JVM open the database; a second one fails after many seconds with pages of
    ``XSDB6: Another instance of Derby may have already booted the database``. Nothing to check
    with a shared metastore (``catalog.metastore_uri``).

    Raises:
        MissingPrerequisiteError: the server of these settings is running.
    """
    if settings.catalog.metastore_uri is not None:
        return
    pid = running_pid(settings)
    if pid is not None:
        raise MissingPrerequisiteError(
            f"the femo SQL server (pid {pid}) holds the embedded Derby metastore under "
            f"{settings.metastore_dir}, which admits one process at a time: "
            "stop it first (make sql-server-stop), run SQL through it (beeline, JDBC), or share "
            "a metastore with catalog.metastore_uri (docs/sql-server.md)"
        )


def shell_assignments(settings: Settings) -> str:
    """``name=value`` lines, shell-quoted, for ``scripts/sql-server.sh`` to ``eval``."""
    values = {
        "pid_file": str(pid_file(settings)),
        "log_file": str(log_file(settings)),
        "host": settings.sql_server.host,
        "port": str(settings.sql_server.port),
        "url": jdbc_url(settings),
        "metastore": settings.catalog.metastore_uri or f"derby:{settings.metastore_dir}",
    }
    return "".join(f"{k}={shlex.quote(v)}\n" for k, v in values.items())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for ``scripts/sql-server.sh``."""
    from femo.cli import base_parser, settings_from_args

    parser = base_parser(
        "Derive the Thrift server's spark-submit arguments or paths from femo's settings.",
        prog="python -m femo.sql_server",
    )
    parser.add_argument("what", choices=("args", "paths"))
    parser.add_argument("--log4j", help="log4j2.properties for the server's driver")
    opts = parser.parse_args(argv)
    try:
        settings = settings_from_args(opts)
        if opts.what == "args":
            sys.stdout.write("\0".join(server_args(settings, opts.log4j)))
        else:
            sys.stdout.write(shell_assignments(settings))
    except FemoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
