"""Command-line parsing shared by every job, kept apart from session building."""

from __future__ import annotations

import argparse
import os

from femo.settings import Settings, load_settings

#: Environment variable naming the settings file used when ``--conf`` is not given.
CONF_ENV = "FEMO_CONF"


def base_parser(
    description: str | None, prog: str | None = None, *, add_help: bool = True
) -> argparse.ArgumentParser:
    """A parser with the options every femo job accepts: ``--conf`` and repeatable ``--set``."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        add_help=add_help,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--conf",
        metavar="FILE",
        default=os.environ.get(CONF_ENV) or None,
        help=f"settings YAML (default: ${CONF_ENV}, else built-in defaults)",
    )
    parser.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        dest="overrides",
        help="override one setting, e.g. --set spark.shuffle_partitions=4 (repeatable)",
    )
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings for parsed arguments: ``--conf`` file, then the environment, then ``--set``."""
    return load_settings(args.conf, args.overrides)
