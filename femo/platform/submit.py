"""Helper behind ``spark-submit.sh``: turn a job's settings into ``spark-submit`` arguments.

``python -m femo.platform.submit --zip OUT.zip [--log4j FILE] [--env FILE] -- JOB_ARGS...``
reads the job's ``--conf``/``--set`` from ``JOB_ARGS`` exactly as the job will, builds the zip
of ``femo`` and ``sql`` that is shipped with ``--py-files``, prints the arguments NUL-separated,
so that the command line and the session builder agree on every property
(:func:`femo.platform.session.spark_conf`), and writes the driver's environment
(:func:`femo.platform.session.spark_environment`) to the ``--env`` file.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from femo.platform.cli import base_parser, settings_from_args
from femo.platform.errors import EXIT_USAGE, FemoError, exit_code
from femo.platform.session import driver_java_options, spark_conf, spark_environment
from femo.platform.settings import Settings
from femo.platform.sql import sql_root

#: Properties that have their own spark-submit option (and must be given there to take effect
#: for a driver JVM that spark-submit starts).
_OPTION_FOR = {
    "spark.driver.memory": "--driver-memory",
    "spark.jars": "--jars",
}


def submit_args(settings: Settings, log4j_conf: str | None = None) -> list[str]:
    """``spark-submit`` options for ``settings``, master first; later options may override."""
    args = ["--master", settings.spark.master, "--name", settings.spark.app_name]
    java_options = driver_java_options(settings, log4j_conf)
    if java_options:
        args += ["--driver-java-options", java_options]
    for key, value in spark_conf(settings).items():
        if key == "spark.driver.extraJavaOptions":
            continue
        option = _OPTION_FOR.get(key)
        args += [option, value] if option else ["--conf", f"{key}={value}"]
    return args


def build_zip(target: Path) -> Path:
    """Zip the ``femo`` package and the ``sql`` folder (sources only) into ``target``."""
    package = Path(__file__).resolve().parents[1]  # femo/: this module is femo/platform/submit.py
    sql = Path(str(sql_root()))
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".tmp", delete=False) as handle:
        tmp = Path(handle.name)
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for root, pattern in ((package, "*.py"), (sql, "*.sql")):
            for path in sorted(root.rglob(pattern)):
                archive.write(path, Path(root.name) / path.relative_to(root))
    tmp.replace(target)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for ``spark-submit.sh``."""
    outer = argparse.ArgumentParser(prog="python -m femo.platform.submit")
    outer.add_argument("--zip", type=Path, required=True, help="where to write femo.zip")
    outer.add_argument("--log4j", help="log4j2.properties for the driver")
    outer.add_argument(
        "--env", type=Path, help="where to write NAME=VALUE lines for the driver's environment"
    )
    outer.add_argument("job_args", nargs=argparse.REMAINDER)
    opts = outer.parse_args(argv)
    job_args = opts.job_args[1:] if opts.job_args[:1] == ["--"] else opts.job_args
    parsed, _ = base_parser(None, add_help=False).parse_known_args(job_args)
    try:
        settings = settings_from_args(parsed)
        args = submit_args(settings, opts.log4j)
    except FemoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_code(exc) or EXIT_USAGE
    build_zip(opts.zip)
    if opts.env is not None:
        lines = (f"{name}={value}\n" for name, value in spark_environment(settings).items())
        opts.env.write_text("".join(lines), encoding="utf-8")
    sys.stdout.write("\0".join(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
