"""spark-submit.sh on local[*]: the catalog persists across jobs; errors are one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from .conftest import SUBMIT_SETTINGS, SubmittedHome
from .submit import job_lines, submit

pytestmark = pytest.mark.submit


@pytest.fixture(scope="module")
def home(submitted_home: SubmittedHome) -> Path:
    return submitted_home.home


def test_init_catalog_then_query_in_separate_jobs(
    spark: SparkSession, submitted_home: SubmittedHome
) -> None:
    home = submitted_home.home
    # The session's home began with jobs/init_catalog.py on an empty home.
    assert job_lines(submitted_home.init)[-1] == (
        "database femo: tables created emotions, sources, images, quarantine, ingested_files, "
        "faces, "
        "action_units, emotion_action_units, everyday_emotions, everyday_emotion_names, "
        "downloads, training_sets, training_examples, training_runs, run_metrics, job_leases; "
        "seeded emotions +8 ~0, "
        "sources +7 ~0; rows emotions 8, sources 7"
    )
    again = submit("jobs/init_catalog.py", *SUBMIT_SETTINGS, home=home)
    # The seven seeded sources plus those the jobs since registered (`sample`, other tests'),
    # read by path from the shared session.
    sources = spark.read.format("delta").load(str(home / "warehouse" / "femo.db" / "sources"))
    assert sources.where("source_id = 'sample'").count() == 1
    assert job_lines(again)[-1] == (
        "database femo: tables created none; seeded emotions +0 ~0, sources +0 ~0; "
        f"rows emotions 8, sources {sources.count()}"
    )
    # A third process finds the tables by name through the embedded metastore under home.
    query = submit(
        "jobs/query.py",
        *SUBMIT_SETTINGS,
        "--format",
        "json",
        "--sql",
        "SELECT name FROM emotions WHERE emotion_id >= :first ORDER BY emotion_id",
        "--param",
        "first=5",
        home=home,
    )
    assert query.returncode == 0, query.stdout + query.stderr
    assert [json.loads(line) for line in job_lines(query)] == [
        {"name": "surprise"},
        {"name": "neutral"},
        {"name": "contempt"},
    ]
    assert (home / "warehouse" / "femo.db" / "emotions" / "_delta_log").is_dir()
    assert (home / "metastore" / "metastore_db").is_dir()


def test_bad_sql_is_one_line_and_nonzero(home: Path) -> None:
    result = submit("jobs/query.py", *SUBMIT_SETTINGS, "--sql", "SELEC 1", home=home)
    assert result.returncode == 2  # the caller's SQL: fix, then rerun
    lines = job_lines(result)
    assert lines == ["error: [PARSE_SYNTAX_ERROR] Syntax error at or near 'SELEC'.(line 1, pos 0)"]
    assert "Traceback" not in result.stderr


def test_bad_setting_fails_before_spark_starts(home: Path) -> None:
    result = submit(
        "jobs/query.py", "--sql", "SELECT 1", "--set", "spark.mastr=x", home=home, timeout=60
    )
    assert result.returncode == 2
    assert "spark.mastr: unknown setting" in result.stderr


def test_usage_errors_of_the_script(home: Path) -> None:
    missing = submit("jobs/no_such_job.py", home=home, timeout=60)
    assert (missing.returncode, missing.stderr.strip()) == (
        2,
        "error: no such job file: jobs/no_such_job.py",
    )
    helped = submit("--help", home=home, timeout=60)
    assert helped.returncode == 0
    assert "./spark-submit.sh [spark-submit options] jobs/<job>.py [job options]" in helped.stdout
