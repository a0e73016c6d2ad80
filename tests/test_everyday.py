"""jobs/ingest_everyday.py: the pure cleaner, the Spark job on generated files, the insights."""

from __future__ import annotations

import argparse
import gzip
import io
import json
import re
import shutil
import uuid
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import SparkSession

from femo.ingest.images import Rejection
from femo.ingest.sample import EVERYDAY_HEADER, EverydaySample, write_everyday_csv
from femo.platform.errors import FemoError, RunFailedError
from femo.platform.settings import Settings
from femo.sources.everyday import (
    BLANK,
    COLUMNS,
    KEPT,
    QUARANTINED,
    STUDY_EMOTIONS,
    HeaderError,
    Layout,
    Response,
    clean_frame,
    clean_line,
    ingest_everyday,
    name_rows,
    parse_header,
    weekday_number,
)
from jobs.ingest_everyday import IngestEveryday
from jobs.query import Query

from .conftest import own_database, run_job
from .submit import ROOT

HEADER_LINE = ",".join(EVERYDAY_HEADER)
LAYOUT = parse_header(HEADER_LINE)


def line(*, drop_last: bool = False, **cells: str) -> str:
    """A good data line (id 7, 14h, Wednesday, Joy only) with ``cells`` replaced by column."""
    values = {c: "0" for c in EVERYDAY_HEADER} | {"id": "7", "Hours": "14", "Day": "Wednesday"}
    values["Joy"] = "1"
    values.update(cells)
    fields = [values[c] for c in EVERYDAY_HEADER]
    return ",".join(fields[:-1] if drop_last else fields)


# The mapping -----------------------------------------------------------------------------


def test_mapping_covers_the_18_published_columns_with_their_valence() -> None:
    assert COLUMNS == EVERYDAY_HEADER
    assert len(STUDY_EMOTIONS) == 18
    by_valence = {
        valence: {e.name for e in STUDY_EMOTIONS if e.valence == valence}
        for valence in ("positive", "negative")
    }
    assert by_valence == {
        "positive": {"pride", "love", "hope", "gratitude", "joy", "satisfaction", "awe"}
        | {"amusement", "alertness"},
        "negative": {"anxiety", "disdain", "offense", "guilt", "disgust", "fear"}
        | {"embarrassment", "sadness", "anger"},
    }
    renamed = {e.original: e.name for e in STUDY_EMOTIONS if e.original.lower() != e.name}
    assert renamed == {"Ofense": "offense", "Embarassment": "embarrassment"}
    assert all(re.fullmatch(r"[a-z][a-z_]*", e.name) for e in STUDY_EMOTIONS)


def test_name_rows_link_study_emotions_to_femo_emotions() -> None:
    rows = {row[0]: row for row in name_rows({"joy": 3, "anger": 0, "disdain": 7, "sad": 4})}
    assert rows["joy"] == ("joy", "Joy", "positive", 5, 3)
    assert rows["offense"] == ("offense", "Ofense", "negative", 12, None)
    assert (rows["disdain"][4], rows["anger"][4], rows["sadness"][4]) == (7, 0, None)
    assert sorted(row[3] for row in rows.values()) == list(range(1, 19))


# The header ------------------------------------------------------------------------------


def test_header_as_published() -> None:
    assert parse_header(HEADER_LINE) == Layout(tuple(range(21)), 21, ",", "monday")


def test_header_tolerates_bom_quotes_case_semicolons_clean_names_and_extra_columns() -> None:
    quoted = ";".join(f'"{c.upper()}"' for c in EVERYDAY_HEADER)
    assert parse_header("\ufeff" + quoted) == Layout(tuple(range(21)), 21, ";", "monday")
    clean = HEADER_LINE.replace("Ofense", "Offense").replace("Embarassment", "embarrassment")
    assert parse_header(clean).positions == tuple(range(21))
    # R's write.csv adds an unnamed row-name column in front.
    layout = parse_header('"",' + HEADER_LINE, "sunday")
    assert (layout.positions, layout.width, layout.first_day) == (tuple(range(1, 22)), 22, "sunday")
    assert clean_line('"1",' + line(), layout) == clean_line(line(), LAYOUT)


