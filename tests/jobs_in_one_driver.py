"""Several jobs in one driver and one Spark session, as the tests' in-process jobs run:

    ./spark-submit.sh tests/jobs_in_one_driver.py [--conf F] [--set k=v ...] \\
        jobs/ingest_images.py ARGS... + jobs/detect_faces.py ARGS... + ...

For tests that need a home built by the data jobs but prove something else (one JVM start for
all of them instead of one each); each job runs as the in-process tests run it
(``tests.conftest.run_job``) and must exit 0.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # jobs/ (not in femo.zip)

from femo.platform.cli import base_parser, settings_from_args
from femo.platform.job import Job
from femo.platform.session import build_session
from tests.conftest import run_job


def job_class(path: str) -> type[Job]:
    """The :class:`Job` that ``jobs/<name>.py`` defines."""
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    (found,) = (
        c
        for _, c in inspect.getmembers(module, inspect.isclass)
        if issubclass(c, Job) and c.__module__ == module.__name__
    )
    return found


def main(argv: list[str]) -> int:
    """Run each ``+``-separated job with its arguments, in order, on one session."""
    settings_args, rest = base_parser(None, add_help=False).parse_known_args(argv)
    settings = settings_from_args(settings_args)
    spark = build_session(settings)
    runs: list[list[str]] = [[]]
    for arg in rest:
        if arg == "+":
            runs.append([])
        else:
            runs[-1].append(arg)
    for path, *args in runs:
        print(run_job(job_class(path), spark, settings, *args), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
