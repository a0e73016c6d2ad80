"""One Spark session for the whole test run: local[2], UI off, few partitions, a temp home."""

from __future__ import annotations

import argparse
import io
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from femo.ingest.sample import write_images
from femo.platform.settings import Settings, load_settings

from .submit import submit

ROOT = Path(__file__).resolve().parents[1]
LOCAL_CONF = ROOT / "conf" / "local.yaml"

#: Overrides that make the shared test session small and quiet.
TEST_OVERRIDES = (
    "spark.master=local[2]",
    "spark.shuffle_partitions=2",
    "spark.show_progress=false",
    "spark.driver_memory=2g",
    "spark.conf.spark.ui.enabled=false",
    "spark.conf.spark.sql.session.timeZone=UTC",
    "http.allow_networks=[127.0.0.0/8]",  # the tests' web servers and the mirror: loopback
)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """For ``pytest -n N --dist loadgroup`` (``make test``): every module runs whole on one
    worker (its module fixtures built once, its tests in file order), and every test on the
    shared :func:`submitted_home` on one worker (the home built once; Derby admits one process
    at a time)."""
    for item in items:
        if not any(item.iter_markers("xdist_group")):
            fixtures = getattr(item, "fixturenames", ())
            group = "submitted_home" if "submitted_home" in fixtures else item.nodeid.split("::")[0]
            item.add_marker(pytest.mark.xdist_group(group))


def make_settings(home: Path, *extra: str) -> Settings:
    """Settings as the tests use them: conf/local.yaml, ``home`` as FEMO_HOME, test overrides."""
    return load_settings(LOCAL_CONF, (*TEST_OVERRIDES, *extra), environ={"FEMO_HOME": str(home)})


def run_job(
    job: type, spark: object, settings: Settings, *argv: str, overrides: tuple[str, ...] = ()
) -> str:
    """Run ``job`` in process on the shared session, as ``spark-submit.sh job ARGV`` would run
    it, with ``settings`` (or, given ``overrides``, the test settings of its home plus those);
    what it printed. It must exit 0."""
    parser = argparse.ArgumentParser()
    job.add_arguments(parser)
    out = io.StringIO()
    job_settings = make_settings(Path(settings.home), *overrides) if overrides else settings
    assert job(job_settings, spark, out=out).run(parser.parse_args(list(argv))) == 0
    return out.getvalue().strip()


@contextmanager
def own_database(spark: object, catalog: Settings, database: str) -> Iterator[Settings]:
    """Settings of the shared session on a database of its own (``database``, made by the
    first job that runs there, dropped afterwards): a test whose jobs write there neither sees
    the other tests' rows nor shows them its own."""
    try:
        yield make_settings(Path(catalog.home), f"catalog.database={database}")
    finally:
        spark.sql(f"DROP DATABASE IF EXISTS {database} CASCADE")  # type: ignore[attr-defined]
        spark.catalog.setCurrentDatabase(catalog.catalog.database)  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings of the shared session, with a fresh home."""
    return make_settings(tmp_path_factory.mktemp("femo-home"))


@pytest.fixture(scope="session")
def spark(settings: Settings) -> Iterator[object]:
    """The one SparkSession of the test run (Delta on, Hive catalog under the temp home)."""
    # Python workers are started by the JVM: give them the repo on their path too.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    from femo.platform.session import build_session

    session = build_session(settings)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def catalog(spark: object, settings: Settings) -> Settings:
    """The shared session with the femo database and dimension tables in place."""
    from femo.platform.catalog import init_catalog

    init_catalog(spark, settings)
    return settings


@dataclass(frozen=True)
class SubmittedHome:
    """A femo home that real jobs built through ``spark-submit.sh``, as a user builds one: the
    catalog by ``jobs/init_catalog.py``, then the generated sample (``write_images``) ingested
    as source ``sample``. Used by the notebooks, test_spark_submit, the fetch end-to-end path,
    the kill-and-rerun test and the SQL server tests."""

    home: Path
    init: subprocess.CompletedProcess[str]
    ingest: subprocess.CompletedProcess[str]
    good_files: int
    bad_files: dict[str, str]


#: Settings of every job the tests submit on a shared home.
SUBMIT_SETTINGS = ("--set", "spark.master=local[2]", "--set", "spark.show_progress=false")


@pytest.fixture(scope="session")
def submitted_home(tmp_path_factory: pytest.TempPathFactory) -> SubmittedHome:
    """The session's :class:`SubmittedHome`, built once (two submits) by the first test that
    asks for it. A user writes only a source of its own (fetch: ``pixabay``, the kill test:
    ``kill``) and asserts only on its own source's rows, or, like the SQL server, leaves the
    home as it found it."""
    root = tmp_path_factory.mktemp("submitted")
    home = root / "home"
    good, bad = write_images(root / "sample" / "images")
    init = submit("jobs/init_catalog.py", *SUBMIT_SETTINGS, home=home)
    assert init.returncode == 0, init.stdout + init.stderr
    ingest = submit(
        "jobs/ingest_images.py",
        "--source",
        "sample",
        "--path",
        str(root / "sample" / "images"),
        *SUBMIT_SETTINGS,
        home=home,
        timeout=900,
    )
    assert ingest.returncode == 0, ingest.stdout + ingest.stderr
    return SubmittedHome(home, init, ingest, good, bad)
