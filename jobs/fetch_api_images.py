"""Download face photos from an image API (pixabay) or a web image search (ddg) into the landing
zone, with a manifest row per image in femo.downloads and rejected answers in femo.quarantine.

Images land in <home>/landing/<source>/<emotion>/<id>.<ext>; ingest them with
  jobs/ingest_images.py --source <source> --path <home>/landing/<source>
The API key comes from the environment variable named by fetch.connectors.<source>.key_env
(PIXABAY_API_KEY, RAPIDAPI_KEY). Re-running fetches only what is missing.

Exit codes: 0 when images are there for the requested emotions (from this run or an earlier
one), even if some queries or downloads failed (each failure is an error line and a quarantine
row); 1 when nothing at all could be fetched; 2 for bad arguments, settings or a missing key.
"""

from __future__ import annotations

import argparse
import os
import uuid

from femo.platform.catalog import ensure_catalog, register_source
from femo.platform.job import Job
from femo.platform.leases import held
from femo.sources.connectors import REGISTRY, from_settings
from femo.sources.fetch import emotion_names, fetch_images, resolve_emotions


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


class FetchApiImages(Job):
    """``./spark-submit.sh jobs/fetch_api_images.py --source pixabay --emotions happy,sad``"""

    description = __doc__

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--source", required=True, choices=sorted(REGISTRY))
        parser.add_argument(
            "--emotions",
            required=True,
            help="comma-separated emotion names or synonyms, e.g. happy,sad,surprise",
        )
        parser.add_argument(
            "--per-emotion",
            type=_positive,
            default=None,
            metavar="N",
            help="images wanted per emotion (default: setting fetch.per_emotion)",
        )

    def run(self, args: argparse.Namespace) -> int:
        settings = self.settings
        per_emotion = args.per_emotion or settings.fetch.per_emotion
        connector = from_settings(args.source, settings.fetch, os.environ)
        spark, database = self.spark, settings.catalog.database
        ensure_catalog(spark, settings)
        labels, names = emotion_names(spark, database)
        targets = resolve_emotions(args.emotions.split(","), labels, names)
        with held(spark, settings, "fetch_api_images", [connector.name]):
            register_source(spark, database, connector.name, connector.kind, connector.home_url)
            summary = fetch_images(
                spark, settings, connector, targets, per_emotion, run_id=uuid.uuid4().hex
            )
        self.say(summary.line())
        code = summary.exit_code()
        if code:
            return code
        return self.finished(args, idle=not (summary.downloaded or summary.recovered))


if __name__ == "__main__":
    raise SystemExit(FetchApiImages.main(prog="jobs/fetch_api_images.py"))
