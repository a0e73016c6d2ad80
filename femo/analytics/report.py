"""The EDA report: named ``sql/`` queries rendered as one self-contained HTML page.

Every number in the report comes from a query file: a :class:`Section` names the query, its
parameters and how to chart the result; :func:`collect` runs the queries (the only Spark part),
:func:`render_html` turns the results into HTML with matplotlib charts inlined as PNG. Rendering
is pure (pandas in, text out) and tested without Spark.
"""

from __future__ import annotations

import base64
import html
import io
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

import pandas as pd
from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException

from femo.platform.errors import SqlFileError
from femo.platform.job import one_line
from femo.platform.sql import describe, read_sql, run_sql

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

ChartKind = Literal["bar", "barh", "line"]


@dataclass(frozen=True)
class Chart:
    """How to plot a query's result: ``x`` against each of ``y`` (one panel per column), one
    series per distinct value of the ``group`` columns."""

    kind: ChartKind
    x: str
    y: tuple[str, ...]
    group: tuple[str, ...] = ()
    ylabel: str = ""


@dataclass(frozen=True)
class Section:
    """One part of the report: a query of ``sql/`` and how to show its result."""

    title: str
    query: str
    params: Mapping[str, Any] = field(default_factory=dict)
    chart: Chart | None = None
    max_rows: int = 25
    #: What to run when the result is empty, shown instead of an empty table.
    hint: str = ""


@dataclass(frozen=True)
class Result:
    """A section's query result (``frame``), or why there is none (``error``)."""

    section: Section
    frame: pd.DataFrame | None
    error: str = ""


_INGEST: Final = "run jobs/ingest_images.py"
_FACES: Final = "run jobs/detect_faces.py after ingesting images"
_EVERYDAY: Final = "run jobs/ingest_everyday.py --path <the study's CSV>"

#: The report's sections, in order.
SECTIONS: Final[tuple[Section, ...]] = (
    Section(
        "Class balance per source and split",
        "insights/class_balance_by_split",
        chart=Chart("bar", "emotion", ("images",), ("source", "split")),
        max_rows=60,
        hint=_INGEST,
    ),
    Section(
        "Images per emotion",
        "insights/images_per_emotion",
        chart=Chart("bar", "emotion", ("images",)),
        hint=_INGEST,
    ),
    Section(
        "Image sizes",
        "insights/counts_by_size",
        max_rows=15,
        hint=_INGEST,
    ),
    Section(
        "Aspect ratios",
        "insights/aspect_ratio_summary",
        chart=Chart("barh", "source", ("images",), ("fitness",)),
        hint=_INGEST,
    ),
    Section(
        "Quality per emotion",
        "insights/quality_by_emotion",
        chart=Chart(
            "bar",
            "emotion",
            ("brightness_median", "contrast_median", "sharpness_median"),
            ("source",),
        ),
        max_rows=40,
        hint=_INGEST,
    ),
    Section(
        "Face detection rate per source and emotion",
        "insights/face_detection_rate",
        chart=Chart("bar", "emotion", ("detection_rate",), ("source",)),
        max_rows=40,
        hint=_FACES,
    ),
    Section("Duplicates", "insights/duplicate_summary", hint=_INGEST),
    Section(
        "Label conflicts (same bytes, different emotions)",
        "insights/label_conflicts",
        max_rows=15,
        hint=_INGEST,
    ),
    Section(
        "Quarantine by reason",
        "insights/quarantine_by_reason",
        chart=Chart("barh", "reason", ("files",), ("source",)),
        max_rows=40,
        hint="nothing was rejected yet",
    ),
    Section(
        "Everyday emotions: frequency",
        "insights/everyday_emotion_frequency",
        chart=Chart("barh", "emotion", ("share",)),
        hint=_EVERYDAY,
    ),
    Section(
        "Everyday emotions: positive vs negative by hour",
        "insights/everyday_valence_by_hour",
        chart=Chart("line", "hour", ("positive_share", "negative_share")),
        hint=_EVERYDAY,
    ),
    Section(
        "Everyday emotions: positive vs negative by weekday",
        "insights/everyday_valence_by_weekday",
        chart=Chart("bar", "weekday", ("positive_share", "negative_share")),
        hint=_EVERYDAY,
    ),
)


def collect(
    spark: SparkSession, sections: Iterable[Section] = SECTIONS, max_rows: int | None = None
) -> list[Result]:
    """Run every section's query. A query that fails (a table or query not there yet, say)
    becomes a result with an error message, not a failed report. ``max_rows`` caps what is
    fetched."""
    results = []
    for section in sections:
        try:
            frame = run_sql(spark, section.query, section.params)
            if max_rows is not None:
                frame = frame.limit(max_rows)
            results.append(Result(section, frame.toPandas()))
        except (PySparkException, Py4JJavaError, SqlFileError) as exc:
            log.warning("report section %s failed: %s", section.title, one_line(exc))
            results.append(Result(section, None, one_line(exc)))
    return results


