"""Run one SQL statement against the femo catalog and print the result.

Examples:
  jobs/query.py --sql "SELECT name, synonyms FROM emotions"
  jobs/query.py --file sql/insights/images_per_emotion_and_split.sql --param source=fer2013
  jobs/query.py --list      (the insight queries, what they answer and their parameters)

Parameters a file declares in its header (``-- :name = default  meaning``) take their default
unless ``--param`` gives them.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from femo.analytics.query import FORMATS, render, run_query
from femo.platform.catalog import set_current_database
from femo.platform.errors import FemoError
from femo.platform.job import Job
from femo.platform.settings import parse_override
from femo.platform.sql import SqlDoc, bind, insights


def listing(docs: dict[str, SqlDoc]) -> str:
    """One paragraph per query: ``sql/<name>.sql``, its title, its parameters and defaults."""
    blocks = []
    for name, doc in docs.items():
        lines = [f"sql/{name}.sql", f"    {doc.title}"]
        lines += [f"    --param {p.name}={p.default!r}  {p.doc}".rstrip() for p in doc.params]
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


class Query(Job):
    """``./spark-submit.sh jobs/query.py --sql TEXT | --file FILE``"""

    description = __doc__
    log_level = logging.WARNING  # stdout carries the result

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        what = parser.add_mutually_exclusive_group(required=True)
        what.add_argument("--sql", help="the statement to run")
        what.add_argument("--file", type=Path, help="a .sql file holding one statement")
        what.add_argument(
            "--list", action="store_true", help="list the insight queries of sql/insights/"
        )
        parser.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="bind :NAME in the statement (repeatable); 3 is a number, " "'3' a string",
        )
        parser.add_argument("--format", choices=FORMATS, default="table")
        parser.add_argument(
            "--limit", type=int, default=None, help="print at most this many rows (default: all)"
        )

    def run(self, args: argparse.Namespace) -> int:
        if args.list:
            self.say(listing(insights()))
            return 0
        if args.file is not None:
            try:
                text = args.file.read_text(encoding="utf-8")
            except OSError as exc:
                raise FemoError(f"cannot read {args.file}: {exc.strerror}") from exc
        else:
            text = args.sql
        params = bind(text, dict(parse_override(p, "--param") for p in args.param))
        set_current_database(self.spark, self.settings)
        frame = run_query(self.spark, text, params)
        if args.limit is not None:
            frame = frame.limit(args.limit)
        self.say(render(frame.toPandas(), args.format))
        return 0


if __name__ == "__main__":
    raise SystemExit(Query.main(prog="jobs/query.py"))