def test_header_errors_name_the_problem() -> None:
    with pytest.raises(HeaderError, match="lacks Ofense, Anger"):
        parse_header(HEADER_LINE.replace(",Ofense", "").replace(",Anger", ""))
    with pytest.raises(HeaderError, match="column Joy appears 2 times"):
        parse_header(HEADER_LINE + ",joy")
    with pytest.raises(FemoError, match="first day 'friday'"):
        parse_header(HEADER_LINE, "friday")


# Rows ------------------------------------------------------------------------------------


def test_clean_row_keeps_its_values() -> None:
    flags = {"Pride": "1", "Joy": "0", "Ofense": "1", "Embarassment": "1", "Anger": "1"}
    assert clean_line(line(id="p-0042", Hours="0", Day=" Wed ", **flags), LAYOUT) == Response(
        id="p-0042",
        hour=0,
        day="Wed",
        weekday="Wednesday",
        weekday_no=3,
        felt=("pride", "offense", "embarrassment", "anger"),
    )


def test_quoted_fields_and_spreadsheet_numbers_are_accepted() -> None:
    quoted = ",".join(f'"{f}"' for f in line(Hours="23.0", Love="1.0").split(","))
    assert clean_line(quoted, LAYOUT) == Response(
        "7", 23, "Wednesday", "Wednesday", 3, ("love", "joy")
    )
    assert clean_line(line(Joy="0"), LAYOUT) == Response("7", 14, "Wednesday", "Wednesday", 3, ())


@pytest.mark.parametrize(
    ("text", "reason", "detail"),
    [
        (line(Joy=" "), "incomplete_row", "blank or missing: Joy"),
        (line(Hours=""), "incomplete_row", "blank or missing: Hours"),
        (line(Day="NA", Fear="nan"), "incomplete_row", "blank or missing: Day, Fear"),
        (line(id=" "), "incomplete_row", "blank or missing: id"),
        (line(Joy=" ", Hours="25"), "incomplete_row", "blank or missing: Joy; Hours='25' is"),
        (line(drop_last=True), "malformed_row", "20 fields, expected 21"),
        (line() + ",1", "malformed_row", "22 fields, expected 21"),
        (line(Day='"Wednesday'), "malformed_row", "not a CSV line"),
        (line(Fear="2"), "bad_value", "Fear='2' is not 0 or 1"),
        (line(Ofense="yes"), "bad_value", "Ofense='yes' is not 0 or 1"),
        (line(Joy="1.5"), "bad_value", "Joy='1.5' is not 0 or 1"),
        (line(Hours="25"), "bad_value", "Hours='25' is not an hour 0-23"),
        (line(Hours="-1"), "bad_value", "Hours='-1' is not an hour 0-23"),
        (line(Hours="7.5"), "bad_value", "Hours='7.5' is not an hour 0-23"),
        (line(Day="Funday"), "bad_value", "Day='Funday' is not a weekday"),
        (line(Day="0"), "bad_value", "Day='0' is not a weekday"),
        (line(Day="8"), "bad_value", "Day='8' is not a weekday"),
        (line(Hours="24", Anger="-1"), "bad_value", "Hours='24' is not an hour 0-23; Anger='-1'"),
    ],
)
def test_each_kind_of_dirt_has_its_reason(text: str, reason: str, detail: str) -> None:
    outcome = clean_line(text, LAYOUT)
    assert isinstance(outcome, Rejection)
    assert outcome.reason == reason
    assert outcome.detail.startswith(detail)


@pytest.mark.parametrize("text", ["", "   ", "\t", "\r"])
def test_blank_lines_are_no_rows(text: str) -> None:
    assert clean_line(text, LAYOUT) is None


@pytest.mark.parametrize(
    ("day", "first_day", "number"),
    [
        ("Monday", "monday", 1),
        ("mon", "monday", 1),
        ("SUNDAY", "monday", 7),
        ("Sun", "sunday", 7),  # names mean the same whatever the numbering
        ("thu", "monday", 4),
        ("1", "monday", 1),
        ("7", "monday", 7),
        ("3.0", "monday", 3),
        ("1", "sunday", 7),
        ("2", "sunday", 1),
        ("7", "sunday", 6),
        ("0", "monday", None),
        ("8", "sunday", None),
        ("Mo", "monday", None),
        ("Funday", "monday", None),
    ],
)
def test_weekday_names_and_numbers(day: str, first_day: str, number: int | None) -> None:
    assert weekday_number(day, first_day) == number


