"""The EDA report: pure rendering, and jobs/eda_report.py on a generated collection."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from bs4 import BeautifulSoup
from pyspark.sql import SparkSession

from femo.analytics.report import SECTIONS, Chart, Result, Section, chart_png, render_html
from femo.ingest.sample import write_images
from femo.platform.errors import EXIT_FAILED
from femo.platform.settings import Settings
from femo.platform.sql import describe, insights, read_sql, run_sql
from jobs import eda_report
from jobs.eda_report import EdaReport
from jobs.ingest_images import IngestImages

from .conftest import TEST_OVERRIDES

SOURCE = "report_sample"


def decode_png(data: bytes) -> np.ndarray:  # type: ignore[type-arg]
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    return img


def test_every_section_names_an_existing_query_and_its_chart_columns() -> None:
    for section in SECTIONS:
        text = read_sql(section.query)  # raises when the file is missing
        assert describe(text).title, f"{section.query} has no title comment"


def test_chart_has_one_panel_per_measure() -> None:
    frame = pd.DataFrame(
        {"emotion": ["happy", "sad", "happy"], "split": ["train", "train", "test"], "a": [3, 1, 2]}
    )
    frame["b"] = frame["a"] * 2
    one = decode_png(chart_png(frame, Chart("bar", "emotion", ("a",), ("split",))))
    two = decode_png(chart_png(frame, Chart("bar", "emotion", ("a", "b"), ("split",))))
    assert two.shape[1] > 1.5 * one.shape[1]


def test_chart_names_missing_columns() -> None:
    with pytest.raises(KeyError, match="nope"):
        chart_png(pd.DataFrame({"x": [1]}), Chart("bar", "x", ("nope",)))


def test_render_escapes_values_and_reports_empty_and_failed_sections() -> None:
    table = Section("Rows", "insights/quarantine_by_reason", max_rows=2, hint="run X")
    frame = pd.DataFrame({"source": ["<script>alert(1)</script>", "b", "c"], "files": [1, 2, 3]})
    page = render_html(
        [
            Result(table, frame),
            Result(table, frame.iloc[0:0]),
            Result(table, None, "[TABLE_OR_VIEW_NOT_FOUND] nope"),
        ],
        "title",
    )
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert "2 of 3 rows shown" in page
    assert "No rows yet (run X)" in page
    assert "No result: [TABLE_OR_VIEW_NOT_FOUND] nope" in page
    assert "sql/insights/quarantine_by_reason.sql" in page
    assert 'src="http' not in page  # self-contained


def section_table(soup: BeautifulSoup, title: str) -> pd.DataFrame:
    """The HTML table under the section titled ``title``, as strings."""
    heading = soup.find("h2", string=title)
    assert heading is not None, title
    table = heading.find_parent("section").find("table")
    assert table is not None, f"no table under {title}"
    header = [th.get_text() for th in table.find("thead").find_all("th")]
    rows = [
        [td.get_text() for td in tr.find_all("td")] for tr in table.find("tbody").find_all("tr")
    ]
    return pd.DataFrame(rows, columns=header)


@pytest.fixture(scope="module")
def report(
    spark: SparkSession, catalog: Settings, tmp_path_factory: pytest.TempPathFactory
) -> BeautifulSoup:
    root = tmp_path_factory.mktemp("report-images")
    write_images(root, per_class=4)
    parser = argparse.ArgumentParser()
    IngestImages.add_arguments(parser)
    args = parser.parse_args(["--source", SOURCE, "--path", str(root)])
    assert IngestImages(catalog, spark, out=io.StringIO()).run(args) == 0

    output = Path(catalog.home) / "reports" / "eda.html"
    out = io.StringIO()
    parser = argparse.ArgumentParser()
    EdaReport.add_arguments(parser)
    assert EdaReport(catalog, spark, out=out).run(parser.parse_args([])) == 0
    assert out.getvalue().startswith(f"report: {output} ({len(SECTIONS)} sections")
    return BeautifulSoup(output.read_text(encoding="utf-8"), "html.parser")


def test_report_class_balance_is_the_collections(report: BeautifulSoup) -> None:
    table = section_table(report, "Class balance per source and split")
    mine = table[table["source"] == SOURCE]
    counts = {(r.split, r.emotion): int(r.images) for r in mine.itertuples()}
    # write_images(per_class=4): 4 train and 2 test files per class; happy gains two photos,
    # a 3-equal-channel PNG and a PNG named .jpg, sad the twin of a happy file.
    train = {"angry": 4, "disgust": 4, "fear": 4, "happy": 8, "sad": 5, "surprise": 4}
    expected = {("train", e): n for e, n in {**train, "neutral": 4}.items()}
    expected.update({("test", e): 2 for e in train | {"neutral": 0}})
    assert counts == expected


def test_report_has_charts_quarantine_and_conflicts(report: BeautifulSoup) -> None:
    assert len(report.find_all("img")) >= 4
    quarantine = section_table(report, "Quarantine by reason")
    reasons = set(quarantine[quarantine["source"] == SOURCE]["reason"])
    assert {"empty_file", "truncated", "not_an_image", "unknown_label"} <= reasons
    duplicates = section_table(report, "Duplicates")
    row = duplicates[duplicates["source"] == SOURCE].iloc[0]
    assert (int(row.duplicated_images), int(row.label_conflicts)) == (1, 1)


def test_report_rerun_replaces_the_page(
    spark: SparkSession, catalog: Settings, report: BeautifulSoup, tmp_path: Path
) -> None:
    target = tmp_path / "r" / "eda.html"
    target.parent.mkdir()
    target.write_text("the page an earlier run left", encoding="utf-8")
    parser = argparse.ArgumentParser()
    EdaReport.add_arguments(parser)
    job = EdaReport(catalog, spark, out=io.StringIO())
    assert job.run(parser.parse_args(["--output", str(target)])) == 0
    assert [p.name for p in target.parent.iterdir()] == ["eda.html"]  # no temp file left
    page = BeautifulSoup(target.read_text(encoding="utf-8"), "html.parser")
    sections = [[h.get_text() for h in soup.find_all("h2")] for soup in (page, report)]
    assert page.title == report.title and sections[0] == sections[1]


def test_a_failed_section_fails_the_job_naming_it(
    spark: SparkSession,
    catalog: Settings,
    report: BeautifulSoup,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    broken = Section("Emotions of a table not there", "insights/no_such_insight")
    monkeypatch.setattr(eda_report, "SECTIONS", (SECTIONS[0], broken))
    target = tmp_path / "eda.html"
    argv = ["--output", str(target), "--set", f"home={catalog.home}"]
    argv += [a for o in TEST_OVERRIDES for a in ("--set", o)]
    assert EdaReport.main(argv) == EXIT_FAILED
    out, err = capsys.readouterr()
    assert "1 with data, failed: Emotions of a table not there" in out
    assert err.strip() == (
        "error: 1 of 2 report sections failed: Emotions of a table not there "
        "(the page says why for each)"
    )
    page = BeautifulSoup(target.read_text(encoding="utf-8"), "html.parser")
    assert [h.get_text() for h in page.find_all("h2")][-1] == "Emotions of a table not there"


def insight(spark: SparkSession, name: str, **params: object) -> pd.DataFrame:
    return run_sql(spark, f"insights/{name}", params).toPandas()


def test_every_insight_runs_with_its_declared_defaults(spark: SparkSession, report: object) -> None:
    names = insights()
    assert len(names) >= 20 and "insights/images_of_source" in names  # the folder was found
    for name in names:
        run_sql(spark, name).limit(1).collect()  # raises on a bad file or a missing parameter


def test_seed_questions_answer_for_the_generated_collection(
    spark: SparkSession, report: object
) -> None:
    # write_images(per_class=4): 47 images; 44 of them 48x48 gray JPEGs/PNGs, two 224-px colour
    # photos and one 64-px picture with three equal channels (grayscale by its pixels).
    assert len(insight(spark, "images_of_source", source=SOURCE)) == 47
    side = insight(spark, "images_of_side", side=48)
    assert (side["source"] == SOURCE).sum() == 44
    gray = insight(spark, "grayscale_images")
    assert (gray["source"] == SOURCE).sum() == 45
    sizes = insight(spark, "counts_by_size")
    mine = sizes[sizes["source"] == SOURCE]
    assert {(r.height, r.width): r.images for r in mine.itertuples()} == {
        (48, 48): 44,
        (224, 224): 2,
        (64, 64): 1,
    }
    joy = insight(spark, "images_of_emotion", emotion="Joy")  # a synonym, any case
    assert (joy["source"] == SOURCE).sum() == 10 and set(joy["emotion"]) == {"happy"}
    assert joy["images_of_emotion"].iloc[0] == len(joy)
    fitness = insight(spark, "aspect_ratio_fitness")
    assert set(fitness[fitness["source"] == SOURCE]["fitness"]) == {"should_be_fine"}
    first = insight(spark, "nth_image", n=1)
    assert list(first["position"]) == [1]
    assert insight(spark, "nth_image", n=10**6).empty
    per_emotion = insight(spark, "images_per_emotion")
    assert list(per_emotion["emotion_id"]) == list(range(8))  # contempt listed, maybe with 0
    assert (
        per_emotion["images"].sum()
        == spark.sql(
            "SELECT count(*) FROM all_images a JOIN emotions e ON a.label_id = e.emotion_id"
        ).first()[0]
    )
    total = per_emotion["images"].sum()
    assert per_emotion["share"].tolist() == [round(n / total, 4) for n in per_emotion["images"]]


def test_nth_image_numbers_every_source_in_one_order(
    spark: SparkSession, catalog: Settings, report: object, tmp_path: Path
) -> None:
    # Numbered per source and offset by the sources before it: the same as one global order.
    write_images(tmp_path, per_class=1)
    parser = argparse.ArgumentParser()
    IngestImages.add_arguments(parser)
    args = parser.parse_args(["--source", "report_second", "--path", str(tmp_path)])
    assert IngestImages(catalog, spark, out=io.StringIO()).run(args) == 0
    ordered = (
        spark.table("all_images")
        .select("source", "path")
        .toPandas()
        .sort_values(["source", "path"], kind="stable")
        .reset_index(drop=True)
    )
    assert ordered["source"].nunique() >= 2  # the offsets are exercised
    for n in sorted({1, len(ordered) // 2, len(ordered) - 1, len(ordered)}):
        row = insight(spark, "nth_image", n=n)
        assert list(row["position"]) == [n]
        assert (row["source"].iloc[0], row["path"].iloc[0]) == tuple(ordered.iloc[n - 1])
