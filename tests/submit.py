"""Running ``spark-submit.sh`` from tests, the way a user does."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: JVM options of the short-lived drivers the tests start (each spark-submit, each notebook
#: kernel): a driver that runs a few small jobs spends its time warming up, so the quick C1
#: compiler and the serial collector beat the defaults (test_spark_submit: 104 s -> 75 s). The
#: shared in-process session is long-lived and keeps the JVM's defaults: there C1 alone was
#: slower (test_everyday + test_catalog: 119 s -> 182 s). A value already set wins.
SHORT_DRIVER_OPTS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def clean_environ(**env: str) -> dict[str, str]:
    """This process's environment without any ``FEMO_*`` variable, with
    :data:`SHORT_DRIVER_OPTS` unless SPARK_SUBMIT_OPTS is set, then ``env``: what a job started
    from a test sees."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FEMO_")}
    environ.setdefault("SPARK_SUBMIT_OPTS", SHORT_DRIVER_OPTS)
    environ.update(env)
    return environ


def job_environ(home: Path, **env: str) -> dict[str, str]:
    """The environment of a job a test submits: ``home`` as FEMO_HOME, conf/local.yaml."""
    return clean_environ(FEMO_HOME=str(home), FEMO_CONF=str(ROOT / "conf" / "local.yaml"), **env)


def submit(
    *args: str, home: Path, timeout: float = 300, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``./spark-submit.sh ARGS`` with ``home`` as FEMO_HOME; stdout and stderr captured."""
    environ = job_environ(home, **env)
    return subprocess.run(
        [str(ROOT / "spark-submit.sh"), *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def job_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """What the job printed: stdout without Spark's progress bar."""
    return [line for line in result.stdout.splitlines() if line and "[Stage" not in line]