def test_clean_frame_numbers_lines_and_skips_the_header() -> None:
    lines = [HEADER_LINE, line(), "", line(Hours="25")]
    out = clean_frame(pd.DataFrame({"line": lines, "line_no": range(4)}), LAYOUT)
    assert list(out.line_no) == [2, 3, 4]
    assert list(out.status) == [KEPT, BLANK, QUARANTINED]
    assert out.reason[2] == "bad_value"
    assert list(out.felt[0]) == ["joy"]


def test_clean_frame_on_a_generated_file_matches_its_ground_truth(tmp_path: Path) -> None:
    sample = write_everyday_csv(tmp_path / "e.csv", rows=600, seed=3)
    lines = sample.path.read_text(encoding="utf-8").split("\n")[:-1]
    out = clean_frame(pd.DataFrame({"line": lines, "line_no": range(len(lines))}), LAYOUT)
    statuses = Counter(out.status)
    assert (statuses[KEPT], statuses[BLANK]) == (sample.kept, sample.blank_lines)
    bad = out[out.status == QUARANTINED]
    assert dict(zip(bad.line_no, bad.reason, strict=True)) == sample.bad_lines
    originals = {e.name: e.original for e in STUDY_EMOTIONS}
    kept = out[out.status == KEPT]
    felt = Counter(originals[name] for names in kept.felt for name in names)
    assert felt == sample.felt
    assert Counter(kept.weekday) == sample.weekdays


def test_generator_writes_every_kind_of_dirt(tmp_path: Path) -> None:
    sample = write_everyday_csv(tmp_path / "e.csv", rows=300)
    text = sample.path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == HEADER_LINE
    assert sample.dropped == {"incomplete_row": 5, "malformed_row": 3, "bad_value": 5}
    assert (sample.rows, sample.kept, sample.blank_lines) == (300, 287, 2)
    for dirt in (",Funday,", ",yes", ",25,", ",NA,", ",0,0,", ", ,", "\n\n", "\n   \n"):
        assert dirt in text, dirt
    assert re.search(r'^"\d+","\d+","\w+",', text, re.MULTILINE)  # a fully quoted row
    assert re.search(r'^\d+,\d+,"\w+,', text, re.MULTILINE)  # a quote that never closes


# Spark -----------------------------------------------------------------------------------


