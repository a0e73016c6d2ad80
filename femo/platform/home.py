"""Who holds the femo home: the SQL server's pid file and the lock of the embedded metastore.

With the embedded Derby metastore (no ``catalog.metastore_uri``) one process at a time may use a
femo home: Derby admits one JVM per database, and a second one fails only after many seconds,
with pages of ``XSDB6: Another instance of Derby may have already booted the database``. Every
job claims the home before it starts Spark (:func:`claim_home`, called by
:func:`femo.platform.session.build_session`), so that a second job, or a job started while the
SQL server (``make sql-server``) runs, stops at once with one line naming the holder.

The claim is an advisory lock (``flock``) on ``<metastore_dir>/femo-home.lock``: the kernel lets
it go when the process ends, however it ends, so a killed job never leaves a stale claim. The
file also says, for the message, which job holds it, with its pid and since when. A process
keeps its claim until it exits, because Derby stays booted in its JVM after ``spark.stop()``.
With a shared metastore (``catalog.metastore_uri``) there is nothing to claim.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import sys
from pathlib import Path
from typing import IO

from femo.platform.errors import MissingPrerequisiteError
from femo.platform.settings import Settings, is_uri

#: The Thrift server's main class (what Spark's sbin/start-thriftserver.sh submits).
THRIFT_SERVER_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"
#: The lock file, inside the metastore folder it guards.
LOCK_NAME = "femo-home.lock"
#: Where the user learns how to share one catalog between processes.
SHARING_DOC = "docs/sql-server.md"

# Locks this process holds, by lock path: kept open (and so held) until the process exits.
_held: dict[Path, IO[str]] = {}


def run_dir(settings: Settings) -> Path:
    """Where the pid file lives: ``<home>/run``, or ``~/.femo/run`` when home is a URI."""
    home = Path("~/.femo").expanduser() if is_uri(settings.home) else Path(settings.home)
    return home / "run"


def pid_file(settings: Settings) -> Path:
    """The SQL server's pid file."""
    return run_dir(settings) / "sql-server.pid"


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


def embedded_metastore(settings: Settings) -> bool:
    """Whether ``settings`` use the embedded Derby metastore in a local folder."""
    return settings.catalog.metastore_uri is None and not is_uri(settings.metastore_dir)


def check_metastore_free(settings: Settings) -> None:
    """Fail clearly when the femo SQL server holds the embedded Derby metastore of ``settings``.

    Nothing to check with a shared metastore (``catalog.metastore_uri``).

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
            f"a metastore with catalog.metastore_uri ({SHARING_DOC})"
        )


def lock_path(settings: Settings) -> Path:
    """The lock file that guards the embedded metastore of ``settings``."""
    return Path(settings.metastore_dir) / LOCK_NAME


def _holder(handle: IO[str]) -> str:
    """The holder the lock file names, for the message (``unknown`` if it cannot be read)."""
    handle.seek(0)
    try:
        record = json.loads(handle.read() or "{}")
        return f"{record['job']} (pid {record['pid']}) since {record['since']}"
    except (ValueError, KeyError, TypeError):
        return "another process (unknown)"


def claim_home(settings: Settings, job: str | None = None) -> None:
    """Claim the femo home of ``settings`` for this process, or fail at once naming its holder.

    Does nothing with a shared metastore. Claiming a home this process already holds is a no-op.

    Args:
        settings: whose metastore to claim.
        job: how the holder is named to a second process (default: this program's name).

    Raises:
        MissingPrerequisiteError: the SQL server or another process holds the home.
    """
    if not embedded_metastore(settings):
        return
    path = lock_path(settings)
    if path in _held:
        return
    check_metastore_free(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+", encoding="utf-8")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(handle)
        handle.close()
        raise MissingPrerequisiteError(
            f"the femo home {settings.home} is in use by {holder}: its embedded metastore "
            "admits one process at a time; wait for that one to finish, or share a metastore "
            f"with catalog.metastore_uri ({SHARING_DOC})"
        ) from None
    since = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    record = {"job": job or Path(sys.argv[0] or "python").name, "pid": os.getpid(), "since": since}
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps(record) + "\n")
    handle.flush()
    _held[path] = handle
