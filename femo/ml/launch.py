"""Starting the ranks of a Horovod run, with a bound on how long they may take.

:func:`run_on_spark` starts ``num_proc`` ranks as Spark tasks with ``horovod.spark.run`` (Gloo
rendezvous through the driver; NCCL between GPUs where Horovod was built with it), on whatever
cluster the session runs: ``local[*]``, a standalone master, YARN or Kubernetes. Horovod can
hang after a rank fails (the others wait in an allreduce for ever), so two guards bound a run:
Horovod's stall check, which shuts the ranks down when one has waited ``stall_seconds`` for the
others, and a watchdog in every rank (:func:`guarded`) that ends the rank's process after
``timeout_s``, whereupon Horovod ends the others. Either way the job fails with one line naming
the rank and the cause (each rank prints it in a form :class:`RankOutput` picks out of the
ranks' output), and a re-run resumes from the last checkpoint.

:func:`run_here` runs the function in this process as the one rank (or as each rank under
``horovodrun``, which starts the processes itself).
"""

from __future__ import annotations

import io
import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from femo.ml.training import TrainingError, TrainingFailedError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


#: What a failing rank prints before it dies, so the driver can name the cause.
RANK_ERROR = "femo-rank-error:"


def guarded(fn: Callable[..., Any], args: Sequence[Any], timeout_s: float | None = None) -> Any:
    """``fn(*args)`` in a rank, bounded: on an error, or when ``timeout_s`` has passed, one line
    ``femo-rank-error: rank R: ...`` on stderr (the driver reads it from the ranks' output); an
    error is then raised as usual, a rank past its time ends its process (exit 124), which
    makes Horovod end the others. A rank bounds itself, so this holds on any cluster."""
    rank = os.environ.get("HOROVOD_RANK", "0")

    def expire() -> None:
        print(
            f"{RANK_ERROR} rank {rank}: did not finish within {timeout_s:.0f} s "
            "(training.timeout_minutes): stopped",
            file=sys.stderr,
            flush=True,
        )
        os._exit(124)

    timer = threading.Timer(timeout_s, expire) if timeout_s else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        return fn(*args)
    except BaseException as exc:
        message = " ".join(str(exc).split())[:300]
        print(f"{RANK_ERROR} rank {rank}: {type(exc).__name__}: {message}", file=sys.stderr)
        sys.stderr.flush()
        raise
    finally:
        if timer is not None:
            timer.cancel()


class RankOutput(io.TextIOBase):
    """Passes the ranks' output through to ``target`` and keeps the ranks' error lines."""

    def __init__(self, target: Any) -> None:
        super().__init__()
        self.target = target
        self.rank_errors: list[str] = []
        self._partial = ""

    def write(self, text: str) -> int:
        self.target.write(text)
        if "\n" in text:
            self.target.flush()  # a rank's line shows when it is written, not at the end
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        self.rank_errors += [
            line.split(RANK_ERROR, 1)[1].strip() for line in lines if RANK_ERROR in line
        ]
        return len(text)

    def flush(self) -> None:
        self.target.flush()


def horovod_env(stall_seconds: int, threads: int | None) -> dict[str, str]:
    """The environment of every rank: the driver's, Horovod's stall shutdown, and the thread
    counts of the math libraries (one core per rank means one thread, or ranks fight)."""
    env = dict(os.environ)
    env["HOROVOD_STALL_CHECK_TIME_SECONDS"] = str(max(5, stall_seconds // 2))
    env["HOROVOD_STALL_SHUTDOWN_TIME_SECONDS"] = str(stall_seconds)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
        env["TF_NUM_INTRAOP_THREADS"] = str(threads)
    return env


def check_slots(spark: SparkSession, num_proc: int) -> None:
    """On ``local[N]``, refuse ``num_proc`` ranks when there are fewer than ``num_proc`` task
    slots: the ranks must all run at once, so Horovod would wait for slots that never come. On a
    cluster the count is not known before the executors register (Horovod's start timeout
    speaks there)."""
    context = spark.sparkContext
    if not str(context.master).startswith("local"):
        return
    slots = context.defaultParallelism
    if num_proc > slots:
        raise TrainingError(
            f"{num_proc} Horovod ranks need {num_proc} task slots at once, {context.master} has "
            f"{slots}: lower --num-proc (training.num_proc) or run on more cores"
        )


def run_on_spark(
    spark: SparkSession,
    fn: Callable[..., Any],
    args: Sequence[Any],
    *,
    num_proc: int,
    timeout_s: float,
    start_timeout_s: int,
    stall_seconds: int,
    threads: int | None,
) -> list[Any]:
    """``fn(*args)`` on ``num_proc`` ranks as Spark tasks; the ranks' results in rank order.

    Raises:
        TrainingError: a rank failed, the ranks did not start within ``start_timeout_s``, or
            the run outlived ``timeout_s`` (its Spark job is cancelled).
    """
    import horovod.spark

    check_slots(spark, num_proc)
    output, errors = RankOutput(sys.stdout), RankOutput(sys.stderr)
    try:
        results = horovod.spark.run(
            guarded,
            args=(fn, tuple(args), timeout_s),
            stdout=output,
            stderr=errors,
            num_proc=num_proc,
            start_timeout=start_timeout_s,
            use_gloo=True,
            env=horovod_env(stall_seconds, threads),
            verbose=1,
        )
    except Exception as exc:
        cause = root_cause(errors.rank_errors + output.rank_errors) or first_line(exc)
        raise TrainingFailedError(
            f"training failed: {cause}; a re-run resumes from the last checkpoint"
        ) from exc
    return list(results)


def horovod_world() -> tuple[int, int]:
    """``hvd.init()`` in this process; its rank and the number of ranks (1 when started alone,
    each process's own under ``horovodrun``)."""
    import horovod.tensorflow.keras as hvd

    hvd.init()
    return int(hvd.rank()), int(hvd.size())


def share(value: Any) -> Any:
    """Rank 0's ``value`` on every rank (what the others pass is ignored)."""
    from horovod.tensorflow import broadcast_object

    return broadcast_object(value, root_rank=0)


def run_here(fn: Callable[..., Any], args: Sequence[Any], timeout_s: float | None = None) -> Any:
    """``fn(*args)`` in this process: the only rank, or one of ``horovodrun``'s."""
    try:
        return guarded(fn, args, timeout_s)
    except TrainingError:
        raise
    except Exception as exc:
        raise TrainingFailedError(f"training failed: {first_line(exc)}") from exc


def root_cause(errors: Sequence[str]) -> str | None:
    """Of the ranks' error lines, the cause: once one rank fails, Horovod shuts down and the
    others fail in their next collective ("Horovod has been shut down"), so the first line that
    is not such an echo, else the first line."""
    echoes = ("has been shut down", "HorovodInternalError")
    causes = [e for e in errors if not any(echo in e for echo in echoes)]
    chosen = causes or list(errors)
    return chosen[0] if chosen else None


def first_line(exc: BaseException) -> str:
    """The last meaningful line of a rank's error (Horovod and Spark wrap the cause in pages
    of their own; the cause's own message comes last), or the error's type."""
    text = str(exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if "Error" in line or "error" in line:
            return line[:400]
    return (lines[0] if lines else type(exc).__name__)[:400]
