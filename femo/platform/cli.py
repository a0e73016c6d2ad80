"""Command-line parsing shared by every job, kept apart from session building."""

from __future__ import annotations

import argparse

from femo.platform.errors import EXIT_NOTHING_TO_DO
from femo.platform.settings import CONF_ENV, Settings, add_settings_arguments, load_settings

__all__ = ["CONF_ENV", "base_parser", "settings_from_args"]


def base_parser(
    description: str | None, prog: str | None = None, *, add_help: bool = True
) -> argparse.ArgumentParser:
    """A parser with the options every femo job accepts: ``--conf``, repeatable ``--set`` and
    ``--signal-idle``."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        add_help=add_help,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_settings_arguments(parser)
    parser.add_argument(
        "--signal-idle",
        action="store_true",
        help=f"exit {EXIT_NOTHING_TO_DO} instead of 0 when the run found nothing to do (for "
        "schedulers that skip on it, such as Airflow's BashOperator)",
    )
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings for parsed arguments: ``--conf`` file, then the environment, then ``--set``."""
    return load_settings(args.conf, args.overrides)
