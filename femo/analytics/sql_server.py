"""Spark's Thrift server (HiveServer2 protocol) over the femo catalog, for JDBC/ODBC clients.

``scripts/sql-server.sh start|stop|status`` (``make sql-server``) starts
``org.apache.spark.sql.hive.thriftserver.HiveThriftServer2`` through ``spark-submit`` with the
same properties every job gets from :func:`femo.platform.session.spark_conf` (Delta, Hive catalog,
warehouse, metastore), plus the bind address and port of ``settings.sql_server``. This module
derives that command line and where the server keeps its pid file and log:

``python -m femo.analytics.sql_server args [--log4j FILE] [--conf F] [--set k=v ...]``
    the ``spark-submit`` arguments, NUL-separated;
``python -m femo.analytics.sql_server paths [--conf F] [--set k=v ...]``
    shell assignments (``pid_file=...``, ``log_file=...``, ``host=...``, ``port=...``,
    ``url=...``, ``metastore=...``) for the script to ``eval``.

An embedded Derby metastore admits one JVM at a time: :mod:`femo.platform.home` lets a job say
so clearly when the server holds it, instead of failing with Derby's stack traces.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from femo.platform.errors import EXIT_USAGE, FemoError, exit_code
from femo.platform.home import THRIFT_SERVER_CLASS, pid_file
from femo.platform.session import spark_conf, spark_environment
from femo.platform.settings import Settings, is_uri
from femo.platform.submit import submit_args

#: spark-submit's primary resource for a class already on Spark's classpath.
INTERNAL_RESOURCE = "spark-internal"


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

    The job options of :func:`femo.platform.submit.submit_args`, then:

    - the Delta jars also on the driver's class path (``--driver-class-path``): the server opens
      each JDBC session with Hive's class loader, which does not see ``--jars``, and fails with
      ``ClassNotFoundException: ...DeltaCatalog`` without it;
    - ``--class`` HiveThriftServer2 with the bind host, port, authentication and
      ``sql_server.hiveconf`` as ``--hiveconf`` pairs (a non-loopback host without
      authentication never gets here: the settings refuse it).
    """
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
        "--hiveconf",
        f"hive.server2.authentication={settings.sql_server.authentication}",
    ]
    for key, value in sorted(settings.sql_server.hiveconf.items()):
        args += ["--hiveconf", f"{key}={value}"]
    return args


def shell_assignments(settings: Settings) -> str:
    """``name=value`` lines, shell-quoted, for ``scripts/sql-server.sh`` to ``eval``."""
    values = {
        "pid_file": str(pid_file(settings)),
        "log_file": str(log_file(settings)),
        "host": settings.sql_server.host,
        "port": str(settings.sql_server.port),
        "url": jdbc_url(settings),
        "metastore": settings.catalog.metastore_uri or f"derby:{settings.metastore_dir}",
        "local_ip": spark_environment(settings).get("SPARK_LOCAL_IP", ""),
    }
    return "".join(f"{k}={shlex.quote(v)}\n" for k, v in values.items())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for ``scripts/sql-server.sh``."""
    from femo.platform.cli import base_parser, settings_from_args

    parser = base_parser(
        "Derive the Thrift server's spark-submit arguments or paths from femo's settings.",
        prog="python -m femo.analytics.sql_server",
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
        return exit_code(exc) or EXIT_USAGE
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
