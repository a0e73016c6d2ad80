"""femo.platform.leases: one run at a time per job and source, by compare-and-set on a Delta
table; a dead holder's lease frees itself. (Two real processes: tests/test_concurrent_runs.py.)"""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from femo.ingest.sample import write_everyday_csv, write_images
from femo.platform.catalog import ensure_table
from femo.platform.cli import base_parser
from femo.platform.delta_files import ConcurrentCommitError, read_all, replace_all
from femo.platform.job import Job
from femo.platform.leases import (
    Holder,
    LeaseHeldError,
    LeaseLostError,
    acquire,
    hold,
    process_alive,
    process_started,
    why_free,
)
from femo.platform.schemas import JOB_LEASES
from femo.platform.settings import LeaseSettings, Settings, SettingsError, load_settings
from femo.sources.facs import SOURCE_ID as FACS_SOURCE
from jobs.detect_faces import DetectFaces
from jobs.fetch_api_images import FetchApiImages
from jobs.ingest_everyday import IngestEveryday
from jobs.ingest_images import IngestImages
from jobs.scrape_facs import ScrapeFacs

from .conftest import LOCAL_CONF, make_settings

DATABASE = "lease_tests"
TABLE = f"{DATABASE}.{JOB_LEASES.name}"
POLICY = LeaseSettings(expire_seconds=30, heartbeat_seconds=1)


@pytest.fixture(scope="module")
def leases(spark: Any) -> Iterator[Any]:
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
    ensure_table(spark, JOB_LEASES, DATABASE)
    yield spark
    spark.sql(f"DROP DATABASE IF EXISTS {DATABASE} CASCADE")


def holders(spark: Any) -> pd.DataFrame:
    """The leases held now."""
    rows = read_all(spark, TABLE)[1]
    return rows[rows["released_at"].isna()].reset_index(drop=True)


def put(spark: Any, holder: Holder, heartbeat: datetime) -> None:
    """Write ``holder``'s row as if another run had taken the lease."""
    read, current = read_all(spark, TABLE)
    others = current[current["lease"] != holder.lease]
    row = pd.DataFrame([holder.row(heartbeat, heartbeat)], columns=current.columns)
    replace_all(spark, read, pd.concat([others, row], ignore_index=True))


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def row_of(holder: Holder, heartbeat: datetime) -> pd.Series[Any]:
    return pd.Series(holder.row(heartbeat, heartbeat))


def test_a_lease_is_free_only_when_its_holder_is_gone_or_silent() -> None:
    now = datetime.now(UTC)
    expire = timedelta(seconds=60)
    me = Holder("ingest_images", "fer2013")
    assert why_free(row_of(me, now), now, expire, me.host) is None  # this live process
    elsewhere = Holder("ingest_images", "fer2013", host="worker-7", pid=dead_pid())
    assert why_free(row_of(elsewhere, now), now, expire, me.host) is None  # can't see its pid
    silent = why_free(row_of(elsewhere, now - timedelta(seconds=61)), now, expire, me.host)
    assert silent == "not renewed for 61 s"
    gone = Holder("ingest_images", "fer2013", pid=dead_pid())
    assert "is gone" in (why_free(row_of(gone, now), now, expire, me.host) or "")
    given_back = row_of(me, now)
    given_back["released_at"] = now
    assert why_free(given_back, now, expire, me.host) == "given back"


def test_a_reused_pid_is_not_the_holder() -> None:
    me = Holder("faces", "x")
    started = process_started(me.pid)
    assert started is not None and process_alive(me.pid, started)
    assert not process_alive(me.pid, started + 1)  # same pid, another process
    assert not process_alive(dead_pid(), None)


def test_heartbeats_must_come_well_before_expiry() -> None:
    with pytest.raises(SettingsError, match="lease.heartbeat_seconds"):
        load_settings(LOCAL_CONF, ("lease.expire_seconds=60", "lease.heartbeat_seconds=30"))


def test_a_second_run_stops_naming_the_holder_and_a_given_back_lease_is_free(
    leases: Any,
) -> None:
    with hold(leases, DATABASE, "ingest_images", "fer2013", POLICY) as lease:
        held = holders(leases)
        assert held[["lease", "token", "pid"]].values.tolist() == [
            ["ingest_images/fer2013", lease.holder.token, lease.holder.pid]
        ]
        with pytest.raises(LeaseHeldError) as second:
            acquire(leases, DATABASE, "ingest_images", "fer2013", POLICY)
        message = str(second.value)
        assert message.startswith("ingest_images is already running for source fer2013: pid ")
        since = held["acquired_at"].iloc[0].isoformat(timespec="seconds")
        assert f"since {since}" in message and "\n" not in message
        # another job, or another source, is another lease
        with (
            hold(leases, DATABASE, "detect_faces", "fer2013", POLICY),
            hold(leases, DATABASE, "ingest_images", "kaggle", POLICY),
        ):
            assert len(holders(leases)) == 3
        assert holders(leases)["lease"].tolist() == ["ingest_images/fer2013"]
    assert holders(leases).empty
    acquire(leases, DATABASE, "ingest_images", "fer2013", POLICY).release()


def test_the_lease_is_given_back_when_the_run_fails(leases: Any) -> None:
    with pytest.raises(ZeroDivisionError), hold(leases, DATABASE, "scrape_facs", "facs", POLICY):
        _ = 1 / 0
    assert holders(leases).empty


