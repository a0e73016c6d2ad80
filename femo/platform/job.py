"""The shape of a job: constructible with injected settings and session, runnable from a CLI.

A job in ``jobs/`` subclasses :class:`Job`, adds its arguments and implements :meth:`Job.run`.
Tests construct it with their own settings and session; ``Job.main`` does the CLI wiring and
turns femo's and Spark's errors into one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import logging
import sys
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar, TextIO

from femo.platform.cli import base_parser, settings_from_args
from femo.platform.errors import EXIT_NOTHING_TO_DO, EXIT_OK, FemoError, exit_code
from femo.platform.session import build_session
from femo.platform.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


def one_line(exc: BaseException) -> str:
    """The first meaningful line of an exception's message (Spark's run over many).

    For a raw Java error surfacing through Py4J, that is the Java exception's own message, not
    Py4J's "An error occurred while calling ..." preamble.
    """
    java = getattr(exc, "java_exception", None)
    text = str(java.toString()) if java is not None else str(exc)
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__


class Job(ABC):
    """A femo job. ``description`` doubles as ``--help`` text."""

    description: ClassVar[str] = ""
    #: Level of femo's own log lines. Under spark-submit the Python driver's stderr is merged
    #: into stdout, so a job whose stdout is data (a query) keeps this at WARNING.
    log_level: ClassVar[int] = logging.INFO

    def __init__(
        self,
        settings: Settings,
        spark: SparkSession | None = None,
        out: TextIO | None = None,
    ) -> None:
        self.settings = settings
        self._spark = spark
        self._owns_session = False
        self.out = out or sys.stdout

    @property
    def spark(self) -> SparkSession:
        """The injected session, or one built from the settings on first use (and stopped by
        :meth:`close` only if this job started it)."""
        if self._spark is None:
            from pyspark.sql import SparkSession

            self._owns_session = SparkSession.getActiveSession() is None
            self._spark = build_session(self.settings)
        return self._spark

    def say(self, text: str) -> None:
        """Write a line of the job's output (results and the summary, not diagnostics)."""
        print(text, file=self.out, flush=True)

    @staticmethod
    def finished(args: argparse.Namespace, idle: bool) -> int:
        """The exit code of a run that succeeded: :data:`EXIT_NOTHING_TO_DO` when it found
        nothing to do (``idle``) and the job was run with ``--signal-idle``, else 0."""
        return EXIT_NOTHING_TO_DO if idle and getattr(args, "signal_idle", False) else EXIT_OK

    @classmethod  # noqa: B027 - an optional hook, empty on purpose
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add the job's own arguments to ``parser`` (none by default)."""

    @abstractmethod
    def run(self, args: argparse.Namespace) -> int:
        """Do the work; return the exit code."""

    def close(self) -> None:
        """Stop the session if this job started it."""
        if self._owns_session and self._spark is not None:
            self._spark.stop()
            self._spark = None

    @classmethod
    def main(cls, argv: Sequence[str] | None = None, prog: str | None = None) -> int:
        """Parse ``argv``, load settings, run, and map errors to exit codes
        (:mod:`femo.platform.errors`)."""
        parser = base_parser(cls.description, prog=prog)
        cls.add_arguments(parser)
        args = parser.parse_args(argv)
        logging.basicConfig(
            level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        logging.getLogger("femo").setLevel(cls.log_level)
        job: Job | None = None
        try:
            job = cls(settings_from_args(args))
            return job.run(args)
        except Exception as exc:
            code = exit_code(exc)
            if code is None:
                raise
            message = str(exc) if isinstance(exc, FemoError) else one_line(exc)
            print(f"error: {message}", file=sys.stderr)  # femo's own say all (every bad key)
            return code
        finally:
            if job is not None:
                job.close()
