"""Leases: one run at a time of a writing job on a source, across processes and machines.

A job that writes (ingest, faces, fetch, FACS, everyday) holds the lease ``<job>/<source>``
while it runs (:func:`hold`). A second run of the same job on the same source finds it held
and stops at once with one line naming the holder and since when (:class:`LeaseHeldError`,
exit code 1: retry later). Without leases, two ingests over the same new files would both write
them (each would take the other's run marker for a killed run's, delete its rows and write
its own copy).

The leases are the rows of the Delta table ``femo.job_leases``, beside the tables they guard:
every driver that can write those tables reaches it, and analysts see what runs now. Taking,
renewing and giving back a lease is a compare-and-set on Delta's optimistic concurrency: read
the table in a transaction, decide, commit the new rows in place of the old
(:func:`femo.platform.delta_files.replace_all`, on the driver, no Spark job: milliseconds). Of
two runs that both find a lease free, one commit wins; the other conflicts, reads again and
finds it held.

A lease is free when:

- no row holds it, or its holder gave it back (the row stays, with ``released_at``: the last
  run of each job on each source);
- its holder stopped renewing it (``lease.expire_seconds`` after the last heartbeat): it died
  on another machine, or hung. The holder renews it every ``lease.heartbeat_seconds`` from a
  thread of the driver;
- its holder ran on this host and that process is gone (its pid ended, or was reused by another
  process: the start time differs): a run killed a moment ago frees its lease at once.

A run that takes the lease of a run that died then repairs what that run left, as before
(ingest's run markers, the faces job's pending images).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import pandas as pd

from femo.platform.delta_files import ConcurrentCommitError, read_all, replace_all
from femo.platform.errors import RunFailedError
from femo.platform.home import embedded_metastore
from femo.platform.schemas import JOB_LEASES

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from femo.platform.settings import LeaseSettings, Settings

log = logging.getLogger(__name__)

#: Tries at a commit that other commits keep beating (each reads the table again).
ATTEMPTS: Final = 8


class LeaseHeldError(RunFailedError):
    """Another live run holds the lease: this run stops before writing anything."""


class LeaseLostError(RunFailedError):
    """This run's lease was taken by another run while it ran (it stopped renewing it for
    longer than ``lease.expire_seconds``): what it wrote may overlap the other run's."""


