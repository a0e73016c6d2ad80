"""Clean the "Emotions in everyday life" CSV into femo.everyday_emotions.

Rows with a blank or missing cell, malformed rows and bad values go to femo.quarantine with a
reason (incomplete_row, malformed_row, bad_value); the summary line counts them. Re-running on
the same file writes nothing. The study: Trampe, Quoidbach & Taquet (2015), PLoS ONE 10(12):
e0145450, https://doi.org/10.1371/journal.pone.0145450 (69,544 rows, 21 columns).
"""

from __future__ import annotations

import argparse
import uuid

from femo.platform.catalog import ensure_catalog, register_source
from femo.platform.job import Job
from femo.platform.leases import held
from femo.sources.everyday import FIRST_DAYS, ingest_everyday

#: The source id the study's file is seeded under (sql/seed/sources.sql).
DEFAULT_SOURCE = "everyday_emotions"


class IngestEveryday(Job):
    """``./spark-submit.sh jobs/ingest_everyday.py --path CSV``"""

    description = __doc__

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--path", required=True, help="the study's CSV file")
        parser.add_argument(
            "--source", default=DEFAULT_SOURCE, help=f"source id (default {DEFAULT_SOURCE})"
        )
        parser.add_argument(
            "--first-day",
            choices=FIRST_DAYS,
            default="monday",
            help="what Day = 1 means if the file numbers weekdays 1-7 "
            "(default monday, ISO 8601; names like Monday or Mon are always accepted)",
        )
        parser.add_argument(
            "--strict", action="store_true", help="exit 1 when any row was quarantined"
        )

    def run(self, args: argparse.Namespace) -> int:
        spark, database = self.spark, self.settings.catalog.database
        ensure_catalog(spark, self.settings)
        with held(spark, self.settings, "ingest_everyday", [args.source]):
            register_source(spark, database, args.source, "csv", args.path)
            summary = ingest_everyday(
                spark,
                database,
                args.source,
                args.path,
                run_id=uuid.uuid4().hex,
                first_day=args.first_day,
            )
        self.say(summary.line())
        if args.strict and summary.dropped:
            return 1
        changed = summary.written or summary.quarantine_written or summary.stale_removed
        return self.finished(args, idle=not changed)


if __name__ == "__main__":
    raise SystemExit(IngestEveryday.main(prog="jobs/ingest_everyday.py"))
