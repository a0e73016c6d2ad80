"""Exit codes a scheduler acts on: 1 retry, 2 fix then rerun, 99 nothing to do when asked
(femo.platform.errors)."""

from __future__ import annotations

import pytest
from py4j.protocol import Py4JJavaError
from pyspark.errors import AnalysisException, ParseException, PySparkRuntimeError

from femo.ml.tracking import TrackingError
from femo.ml.training import TrainingError, TrainingFailedError
from femo.ml.zoo import UnknownModelError
from femo.platform.catalog import SchemaConflictError
from femo.platform.cli import base_parser
from femo.platform.delta_files import ConcurrentCommitError
from femo.platform.errors import (
    EXIT_FAILED,
    EXIT_NOTHING_TO_DO,
    EXIT_OK,
    EXIT_USAGE,
    FemoError,
    MissingPrerequisiteError,
    RunFailedError,
    exit_code,
)
from femo.platform.job import Job
from femo.platform.leases import LeaseHeldError, LeaseLostError
from femo.platform.settings import SettingsError
from femo.sources.connectors import PageError
from femo.sources.http import FetchError


@pytest.mark.parametrize(
    "exc",
    [
        SettingsError("spark.mastr: unknown setting"),
        MissingPrerequisiteError("run jobs/init_catalog.py first"),
        SchemaConflictError("column x is int in the table"),
        UnknownModelError("no model resnet"),
        TrainingError("epochs must be at least 1"),
        FemoError("unknown emotion(s) joyful"),
        AnalysisException("[TABLE_OR_VIEW_NOT_FOUND] no_such_table"),
        ParseException("[PARSE_SYNTAX_ERROR] at or near 'SELEC'"),
    ],
    ids=type,
)
def test_the_callers_mistakes_exit_2(exc: BaseException) -> None:
    assert exit_code(exc) == EXIT_USAGE == 2


@pytest.mark.parametrize(
    "exc",
    [
        RunFailedError("images: the table's schema changed during the run; run again"),
        TrainingFailedError("training failed: rank 1: ValueError: boom"),
        TrackingError("cannot open the tracking store"),
        FetchError("http_error", "HTTP 503 from https://pixabay.com/api/", 503),
        PageError("unexpected_json", "answer is not a list"),
        PySparkRuntimeError("executor lost"),
        LeaseHeldError("ingest_images is already running for source fer2013: pid 7 on h"),
        LeaseLostError("the lease ingest_images/x was taken by another run during this run"),
        ConcurrentCommitError("femo.job_leases: [DELTA_CONCURRENT_APPEND] ..."),
    ],
    ids=type,
)
def test_failed_runs_exit_1(exc: BaseException) -> None:
    assert exit_code(exc) == EXIT_FAILED == 1


def test_nothing_to_do_is_99_only_when_asked_for() -> None:
    parser = base_parser(None)
    asked, plain = parser.parse_args(["--signal-idle"]), parser.parse_args([])
    assert Job.finished(asked, idle=True) == EXIT_NOTHING_TO_DO == 99
    assert Job.finished(asked, idle=False) == EXIT_OK == 0
    assert Job.finished(plain, idle=True) == EXIT_OK


def test_a_java_error_fails_the_run_and_a_bug_keeps_its_traceback() -> None:
    java = Py4JJavaError.__new__(Py4JJavaError)  # as Py4J raises it, without a gateway
    assert exit_code(java) == EXIT_FAILED
    assert exit_code(KeyError("a bug")) is None