def process_started(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks after boot (Linux's /proc), or None where
    that cannot be read (the process is gone, or no /proc)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            # the command name (field 2) is in parentheses and may hold spaces
            return int(stat.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def process_alive(pid: int, started: int | None) -> bool:
    """Whether process ``pid`` of this host runs, and is the one that started at ``started``
    (when known; a pid can be reused)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    return started is None or process_started(pid) in (started, None)


@dataclass(frozen=True)
class Holder:
    """Who holds (or wants) a lease: a run in a driver process."""

    job: str
    scope: str
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    pid_started: int | None = field(default_factory=lambda: process_started(os.getpid()))
    application_id: str | None = None

    @property
    def lease(self) -> str:
        return f"{self.job}/{self.scope}"

    def row(self, acquired_at: datetime, heartbeat_at: datetime) -> dict[str, Any]:
        """This holder as a row of ``job_leases``."""
        return {
            "lease": self.lease,
            "job": self.job,
            "scope": self.scope,
            "token": self.token,
            "host": self.host,
            "pid": self.pid,
            "pid_started": self.pid_started,
            "application_id": self.application_id,
            "acquired_at": acquired_at,
            "heartbeat_at": heartbeat_at,
            "released_at": None,
        }


def why_free(row: pd.Series[Any], now: datetime, expire: timedelta, host: str) -> str | None:
    """Why the lease in ``row`` (of ``job_leases``) is free at ``now`` for a run on ``host``,
    or None while its holder is alive."""
    if not pd.isna(row["released_at"]):
        return "given back"
    heartbeat = _utc(row["heartbeat_at"])
    if now - heartbeat > expire:
        return f"not renewed for {(now - heartbeat).total_seconds():.0f} s"
    if row["host"] == host:
        started = None if pd.isna(row["pid_started"]) else int(row["pid_started"])
        if not process_alive(int(row["pid"]), started):
            return f"its process {int(row['pid'])} on this host is gone"
    return None


def _utc(value: Any) -> datetime:
    """A timestamp read from the table as an aware UTC datetime."""
    stamp = pd.Timestamp(value)
    return (stamp.tz_convert(UTC) if stamp.tzinfo else stamp.tz_localize(UTC)).to_pydatetime()


def describe(row: pd.Series[Any], now: datetime) -> str:
    """One line naming the holder of the lease in ``row`` and since when."""
    app = f", Spark application {row['application_id']}" if row["application_id"] else ""
    quiet = (now - _utc(row["heartbeat_at"])).total_seconds()
    return (
        f"{row['job']} is already running for source {row['scope']}: pid {int(row['pid'])} on "
        f"{row['host']}{app}, since {_utc(row['acquired_at']).isoformat(timespec='seconds')} "
        f"(last heartbeat {quiet:.0f} s ago); this run stops without writing: rerun when it "
        f"has finished"
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _update(
    spark: SparkSession, table: str, change: Callable[[pd.DataFrame], pd.DataFrame | None]
) -> bool:
    """Read the lease table, let ``change`` make its new rows from the rows read (None: leave
    it as it is) and commit them in place of the old; from a fresh read when another commit
    came in between. False when ``change`` left the table as it was."""
    for attempt in range(ATTEMPTS):
        read, rows = read_all(spark, table)
        new = change(rows)
        if new is None:
            return False
        try:
            replace_all(spark, read, new)
            return True
        except ConcurrentCommitError:
            time.sleep(0.05 * (attempt + 1))  # read again: the other commit may change the answer
    raise RunFailedError(f"{table}: could not commit for {ATTEMPTS} tries")


class Lease:
    """A lease this run holds (taken by :func:`acquire`): renewed from a daemon thread, which
    starts here, until :meth:`release`."""

    def __init__(
        self, spark: SparkSession, table: str, holder: Holder, policy: LeaseSettings
    ) -> None:
        self.spark, self.table, self.holder, self.policy = spark, table, holder, policy
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"lease {holder.lease}", daemon=True
        )
        self._thread.start()

    def _change(self, renew: bool) -> bool:
        """Renew this holder's row, or (not ``renew``) mark it given back; False when it no
        longer holds the lease. Retries commits that other commits beat. (A given-back row
        stays, as the last holder: a commit that leaves a Delta table empty costs seconds.)"""

        def mark(rows: pd.DataFrame) -> pd.DataFrame | None:
            mine = (rows["token"] == self.holder.token) & rows["released_at"].isna()
            if not mine.any():
                return None
            rows.loc[mine, "heartbeat_at" if renew else "released_at"] = _now()
            return rows

        return _update(self.spark, self.table, mark)

    def _beat(self) -> None:
        while not self._stop.wait(self.policy.heartbeat_seconds):
            try:
                if not self._change(renew=True):
                    self.lost = "another run took it after it expired"
                    log.error("lease %s lost: %s", self.holder.lease, self.lost)
                    return
            except Exception as exc:  # keep beating: the next beat may succeed
                log.warning("lease %s: renewing failed: %s", self.holder.lease, exc)

    def release(self) -> None:
        """Stop renewing and give the lease back.

        Raises:
            LeaseLostError: another run took it during this run.
        """
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        held = self.lost is None and self._change(renew=False)
        if not held:
            raise LeaseLostError(
                f"the lease {self.holder.lease} was taken by another run during this run "
                f"(not renewed for over {self.policy.expire_seconds} s): check its output"
            )


def acquire(
    spark: SparkSession, database: str, job: str, scope: str, policy: LeaseSettings
) -> Lease:
    """Take the lease ``job/scope`` for this run, or stop.

    Raises:
        LeaseHeldError: a live run holds it (the message names it and since when).
    """
    table = f"{database}.{JOB_LEASES.name}"
    holder = Holder(job, scope, application_id=spark.sparkContext.applicationId)
    expire = timedelta(seconds=policy.expire_seconds)

    def take(rows: pd.DataFrame) -> pd.DataFrame:
        now = _now()
        current = rows[rows["lease"] == holder.lease]
        if len(current):
            row = current.iloc[0]
            reason = why_free(row, now, expire, holder.host)
            if reason is None:
                raise LeaseHeldError(describe(row, now))
            if reason != "given back":
                log.warning(
                    "taking over the lease %s of pid %s on %s: %s",
                    holder.lease,
                    int(row["pid"]),
                    row["host"],
                    reason,
                )
        others = rows[rows["lease"] != holder.lease]
        new = pd.DataFrame([holder.row(now, now)], columns=rows.columns)
        return pd.concat([others, new], ignore_index=True)

    _update(spark, table, take)
    log.info("holding the lease %s", holder.lease)
    return Lease(spark, table, holder, policy)


@contextmanager
def hold(
    spark: SparkSession, database: str, job: str, scope: str, policy: LeaseSettings
) -> Iterator[Lease]:
    """Hold the lease ``job/scope`` for the ``with`` block, and give it back however the block
    ends (:func:`acquire`, :meth:`Lease.release`)."""
    lease = acquire(spark, database, job, scope, policy)
    try:
        yield lease
    except BaseException:
        try:
            lease.release()
        except Exception as exc:  # the block's own error is the one to show
            log.warning("lease %s: %s", job, exc)
        raise
    lease.release()


def needed(settings: Settings) -> bool:
    """Whether jobs take leases with ``settings``: on a shared metastore, or when
    ``lease.when`` is ``always``. With the embedded Derby metastore the femo home's lock
    (:mod:`femo.platform.home`) already admits one process at a time, so a lease would only
    cost its two commits."""
    return settings.lease.when == "always" or not embedded_metastore(settings)


@contextmanager
def held(
    spark: SparkSession, settings: Settings, job: str, scopes: Iterable[str]
) -> Iterator[list[Lease]]:
    """Hold the leases of ``job`` on every scope in ``scopes`` (sources), when they are
    :func:`needed`, for the ``with`` block; a run that cannot take them all gives back those it
    took and stops (:class:`LeaseHeldError`)."""
    if not needed(settings):
        yield []
        return
    database, policy = settings.catalog.database, settings.lease
    with ExitStack() as stack:
        yield [
            stack.enter_context(hold(spark, database, job, scope, policy))
            for scope in sorted(set(scopes))
        ]
