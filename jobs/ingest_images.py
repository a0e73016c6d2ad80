"""Ingest an image collection into femo.images; rejected inputs go to femo.quarantine.

Layouts: folders (<root>/<label>/* or <root>/<split>/<label>/*) and fer_csv (fer2013.csv).
Re-running on the same input writes nothing; new files are ingested, known ones skipped.
"""

from __future__ import annotations

import argparse
import uuid

from femo.ingest.layout import SPLIT_FROM
from femo.ingest.run import LAYOUTS, ingest, inspect_options
from femo.platform.catalog import ensure_catalog, refresh_views_after, register_source
from femo.platform.job import Job
from femo.platform.leases import held

#: The sources table's kind for each layout.
KIND = {"folders": "image_folders", "fer_csv": "fer_csv"}


class IngestImages(Job):
    """``./spark-submit.sh jobs/ingest_images.py --source NAME --path PATH``"""

    description = __doc__

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--source", required=True, help="source id, e.g. fer2013")
        parser.add_argument("--path", required=True, help="collection root, or the CSV file")
        parser.add_argument("--layout", choices=LAYOUTS, default="folders")
        parser.add_argument(
            "--split-from",
            choices=SPLIT_FROM,
            default=None,
            help="path (folders default), usage (fer_csv default) or none",
        )
        parser.add_argument(
            "--strict", action="store_true", help="exit 1 when anything was quarantined"
        )

    def run(self, args: argparse.Namespace) -> int:
        spark, settings = self.spark, self.settings
        database = settings.catalog.database
        split_from = args.split_from or ("usage" if args.layout == "fer_csv" else "path")
        ensure_catalog(spark, settings)
        guards = settings.ingest
        with held(spark, settings, "ingest_images", [args.source]):
            register_source(spark, database, args.source, KIND[args.layout], args.path)
            summary = ingest(
                spark,
                database,
                args.source,
                args.path,
                args.layout,
                lambda: inspect_options(spark, database, args.path, split_from, guards),
                guards,
                run_id=uuid.uuid4().hex,
            )
        refresh_views_after(spark, database, args.source, summary.accepted)
        self.say(summary.line())
        if args.strict and summary.quarantined:
            return 1
        return self.finished(args, idle=summary.skipped == summary.listed)


if __name__ == "__main__":
    raise SystemExit(IngestImages.main(prog="jobs/ingest_images.py"))
