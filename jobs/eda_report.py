"""Write the EDA report: one self-contained HTML page of the insight queries, with charts.

Every number comes from a query in sql/insights/; the page lands in <home>/reports/eda.html
unless --output names another file. Re-running replaces the page (written atomically). A section
whose query fails shows why on the page, and the job then exits 1 naming the failed sections.
"""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path

from femo.analytics.report import SECTIONS, collect, render_html
from femo.platform.catalog import set_current_database
from femo.platform.errors import FemoError, RunFailedError
from femo.platform.files import write_atomic
from femo.platform.job import Job
from femo.platform.settings import is_uri


class EdaReport(Job):
    """``./spark-submit.sh jobs/eda_report.py [--output FILE]``"""

    description = __doc__

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--output", type=Path, default=None, help="HTML file (default <home>/reports/eda.html)"
        )

    def run(self, args: argparse.Namespace) -> int:
        settings = self.settings
        output = args.output
        if output is None:
            if is_uri(settings.reports_dir) and not settings.reports_dir.startswith("file:"):
                raise FemoError(
                    f"reports_dir {settings.reports_dir} is not a local folder: name a local "
                    "file with --output"
                )
            output = Path(settings.reports_dir.removeprefix("file:")) / "eda.html"
        set_current_database(self.spark, settings)
        results = collect(self.spark, SECTIONS)
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        page = render_html(
            results,
            "femo: exploratory data analysis",
            f"database {settings.catalog.database}, warehouse {settings.warehouse_dir}; "
            f"generated {stamp}",
        )
        write_atomic(output, page.encode("utf-8"))
        filled = sum(1 for r in results if r.frame is not None and not r.frame.empty)
        failed = [r.section.title for r in results if r.frame is None]
        self.say(
            f"report: {output} ({len(results)} sections, {filled} with data"
            f"{', failed: ' + '; '.join(failed) if failed else ''})"
        )
        if failed:  # the page is written, but a scheduler must see that it is incomplete
            raise RunFailedError(
                f"{len(failed)} of {len(results)} report sections failed: {'; '.join(failed)} "
                f"(the page says why for each)"
            )
        return 0


if __name__ == "__main__":
    raise SystemExit(EdaReport.main(prog="jobs/eda_report.py"))