def ingest(spark: SparkSession, settings: Settings, *argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    IngestEveryday.add_arguments(parser)
    out = io.StringIO()
    code = IngestEveryday(settings, spark, out=out).run(parser.parse_args(list(argv)))
    return code, out.getvalue().strip()


def clean_into_tables(spark: SparkSession, source: str, path: Path) -> str:
    """The library call the job makes, without the job's catalog set-up (the catalog fixture
    did it): the summary line."""
    return ingest_everyday(spark, "femo", source, str(path), run_id=uuid.uuid4().hex).line()


def rows(spark: SparkSession, sql: str, **args: object) -> list:
    return spark.sql(sql, args=args).collect()


def versions(spark: SparkSession, *tables: str) -> dict[str, int]:
    return {t: spark.sql(f"DESCRIBE HISTORY femo.{t}").count() for t in tables}


def summary(source: str, sample: EverydaySample, written: tuple[int, int, int]) -> str:
    reasons = ", ".join(f"{r} {n}" for r, n in sorted(sample.dropped.items()))
    dropped = sum(sample.dropped.values())
    return (
        f"{source}: read {sample.rows} rows, kept {sample.kept}, dropped {dropped} to "
        f"quarantine ({reasons}), skipped {sample.blank_lines} blank lines; wrote {written[0]} "
        f"rows, {written[1]} quarantine rows, removed {written[2]} stale rows"
    )


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> EverydaySample:
    return write_everyday_csv(tmp_path_factory.mktemp("everyday") / "everyday.csv", rows=400)


@pytest.fixture(scope="module")
def first_run(spark: SparkSession, catalog: Settings, generated: EverydaySample) -> str:
    code, out = ingest(spark, catalog, "--path", str(generated.path), "--source", "everyday_gen")
    assert code == 0
    return out


def test_summary_counts_the_generated_composition(
    first_run: str, generated: EverydaySample
) -> None:
    dropped = sum(generated.dropped.values())
    assert first_run == summary("everyday_gen", generated, (generated.kept, dropped, 0))


def test_tables_hold_the_generated_composition(
    spark: SparkSession, first_run: str, generated: EverydaySample
) -> None:
    where = "WHERE source = 'everyday_gen'"
    kept = rows(
        spark,
        f"SELECT count(*) n, count(DISTINCT line_no) lines FROM femo.everyday_emotions {where}",
    )[0]
    assert (kept.n, kept.lines) == (generated.kept, generated.kept)
    quarantined = rows(spark, f"SELECT path, reason, detail, origin FROM femo.quarantine {where}")
    uri = generated.path.resolve().as_uri().replace("file:///", "file:/")
    assert {r.path: r.reason for r in quarantined} == {
        f"{uri}#line={n}": reason for n, reason in generated.bad_lines.items()
    }
    assert all(r.detail and r.origin == uri for r in quarantined)
    details = {r.detail for r in quarantined}
    assert "Day='Funday' is not a weekday (Monday..Sunday, Mon..Sun or 1-7)" in details
    assert "blank or missing: Hours" in details


def test_kept_rows_carry_the_generated_values(
    spark: SparkSession, first_run: str, generated: EverydaySample
) -> None:
    where = "WHERE source = 'everyday_gen'"
    felt = rows(
        spark,
        "SELECT n.original_name, count(*) n FROM (SELECT explode(felt) emotion "
        f"FROM femo.everyday_emotions {where}) e JOIN femo.everyday_emotion_names n "
        "USING (emotion) GROUP BY n.original_name",
    )
    assert {r.original_name: r.n for r in felt} == generated.felt
    days = rows(
        spark,
        "SELECT weekday, min(weekday_no) no, max(weekday_no) no2, count(*) n "
        f"FROM femo.everyday_emotions {where} GROUP BY weekday",
    )
    assert {r.weekday: r.n for r in days} == generated.weekdays
    order = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    assert all(r.no == r.no2 == order.index(r.weekday) + 1 for r in days)
    hours = rows(
        spark, f"SELECT hour, count(*) n FROM femo.everyday_emotions {where} GROUP BY hour"
    )
    assert {r.hour: r.n for r in hours} == generated.hours
    first = rows(spark, f"SELECT * FROM femo.everyday_emotions {where} AND line_no = 2")[0]
    fields = generated.path.read_text(encoding="utf-8").splitlines()[1].split(",")
    assert (first.id, first.hour, first.day) == (fields[0], int(fields[1]), fields[2])
    assert first.run_id and first.ingested_at


def test_names_table_is_written_from_the_mapping(spark: SparkSession, first_run: str) -> None:
    names = {
        r.emotion: r
        for r in rows(spark, "SELECT * FROM femo.everyday_emotion_names ORDER BY position")
    }
    assert list(names) == [e.name for e in STUDY_EMOTIONS]
    assert (names["offense"].original_name, names["offense"].valence) == ("Ofense", "negative")
    assert (names["embarrassment"].original_name, names["awe"].valence) == (
        "Embarassment",
        "positive",
    )
    # emotion ids come from the emotions seed's synonyms
    assert {e: r.emotion_id for e, r in names.items() if r.emotion_id is not None} == {
        "joy": 3,
        "disdain": 7,
        "disgust": 1,
        "fear": 2,
        "sadness": 4,
        "anger": 0,
    }


def test_rerun_commits_nothing(
    spark: SparkSession, catalog: Settings, first_run: str, generated: EverydaySample
) -> None:
    tables = ("everyday_emotions", "everyday_emotion_names", "quarantine", "sources")
    before = versions(spark, *tables)
    code, out = ingest(spark, catalog, "--path", str(generated.path), "--source", "everyday_gen")
    assert (code, out) == (0, summary("everyday_gen", generated, (0, 0, 0)))
    assert versions(spark, *tables) == before


def test_interrupted_run_is_completed_without_duplicates(
    spark: SparkSession, catalog: Settings, generated: EverydaySample, tmp_path: Path
) -> None:
    """A run that committed only part of its rows is completed by the next one."""
    csv = tmp_path / "partial.csv"
    shutil.copy(generated.path, csv)
    clean_into_tables(spark, "everyday_partial", csv)
    spark.sql(
        "DELETE FROM femo.everyday_emotions WHERE source = 'everyday_partial' AND line_no > 200"
    )
    spark.sql(
        "DELETE FROM femo.quarantine WHERE source = 'everyday_partial' AND reason = 'bad_value'"
    )
    missing = (
        generated.kept
        - rows(
            spark, "SELECT count(*) n FROM femo.everyday_emotions WHERE source = 'everyday_partial'"
        )[0].n
    )
    assert missing > 0
    out = clean_into_tables(spark, "everyday_partial", csv)
    assert out.endswith(
        f"wrote {missing} rows, {generated.dropped['bad_value']} quarantine rows, "
        "removed 0 stale rows"
    )
    counts = rows(
        spark,
        "SELECT (SELECT count(*) FROM femo.everyday_emotions WHERE source = :s) kept, "
        "(SELECT count(DISTINCT line_no) FROM femo.everyday_emotions WHERE source = :s) lines, "
        "(SELECT count(*) FROM femo.quarantine WHERE source = :s) dropped, "
        "(SELECT count(DISTINCT path) FROM femo.quarantine WHERE source = :s) paths",
        s="everyday_partial",
    )[0]
    dropped = sum(generated.dropped.values())
    assert tuple(counts) == (generated.kept, generated.kept, dropped, dropped)


def test_fixed_and_shortened_file_moves_and_removes_rows(
    spark: SparkSession, catalog: Settings, tmp_path: Path
) -> None:
    csv = tmp_path / "edited.csv"
    csv.write_text("\n".join([HEADER_LINE, line(), line(Hours="25"), line(id="8")]) + "\n")
    assert clean_into_tables(spark, "everyday_edit", csv).endswith(
        "wrote 2 rows, 1 quarantine rows, removed 0 stale rows"
    )
    csv.write_text("\n".join([HEADER_LINE, line(), line(Hours="15")]) + "\n")
    out = clean_into_tables(spark, "everyday_edit", csv)
    assert out == (
        "everyday_edit: read 2 rows, kept 2, dropped 0 to quarantine, skipped 0 blank lines; "
        "wrote 1 rows, 0 quarantine rows, removed 2 stale rows"
    )
    kept = rows(
        spark,
        "SELECT line_no, hour FROM femo.everyday_emotions WHERE source = 'everyday_edit' "
        "ORDER BY line_no",
    )
    assert [(r.line_no, r.hour) for r in kept] == [(2, 14), (3, 15)]
    assert (
        rows(spark, "SELECT count(*) n FROM femo.quarantine WHERE source = 'everyday_edit'")[0].n
        == 0
    )


def test_a_file_read_short_never_removes_stored_rows(
    spark: SparkSession, catalog: Settings, tmp_path: Path
) -> None:
    """A cut .csv.gz would read as a shorter file, whose missing lines look stale: the run
    quarantines the file, keeps every stored row and fails; the whole file, back, is current."""
    csv = tmp_path / "answers.csv.gz"
    whole = gzip.compress(
        ("\n".join([HEADER_LINE, *(line(id=str(i)) for i in range(1, 400))]) + "\n").encode()
    )
    csv.write_bytes(whole)
    assert clean_into_tables(spark, "everyday_cut", csv).endswith(
        "wrote 399 rows, 0 quarantine rows, removed 0 stale rows"
    )
    before = versions(spark, "everyday_emotions")
    csv.write_bytes(whole[: len(whole) // 2])
    for _ in range(2):  # and a re-run on the same cut file adds nothing
        with pytest.raises(RunFailedError, match="cannot be read whole: Truncated compressed"):
            clean_into_tables(spark, "everyday_cut", csv)
    stored = "SELECT count(*) n FROM femo.everyday_emotions WHERE source = 'everyday_cut'"
    assert rows(spark, stored)[0].n == 399
    assert versions(spark, "everyday_emotions") == before
    (held,) = rows(spark, "SELECT path, reason FROM femo.quarantine WHERE source = 'everyday_cut'")
    assert (held.path.endswith("/answers.csv.gz"), held.reason) == (True, "unreadable")
    csv.write_bytes(whole)
    assert clean_into_tables(spark, "everyday_cut", csv).endswith(
        "wrote 0 rows, 0 quarantine rows, removed 1 stale rows"  # the unreadable row
    )
    assert rows(spark, stored)[0].n == 399


def test_wrong_file_is_refused_and_writes_nothing(
    spark: SparkSession, catalog: Settings, tmp_path: Path
) -> None:
    csv = tmp_path / "fer.csv"
    csv.write_text("emotion,pixels,Usage\n0,1 2 3,Training\n")
    with pytest.raises(HeaderError, match="lacks id, Hours, Day, Pride"):
        clean_into_tables(spark, "everyday_wrong", csv)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(FemoError, match="the file is empty"):
        clean_into_tables(spark, "everyday_wrong", tmp_path / "empty.csv")
    assert (
        rows(
            spark,
            "SELECT (SELECT count(*) FROM femo.everyday_emotions WHERE source = 'everyday_wrong') "
            "+ (SELECT count(*) FROM femo.quarantine WHERE source = 'everyday_wrong') n",
        )[0].n
        == 0
    )


# Insight queries on a hand-written file ---------------------------------------------------

#: Five kept responses and one incomplete one. Columns: id, Hours, Day, then Pride Love Hope
#: Gratitude Joy Satisfaction Awe Amusement Alertness | Anxiety Disdain Ofense Guilt Disgust
#: Fear Embarassment Sadness Anger.
TINY = """\
id,Hours,Day,Pride,Love,Hope,Gratitude,Joy,Satisfaction,Awe,Amusement,Alertness,Anxiety,Disdain,Ofense,Guilt,Disgust,Fear,Embarassment,Sadness,Anger
1,8,Monday,0,1,0,0,1,0,0,0,0,1,0,0,0,0,0,0,0,0
1,8,Tuesday,0,0,0,0,1,0,0,0,0,0,0,0,0,0,0,0,0,0
2,20,Monday,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,1
2,3,Sunday,0,0,0,0,1,0,0,0,0,0,0,0,0,0,1,0,0,0
3,20,7,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0
3,8,Mon,0,0,0,0, ,0,0,0,0,0,0,0,0,0,0,0,0,0
"""


@pytest.fixture(scope="module")
def tiny(spark: SparkSession, catalog: Settings, tmp_path_factory: pytest.TempPathFactory) -> str:
    csv = tmp_path_factory.mktemp("tiny") / "tiny.csv"
    csv.write_text(TINY)
    out = clean_into_tables(spark, "everyday_tiny", csv)
    assert out.startswith("everyday_tiny: read 6 rows, kept 5, dropped 1 to quarantine")
    return "everyday_tiny"


def insight(spark: SparkSession, settings: Settings, name: str, *params: str) -> list[dict]:
    parser = argparse.ArgumentParser()
    Query.add_arguments(parser)
    out = io.StringIO()
    argv = ["--file", str(ROOT / "sql" / "insights" / f"{name}.sql"), "--format", "json"]
    for param in params:
        argv += ["--param", param]
    assert Query(settings, spark, out=out).run(parser.parse_args(argv)) == 0
    return [json.loads(text) for text in out.getvalue().splitlines()]


def test_emotion_frequency(spark: SparkSession, catalog: Settings, tiny: str) -> None:
    got = insight(spark, catalog, "everyday_emotion_frequency", f"source={tiny}")
    assert [(r["emotion"], r["responses"], r["share"]) for r in got[:6]] == [
        ("joy", 3, 0.6),
        ("love", 1, 0.2),
        ("anxiety", 1, 0.2),
        ("fear", 1, 0.2),
        ("sadness", 1, 0.2),
        ("anger", 1, 0.2),
    ]
    assert len(got) == 18
    assert {(r["responses"], r["share"]) for r in got[6:]} == {(0, 0.0)}
    assert got[6]["emotion"] == "pride"
    assert (got[2]["original_name"], got[2]["valence"]) == ("Anxiety", "negative")


def test_valence_by_hour(spark: SparkSession, catalog: Settings, tiny: str) -> None:
    got = insight(
        spark,
        catalog,
        "everyday_valence_by_hour",
        f"source={tiny}",
        "first_hour=6",
        "last_hour=23",
    )
    assert [r["hour"] for r in got] == list(range(6, 24))
    busy = {r["hour"]: r for r in got if r["responses"]}
    assert busy == {
        8: {"hour": 8, "responses": 2, "positive": 3, "negative": 1}
        | {"positive_share": 0.75, "negative_share": 0.25},
        20: {"hour": 20, "responses": 2, "positive": 0, "negative": 2}
        | {"positive_share": 0.0, "negative_share": 1.0},
    }
    quiet = [r for r in got if not r["responses"]]
    assert all(r["positive_share"] is None and r["positive"] == 0 for r in quiet)


def test_valence_by_weekday(spark: SparkSession, catalog: Settings, tiny: str) -> None:
    got = insight(spark, catalog, "everyday_valence_by_weekday", f"source={tiny}")
    columns = ("weekday", "weekday_no", "responses", "positive", "negative")
    shares = ("positive_share", "negative_share")
    assert [tuple(r[c] for c in columns + shares) for r in got] == [
        ("Monday", 1, 2, 2, 3, 0.4, 0.6),
        ("Tuesday", 2, 1, 1, 0, 1.0, 0.0),
        ("Sunday", 7, 2, 1, 1, 0.5, 0.5),
    ]


# the job as spark-submit runs it, on a fresh database --------------------------------------


def test_job_on_a_fresh_database(spark: SparkSession, catalog: Settings, tmp_path: Path) -> None:
    sample = write_everyday_csv(tmp_path / "everyday_emotions.csv", rows=250, seed=5)
    with own_database(spark, catalog, "femo_everyday_job") as own:
        out = run_job(
            IngestEveryday,
            spark,
            own,
            "--path",
            str(sample.path),
        )
        dropped = sum(sample.dropped.values())
        assert out.splitlines()[-1] == summary(
            "everyday_emotions", sample, (sample.kept, dropped, 0)
        )
        location = spark.catalog.getDatabase("femo_everyday_job").locationUri
        log = Path(location.removeprefix("file:")) / "everyday_emotions" / "_delta_log"
        assert sorted(p.name for p in log.glob("*.json")) == [
            "00000000000000000000.json",
            "00000000000000000001.json",
        ]


def test_each_merge_scans_the_source_it_writes(
    spark: SparkSession, catalog: Settings, tmp_path: Path
) -> None:
    # Delta counts a MERGE's source rows in its first scan and writes in a second one; a source
    # that is computed anew for each scan (a timestamp taken per query, a join pruned away in
    # one of them) logged 'Merge source has 0 rows in initial scan but 13 rows in second scan'
    # and could write other rows than it matched. Every MERGE of a run must count what it wrote.
    made = write_everyday_csv(tmp_path / "everyday.csv", rows=60, seed=5)
    other = write_everyday_csv(tmp_path / "other.csv", rows=30, seed=6)
    # Rows of another source in both tables: the case of the demo, where MERGE prunes them.
    assert clean_into_tables(spark, "everyday_other", other.path).startswith("everyday_other:")
    tables = ("everyday_emotions", "quarantine")
    before = {
        t: spark.sql(f"DESCRIBE HISTORY femo.{t}").agg({"version": "max"}).first()[0]
        for t in tables
    }
    assert clean_into_tables(spark, "everyday_merge", made.path).startswith("everyday_merge:")
    merges = []
    for table in tables:
        for row in spark.sql(f"DESCRIBE HISTORY femo.{table}").collect():
            if row.version > before[table] and row.operation == "MERGE":
                merges.append((table, row.operationMetrics))
    assert {t for t, _ in merges} == set(tables)
    for table, metrics in merges:
        written = int(metrics["numTargetRowsInserted"]) + int(metrics["numTargetRowsUpdated"])
        assert int(metrics["numSourceRows"]) == written, (table, metrics)