def _labels(frame: pd.DataFrame, columns: Sequence[str]) -> pd.Series[str]:
    return frame[list(columns)].astype(str).agg(" / ".join, axis=1)


def chart_png(frame: pd.DataFrame, chart: Chart, title: str = "") -> bytes:
    """A PNG of ``frame`` plotted per ``chart`` (matplotlib's Agg backend, no display).

    Raises:
        KeyError: a column the chart names is not in ``frame``.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    missing = [c for c in (chart.x, *chart.y, *chart.group) if c not in frame.columns]
    if missing:
        raise KeyError(f"columns {missing} not in the result ({list(frame.columns)})")
    x = frame[chart.x].astype(str)
    order = list(dict.fromkeys(x))
    series = _labels(frame, chart.group) if chart.group else pd.Series("", index=frame.index)
    groups = list(dict.fromkeys(series))
    panels = len(chart.y)
    fig, axes = plt.subplots(1, panels, figsize=(min(6 * panels, 16), 4), squeeze=False)
    try:
        for ax, column in zip(axes[0], chart.y, strict=True):
            table = (
                pd.DataFrame({"x": x, "series": series, "y": frame[column]})
                .pivot_table(index="x", columns="series", values="y", aggfunc="sum")
                .reindex(index=order, columns=groups)
            )
            table.plot(kind=chart.kind, ax=ax, legend=bool(chart.group))
            ax.set_title(column)
            ax.set_xlabel(chart.x if chart.kind != "barh" else chart.ylabel)
            if chart.kind == "barh":
                ax.set_ylabel(chart.x)
            if chart.group:
                ax.legend(fontsize="small")
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80)
        return buffer.getvalue()
    finally:
        plt.close(fig)


_STYLE: Final = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { border-bottom: 2px solid #444; }
h2 { margin-top: 2.2em; border-bottom: 1px solid #bbb; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.8em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f0f0f0; }
.query { color: #555; font-size: 0.85em; }
.note { color: #8a5a00; }
img { max-width: 100%; }
"""


def _query_line(section: Section) -> str:
    params = ", ".join(f"{k}={v!r}" for k, v in section.params.items())
    text = f"sql/{section.query}.sql" + (f" ({params})" if params else "")
    return f'<p class="query">query: <code>{html.escape(text)}</code></p>'


def render_section(result: Result) -> str:
    """The HTML of one section: title, what the query answers, chart and table."""
    section = result.section
    parts = [f"<h2>{html.escape(section.title)}</h2>"]
    try:
        about = describe(read_sql(section.query)).title
    except ValueError:
        about = ""
    if about:
        parts.append(f"<p>{html.escape(about)}</p>")
    parts.append(_query_line(section))
    frame = result.frame
    if frame is None:
        parts.append(f'<p class="note">No result: {html.escape(result.error)}</p>')
        return "\n".join(parts)
    if frame.empty:
        hint = f" ({html.escape(section.hint)})" if section.hint else ""
        parts.append(f'<p class="note">No rows yet{hint}.</p>')
        return "\n".join(parts)
    if section.chart is not None:
        try:
            png = chart_png(frame, section.chart)
            data = base64.b64encode(png).decode("ascii")
            parts.append(
                f'<img alt="{html.escape(section.title)}" src="data:image/png;base64,{data}">'
            )
        except KeyError as exc:
            parts.append(f'<p class="note">No chart: {html.escape(str(exc))}</p>')
    shown = frame.head(section.max_rows)
    parts.append(shown.to_html(index=False, escape=True, na_rep="", border=0))
    if len(frame) > len(shown):
        parts.append(f"<p>{len(shown)} of {len(frame)} rows shown.</p>")
    return "\n".join(parts)


def render_html(results: Sequence[Result], title: str, subtitle: str = "") -> str:
    """The whole report as one self-contained HTML document (no external files or scripts)."""
    toc = "".join(
        f'<li><a href="#s{i}">{html.escape(r.section.title)}</a></li>'
        for i, r in enumerate(results)
    )
    body = "\n".join(
        f'<section id="s{i}">\n{render_section(r)}\n</section>' for i, r in enumerate(results)
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n<p>{html.escape(subtitle)}</p>\n<ul>{toc}</ul>\n"
        f"{body}\n</body>\n</html>\n"
    )
