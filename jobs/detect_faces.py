"""Find faces in femo.images with OpenCV's Haar cascade and write femo.faces with crops.

Per-source policy (settings faces.policies): detect, or whole_image for already-cropped faces
such as FER-2013. Images already done under the current detector version are skipped; new
parameters add a new version beside the old one (view faces_current shows the latest).
"""

from __future__ import annotations

import argparse
import uuid

from femo.faces.detection import detect_faces
from femo.platform.catalog import ensure_catalog, registered_sources
from femo.platform.job import Job
from femo.platform.leases import held


class DetectFaces(Job):
    """``./spark-submit.sh jobs/detect_faces.py [--source NAME ...]``"""

    description = __doc__

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--source",
            action="append",
            default=[],
            help="only images of this source (repeatable; default: all)",
        )

    def run(self, args: argparse.Namespace) -> int:
        database = self.settings.catalog.database
        ensure_catalog(self.spark, self.settings)
        sources = args.source or registered_sources(self.spark, database)
        with held(self.spark, self.settings, "detect_faces", sources):
            summary = detect_faces(
                self.spark, database, self.settings.faces, args.source, run_id=uuid.uuid4().hex
            )
        self.say(summary.line())
        return self.finished(args, idle=summary.images == 0)


if __name__ == "__main__":
    raise SystemExit(DetectFaces.main(prog="jobs/detect_faces.py"))
