"""Create the femo database and its dimension tables (emotions, sources). Idempotent."""

from __future__ import annotations

import argparse

from femo.platform.catalog import init_catalog
from femo.platform.job import Job


class InitCatalog(Job):
    """``./spark-submit.sh jobs/init_catalog.py``"""

    description = __doc__

    def run(self, args: argparse.Namespace) -> int:
        self.say(init_catalog(self.spark, self.settings).line())
        return 0


if __name__ == "__main__":
    raise SystemExit(InitCatalog.main(prog="jobs/init_catalog.py"))
