"""Read the iMotions FACS guide into femo.action_units and femo.emotion_action_units.

The page (fetched with --url, default the published guide, or a saved copy with --html) is
parsed in full before anything is written: a page whose tables are missing, whose headers
changed or whose rows cannot be read fails with a message and writes nothing. The tables mirror
the page: re-running on the same page commits nothing; changed rows are updated, and action
units the page no longer lists are deleted.
"""

from __future__ import annotations

import argparse
import uuid
from datetime import UTC, datetime
from pathlib import Path

from femo.ingest.layout import LabelMap
from femo.platform.catalog import ensure_catalog, label_names, register_source
from femo.platform.errors import FemoError
from femo.platform.job import Job
from femo.platform.leases import held
from femo.sources.facs import (
    DEFAULT_URL,
    SOURCE_ID,
    SOURCE_KIND,
    facs_rows,
    fetch_page,
    parse_page,
    write_facs,
)


class ScrapeFacs(Job):
    """``./spark-submit.sh jobs/scrape_facs.py [--url URL | --html FILE]``"""

    description = __doc__

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        where = parser.add_mutually_exclusive_group()
        where.add_argument("--url", default=None, help=f"the page to fetch (default {DEFAULT_URL})")
        where.add_argument(
            "--html", type=Path, default=None, help="a saved copy of the page instead of fetching"
        )

    def run(self, args: argparse.Namespace) -> int:
        settings = self.settings
        database = settings.catalog.database
        # the whole page is read before Spark is touched: a broken page writes nothing
        if args.html is not None:
            try:
                html = args.html.read_bytes()
            except OSError as exc:
                raise FemoError(f"cannot read {args.html}: {exc.strerror}") from exc
            page = parse_page(html, args.html.resolve().as_uri(), saved_copy=True)
        else:
            html, url = fetch_page(args.url or DEFAULT_URL, settings.http)
            page = parse_page(html, url)
        spark = self.spark
        ensure_catalog(spark, settings)
        labels = LabelMap.from_names(label_names(spark, database))
        rows = facs_rows(page, labels, datetime.now(UTC), uuid.uuid4().hex)
        with held(spark, settings, "scrape_facs", [SOURCE_ID]):
            register_source(spark, database, SOURCE_ID, SOURCE_KIND, page.source_url)
            summary = write_facs(spark, database, rows)
        self.say(summary.line())
        changes = (summary.action_units, summary.emotion_action_units)
        idle = not any(c.inserted or c.updated or c.deleted for c in changes)
        return self.finished(args, idle=idle)


if __name__ == "__main__":
    raise SystemExit(ScrapeFacs.main(prog="jobs/scrape_facs.py"))
