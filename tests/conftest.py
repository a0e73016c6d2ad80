"""One Spark session for the whole test run: local[2], UI off, few partitions, a temp home."""

from __future__ import annotations

import argparse
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from femo.platform.settings import Settings, load_settings

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
)


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