def test_a_dead_holders_lease_is_taken_over(leases: Any, caplog: pytest.LogCaptureFixture) -> None:
    killed = Holder("ingest_images", "kill", pid=dead_pid())
    put(leases, killed, datetime.now(UTC))
    with caplog.at_level(logging.WARNING, logger="femo.platform.leases"):
        lease = acquire(leases, DATABASE, "ingest_images", "kill", POLICY)
    assert f"of pid {killed.pid}" in caplog.text and "is gone" in caplog.text
    assert holders(leases)["token"].tolist() == [lease.holder.token]
    lease.release()


def test_a_silent_holder_on_another_host_expires(leases: Any) -> None:
    remote = Holder("fetch_api_images", "pixabay", host="another-host", pid=1)
    put(leases, remote, datetime.now(UTC))
    with pytest.raises(LeaseHeldError, match="pid 1 on another-host"):
        acquire(leases, DATABASE, "fetch_api_images", "pixabay", POLICY)
    put(leases, remote, datetime.now(UTC) - timedelta(seconds=POLICY.expire_seconds + 5))
    acquire(leases, DATABASE, "fetch_api_images", "pixabay", POLICY).release()
    assert holders(leases).empty


def test_of_two_commits_from_the_same_read_only_the_first_lands(leases: Any) -> None:
    """The compare-and-set every lease change rests on: Delta refuses a commit whose read
    another commit changed, so two runs that both saw a lease free cannot both take it."""
    first_read, first = read_all(leases, TABLE)
    second_read, second = read_all(leases, TABLE)
    now = datetime.now(UTC)
    first.loc[len(first)] = Holder("race", "s").row(now, now)
    second.loc[len(second)] = Holder("race", "s").row(now, now)
    replace_all(leases, first_read, first)
    with pytest.raises(ConcurrentCommitError):
        replace_all(leases, second_read, second)
    assert holders(leases)["token"].tolist() == [first["token"].iloc[-1]]
    read, current = read_all(leases, TABLE)
    replace_all(leases, read, current[current["lease"] != "race/s"])


def test_a_running_job_renews_its_lease_and_learns_it_lost_it(leases: Any) -> None:
    lease = acquire(leases, DATABASE, "ingest_everyday", "everyday", POLICY)
    first = holders(leases)["heartbeat_at"].iloc[0]
    deadline = time.monotonic() + 60
    while holders(leases)["heartbeat_at"].iloc[0] == first and time.monotonic() < deadline:
        time.sleep(0.5)
    assert holders(leases)["heartbeat_at"].iloc[0] > first
    # another run took it (as if this one had hung past the expiry)
    put(leases, Holder("ingest_everyday", "everyday", host="elsewhere"), datetime.now(UTC))
    with pytest.raises(LeaseLostError, match="taken by another run during this run"):
        lease.release()
    read, current = read_all(leases, TABLE)
    replace_all(leases, read, current[current["lease"] != lease.holder.lease])


# -- every writing job honours the lease -------------------------------------------------------

FACS_PAGE = Path(__file__).parent / "fixtures" / "facs" / "imotions_facs.html"


def job_cases(tmp: Path) -> list[tuple[type[Job], str, str, list[str]]]:
    """(job, its lease, the table it writes, its arguments) for each writing job."""
    write_images(tmp / "images", per_class=1)
    write_everyday_csv(tmp / "everyday.csv", rows=20)
    return [
        (
            IngestImages,
            "ingest_images/leased",
            "images",
            ["--source", "leased", "--path", str(tmp / "images")],
        ),
        (DetectFaces, "detect_faces/leased", "faces", ["--source", "leased"]),
        (
            FetchApiImages,
            "fetch_api_images/pixabay",
            "downloads",
            ["--source", "pixabay", "--emotions", "happy"],
        ),
        (ScrapeFacs, f"scrape_facs/{FACS_SOURCE}", "action_units", ["--html", str(FACS_PAGE)]),
        (
            IngestEveryday,
            "ingest_everyday/leased_everyday",
            "everyday_emotions",
            ["--source", "leased_everyday", "--path", str(tmp / "everyday.csv")],
        ),
    ]


def test_every_writing_job_stops_while_another_run_holds_its_lease(
    spark: Any, catalog: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each job, in this process, with ``lease.when=always`` (on the embedded metastore the
    home's lock already keeps a second process out): a live holder elsewhere stops it before
    it writes, with the holder named."""
    monkeypatch.setenv("PIXABAY_API_KEY", "not-used")  # the lease stops it before any request
    settings = make_settings(Path(catalog.home), "lease.when=always")
    table = f"{catalog.catalog.database}.{JOB_LEASES.name}"
    try:
        for job, lease, writes, argv in job_cases(tmp_path):
            name, scope = lease.split("/")
            other = Holder(name, scope, host="another-host", pid=4242)
            read, current = read_all(spark, table)
            row = pd.DataFrame(
                [other.row(datetime.now(UTC), datetime.now(UTC))], columns=current.columns
            )
            replace_all(
                spark,
                read,
                pd.concat([current[current["lease"] != lease], row], ignore_index=True),
            )
            history = spark.sql(f"DESCRIBE HISTORY {catalog.catalog.database}.{writes}").count()
            parser = base_parser(None)
            job.add_arguments(parser)
            with pytest.raises(
                LeaseHeldError,
                match=f"^{name} is already running for source {scope}: pid 4242 on another-host",
            ):
                job(settings, spark, out=io.StringIO()).run(parser.parse_args(argv))
            assert (
                spark.sql(f"DESCRIBE HISTORY {catalog.catalog.database}.{writes}").count()
                == history
            ), job
    finally:
        read, current = read_all(spark, table)
        replace_all(spark, read, current.iloc[0:0])
