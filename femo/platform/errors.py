"""Errors that name the problem, and the exit codes a scheduler acts on.

Jobs turn them into a one-line message and an exit code (:func:`exit_code`):

- :data:`EXIT_FAILED` (1): the run failed on the way (a worker, a web service, a table that
  changed under it, Spark itself); the same command may well succeed later: **retry**.
- :data:`EXIT_USAGE` (2): bad arguments, settings or input, or a missing prerequisite (a table,
  the jars, a data folder); retrying changes nothing: **fix, then rerun**.
- :data:`EXIT_NOTHING_TO_DO` (99), only for a job run with ``--signal-idle``: the run found
  nothing to do (no new files, the set or model already recorded) and changed nothing.
  Airflow's ``BashOperator`` marks such a task skipped; without the flag it is 0, so cron and
  shell scripts see success.
"""

from __future__ import annotations

from typing import Final

#: The run did its work (or found it done).
EXIT_OK: Final = 0
#: The run failed; a retry may succeed.
EXIT_FAILED: Final = 1
#: Bad arguments, settings or input, or a missing prerequisite: fix, then rerun.
EXIT_USAGE: Final = 2
#: With ``--signal-idle``: the run found nothing to do (Airflow's BashOperator skips on it).
EXIT_NOTHING_TO_DO: Final = 99


class FemoError(ValueError):
    """Base of femo's own errors: bad input, bad settings, a missing prerequisite."""


class RunFailedError(FemoError):
    """The run failed for a reason outside the caller's arguments (a worker, a web service, a
    table changed during the run): the same command may succeed when run again."""


class MissingPrerequisiteError(FemoError):
    """Something a job needs is not installed or not there (jars, a table, a data folder)."""


class SqlFileError(FemoError):
    """A named SQL file does not exist or cannot be used as asked."""


def exit_code(exc: BaseException) -> int | None:
    """The exit code for ``exc``, or None for an error femo does not classify (a bug: let its
    traceback show). Spark's analysis errors (a table or column not found, SQL that does not
    parse) are the caller's to fix; Spark's other errors and Py4J's failed the run."""
    if isinstance(exc, RunFailedError):
        return EXIT_FAILED
    if isinstance(exc, FemoError):
        return EXIT_USAGE
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import AnalysisException, PySparkException

    if isinstance(exc, AnalysisException):
        return EXIT_USAGE
    if isinstance(exc, PySparkException | Py4JJavaError):
        return EXIT_FAILED
    return None
