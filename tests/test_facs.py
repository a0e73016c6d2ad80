"""jobs/scrape_facs.py and femo.sources.facs: the FACS guide's two tables into Delta.

The fixture is a saved-page-like WordPress article written from the guide's facts; the expected
values below are those facts, written out, not read back from the parser.
"""

from __future__ import annotations

import argparse
import functools
import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pyspark.sql import SparkSession

from femo.ingest.layout import LabelMap
from femo.platform.settings import Settings
from femo.platform.sql import run_sql
from femo.sources.facs import (
    DEFAULT_URL,
    BadRowError,
    FacsPage,
    MissingTableError,
    UnknownEmotionError,
    emotion_id,
    facs_rows,
    parse_action_unit_cell,
    parse_combination,
    parse_page,
)
from jobs.query import Query
from jobs.scrape_facs import ScrapeFacs

from .conftest import own_database, run_job

FIXTURES = Path(__file__).parent / "fixtures" / "facs"
PAGE = FIXTURES / "imotions_facs.html"
UPLOADS = "https://imotions.com/wp-content/uploads/2022/10/"

#: The guide's main table: AU -> (description, facial muscle, note of the AU cell).
UNITS: dict[int, tuple[str, str, str | None]] = {
    1: ("Inner Brow Raiser", "Frontalis, pars medialis", None),
    2: ("Outer Brow Raiser (unilateral, right side)", "Frontalis, pars lateralis", None),
    4: ("Brow Lowerer", "Depressor Glabellae, Depressor Supercilli, Currugator", None),
    5: ("Upper Lid Raiser", "Levator palpebrae superioris", None),
    6: ("Cheek Raiser", "Orbicularis oculi, pars orbitalis", None),
    7: ("Lid Tightener", "Orbicularis oculi, pars palpebralis", None),
    9: ("Nose Wrinkler", "Levator labii superioris alaquae nasi", "also shows slight AU4 and AU10"),
    10: (
        "Upper Lip Raiser",
        "Levator Labii Superioris, Caput infraorbitalis",
        "also shows slight AU25",
    ),
    11: ("Nasolabial Deepener", "Zygomatic Minor", None),
    12: ("Lip Corner Puller", "Zygomatic Major", None),
    13: ("Cheek Puffer", "Levator anguli oris (Caninus)", None),
    14: ("Dimpler", "Buccinator", None),
    15: ("Lip Corner Depressor", "Depressor anguli oris (Triangularis)", None),
    16: ("Lower Lip Depressor", "Depressor labii inferioris", "with AU25"),
    17: ("Chin Raiser", "Mentalis", None),
    18: (
        "Lip Puckerer",
        "Incisivii labii superioris and Incisivii labii inferioris",
        "with slight AU22 and AU25",
    ),
    20: ("Lip stretcher", "Risorius", None),
    22: ("Lip Funneler", "Orbicularis oris", "with AU25"),
    23: ("Lip Tightener", "Orbicularis oris", None),
    24: ("Lip Pressor", "Orbicularis oris", None),
    25: ("Lips part", "Depressor Labii, Relaxation of Mentalis (AU17), Orbicularis Oris", None),
    26: ("Jaw Drop", "Masetter; Temporal and Internal Pterygoid relaxed", "with AU25"),
    27: ("Mouth Stretch", "Pterygoids, Digastric", None),
    28: ("Lip Suck", "Orbicularis oris", "with AU26"),
    41: ("Lid droop", "Relaxation of Levator Palpebrae Superioris", None),
    42: ("Slit", "Orbicularis oculi", None),
    43: ("Eyes Closed", "Relaxation of Levator Palpebrae Superioris", None),
    44: ("Squint", "Orbicularis oculi, pars palpebralis", None),
    45: (
        "Blink",
        "Relaxation of Levator Palpebrae and Contraction of Orbicularis Oculi, Pars Palpebralis",
        None,
    ),
    46: ("Wink", "Levator palpebrae superioris; Orbicularis oculi, pars palpebralis", None),
}

#: The guide's emotions table: (emotion as written, emotion_id, AUs, note).
EMOTIONS: list[tuple[str, int, tuple[int, ...], str | None]] = [
    ("Happiness / Joy", 3, (6, 12), None),
    ("Sadness", 4, (1, 4, 15), None),
    ("Surprise", 5, (1, 2, 5, 26), None),
    ("Fear", 2, (1, 2, 4, 5, 7, 20, 26), None),
    ("Anger", 0, (4, 5, 7, 23), None),
    ("Disgust", 1, (9, 15, 16), None),
    ("Contempt", 7, (12, 14), "on one side of the face"),
]
LINK_ROWS = 25  # AUs over all emotions: 2 + 3 + 4 + 7 + 4 + 3 + 2

#: The synonyms of sql/seed/emotions.sql that the page's names need, for the pure tests.
LABELS = LabelMap(
    {
        0: ["angry", "anger"],
        1: ["disgust"],
        2: ["fear"],
        3: ["happy", "happiness", "joy"],
        4: ["sad", "sadness"],
        5: ["surprise"],
        6: ["neutral"],
        7: ["contempt"],
    }
)


def page_text() -> str:
    return PAGE.read_text(encoding="utf-8")


def edited(old: str, new: str, text: str | None = None) -> str:
    """The fixture with ``old`` replaced once (which must be there: no vacuous edits)."""
    text = page_text() if text is None else text
    assert text.count(old) == 1, old
    return text.replace(old, new)


def au_row(n: int, text: str | None = None) -> str:
    """The whole ``<tr>`` of action unit ``n`` in the fixture."""
    text = page_text() if text is None else text
    marker = f"<strong>{n}"
    start = text.rindex("<tr>", 0, text.index(marker))
    return text[start : text.index("</tr>", start) + len("</tr>")]


@pytest.fixture(scope="module")
def page() -> FacsPage:
    return parse_page(PAGE.read_bytes(), PAGE.as_uri(), saved_copy=True)


# -- the parser on the fixture --------------------------------------------------------------


def test_the_thirty_main_action_units_in_page_order(page: FacsPage) -> None:
    assert [u.action_unit for u in page.action_units] == [
        1, 2, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 20, 22, 23, 24, 25, 26, 27, 28,
        41, 42, 43, 44, 45, 46,
    ]  # fmt: skip


def test_names_muscles_and_notes_are_the_guides(page: FacsPage) -> None:
    found = {u.action_unit: (u.name, u.facial_muscle, u.note) for u in page.action_units}
    assert found == UNITS


def test_example_gifs_plain_lazy_relative_and_animated(page: FacsPage) -> None:
    gifs = {u.action_unit: u.example_gif_url for u in page.action_units}
    assert gifs[1] == f"{UPLOADS}AU1.gif"  # plain src
    assert gifs[4] == f"{UPLOADS}AU4.gif"  # data: placeholder, data-lazy-src
    assert gifs[6] == f"{UPLOADS}AU6.gif"  # data: placeholder, data-src
    assert gifs[11] == f"{UPLOADS}AU11.gif"  # relative src, against the canonical URL
    assert gifs[12] == f"{UPLOADS}AU12.gif"  # still PNG in src, the GIF in data-gif
    assert gifs == {n: f"{UPLOADS}AU{n}.gif" for n in UNITS}


def test_saved_copy_stands_for_its_canonical_url(page: FacsPage) -> None:
    assert page.source_url == DEFAULT_URL


def test_fetched_page_resolves_against_its_own_url() -> None:
    url = "http://127.0.0.1:8123/guide/facs.html"
    fetched = parse_page(page_text(), url)
    gifs = {u.action_unit: u.example_gif_url for u in fetched.action_units}
    assert fetched.source_url == url
    assert gifs[11] == "http://127.0.0.1:8123/wp-content/uploads/2022/10/AU11.gif"
    assert gifs[1] == f"{UPLOADS}AU1.gif"


def test_the_seven_emotions_with_their_action_units(page: FacsPage) -> None:
    found = [(e.emotion, e.action_units, e.note) for e in page.emotions]
    assert found == [(name, units, note) for name, _, units, note in EMOTIONS]
    contempt = page.emotions[-1]
    assert contempt.action_units_text == "12 + 14 (on one side of the face)"
    assert contempt.description == "Lip Corner Puller, Dimpler"
    assert page.emotions[0].action_units_text == "6 + 12"


def test_rows_map_emotions_to_ids_one_row_per_action_unit(page: FacsPage) -> None:
    stamp = datetime(2024, 5, 1, tzinfo=UTC)
    rows = facs_rows(page, LABELS, stamp, "run-1")
    ids = {(r[0], r[2]) for r in rows.emotion_action_units}
    assert len(rows.emotion_action_units) == LINK_ROWS
    assert ids == {(eid, au) for _, eid, units, _ in EMOTIONS for au in units}
    assert rows.emotion_action_units[0] == (
        3,
        "Happiness / Joy",
        6,
        1,
        "6 + 12",
        None,
        "Cheek Raiser, Lip Corner Puller",
        DEFAULT_URL,
    )
    assert (rows.scraped_at, rows.run_id, len(rows.action_units)) == (stamp, "run-1", 30)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("Happiness / Joy", 3), ("Joy", 3), ("  SADNESS ", 4), ("Anger", 0), ("Contempt", 7)],
)
def test_emotion_names_through_synonyms(name: str, expected: int) -> None:
    assert emotion_id(name, LABELS) == expected


@pytest.mark.parametrize(
    ("name", "message"), [("Boredom", "no emotion"), ("Joy / Sadness", "[3, 4]")]
)
def test_unknown_or_ambiguous_emotion(name: str, message: str) -> None:
    with pytest.raises(UnknownEmotionError, match=message.replace("[", r"\[")):
        emotion_id(name, LABELS)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("9 (also shows slight AU4 and AU10)", (9, "also shows slight AU4 and AU10")),
        ("12", (12, None)),
        ("AU 27", (27, None)),
        ("16 ( with AU25 )", (16, "with AU25")),
    ],
)
def test_action_unit_cell(cell: str, expected: tuple[int, str | None]) -> None:
    assert parse_action_unit_cell(cell) == expected


@pytest.mark.parametrize("cell", ["IX", "9a", "9.5", "", "(with AU25)", "AU"])
def test_action_unit_cell_not_an_integer(cell: str) -> None:
    with pytest.raises(BadRowError, match="not an integer action unit"):
        parse_action_unit_cell(cell)


def test_combinations() -> None:
    assert parse_combination("6 + 12") == ((6, 12), None)
    assert parse_combination("AU12+AU14 (on one side of the face)") == (
        (12, 14),
        "on one side of the face",
    )
    with pytest.raises(BadRowError, match="'R12A' is not an integer"):
        parse_combination("R12A + 14")
    with pytest.raises(BadRowError, match="twice"):
        parse_combination("6 + 12 + 6")


def test_headers_ignore_case_spacing_remarks_and_extra_columns() -> None:
    text = edited("<th>Facial&nbsp;Muscle</th>", "<th>  FACIAL\n  muscle: </th>")
    text = edited(
        "<th>Example <em>(Hover to Play)</em></th>",
        "<th>Example <em>(Hover to Play)</em></th><th>Intensity</th>",
        text,
    )
    parsed = parse_page(text, DEFAULT_URL)
    assert {u.action_unit: (u.name, u.facial_muscle, u.note) for u in parsed.action_units} == UNITS


def test_rows_of_a_table_nested_in_a_cell_are_not_rows() -> None:
    nested = "<table><tr><td>99</td><td>Nested</td><td>x</td><td></td></tr></table>"
    text = edited("<td>Frontalis, pars medialis</td>", f"<td>Frontalis, pars medialis{nested}</td>")
    parsed = parse_page(text, DEFAULT_URL)
    assert 99 not in {u.action_unit for u in parsed.action_units}
    assert len(parsed.action_units) == 30


# -- broken pages ---------------------------------------------------------------------------


def broken_pages() -> dict[str, tuple[str, type[Exception], str]]:
    """Name -> (page, error, what the message must say)."""
    text = page_text()
    emotions_start = text.index('<div class="wp-block-columns">')
    emotions_end = text.index("</div></div>", emotions_start) + len("</div></div>")
    return {
        "no emotions table": (
            text[:emotions_start] + text[emotions_end:],
            MissingTableError,
            "no emotions and action units table",
        ),
        "renamed header": (
            edited("<th>Facial&nbsp;Muscle</th>", "<th>Muscle</th>"),
            MissingTableError,
            "no action units table .*facial muscle.*tables found: .*action unit \\| description "
            "\\| muscle \\| example",
        ),
        "AU not an integer": (
            edited("<strong>9 <em>", "<strong>IX <em>"),
            BadRowError,
            "action units table, row 7: 'IX \\(also shows slight AU4 and AU10\\)' is not an "
            "integer action unit",
        ),
        "combination not integers": (
            edited("<td>6 + 12</td>", "<td>6 + twelve</td>"),
            BadRowError,
            "emotions table, row 1 \\(Happiness / Joy\\): .*'twelve' is not an integer",
        ),
        "AU listed twice": (
            edited(au_row(2), au_row(1) + au_row(2)),
            BadRowError,
            "AU 1 is listed twice",
        ),
        "empty action units table": (
            edited(
                text[
                    text.index("<tbody>", text.index("Facial&nbsp;Muscle")) : text.index(
                        "</tbody>", text.index("Facial&nbsp;Muscle")
                    )
                ],
                "<tbody>",
            ),
            BadRowError,
            "the action units table has no rows",
        ),
    }


@pytest.mark.parametrize("case", list(broken_pages()))
def test_broken_page_is_a_clear_error(case: str) -> None:
    html, error, message = broken_pages()[case]
    assert html != page_text()
    with pytest.raises(error, match=message):
        parse_page(html, DEFAULT_URL)


def test_emotion_naming_an_unlisted_action_unit() -> None:
    parsed = parse_page(edited(au_row(14), ""), DEFAULT_URL)
    with pytest.raises(BadRowError, match="'Contempt' names action units \\[14\\]"):
        facs_rows(parsed, LABELS, datetime.now(UTC), "run")


def test_unknown_emotion_on_the_page() -> None:
    parsed = parse_page(edited("<td>Sadness</td>", "<td>Melancholy</td>"), DEFAULT_URL)
    with pytest.raises(UnknownEmotionError, match="'Melancholy'.*sql/seed/emotions.sql"):
        facs_rows(parsed, LABELS, datetime.now(UTC), "run")


# -- the job against the shared session -----------------------------------------------------

TABLES = ("action_units", "emotion_action_units", "sources")


def scrape(spark: SparkSession, settings: Settings, html: Path) -> str:
    parser = argparse.ArgumentParser()
    ScrapeFacs.add_arguments(parser)
    out = io.StringIO()
    code = ScrapeFacs(settings, spark, out=out).run(parser.parse_args(["--html", str(html)]))
    assert code == 0
    return out.getvalue().strip()


def versions(spark: SparkSession) -> dict[str, int]:
    return {t: spark.sql(f"DESCRIBE HISTORY femo.{t}").count() for t in TABLES}


def snapshot(spark: SparkSession, table: str, key: str) -> dict[Any, tuple[Any, ...]]:
    return {r[key]: tuple(r) for r in spark.table(f"femo.{table}").collect()}


@dataclass
class Runs:
    """What each run of the scenario printed and left behind."""

    broken_error: str
    broken_versions: tuple[dict[str, int], dict[str, int]]
    broken_rows: int
    first: str
    first_units: dict[Any, tuple[Any, ...]]
    after_first: dict[str, int]
    again: str
    after_again: dict[str, int]
    changed: str
    changed_units: dict[Any, tuple[Any, ...]]
    changed_contempt: list[tuple[Any, ...]]
    restored: str
    restored_units: dict[Any, tuple[Any, ...]]


@pytest.fixture(scope="module")
def runs(spark: SparkSession, catalog: Settings, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    folder = tmp_path_factory.mktemp("facs")
    broken = folder / "broken.html"
    broken.write_text(edited("<strong>9 <em>", "<strong>IX <em>"), encoding="utf-8")
    changed = folder / "changed.html"
    text = edited(au_row(46), "")  # AU 46 gone from the page
    text = edited("<td>Zygomatic Major</td>", "<td>Zygomaticus major</td>", text)
    text = edited("12 + 14 (on one side of the face)", "12 (on one side of the face)", text)
    changed.write_text(text, encoding="utf-8")

    before = versions(spark)
    with pytest.raises(BadRowError) as failure:
        scrape(spark, catalog, broken)
    broken_versions = (before, versions(spark))
    broken_rows = spark.table("femo.action_units").count()
    broken_rows += spark.table("femo.emotion_action_units").count()

    first = scrape(spark, catalog, PAGE)
    first_units = snapshot(spark, "action_units", "action_unit")
    after_first = versions(spark)
    again = scrape(spark, catalog, PAGE)
    after_again = versions(spark)
    changed_line = scrape(spark, catalog, changed)
    changed_units = snapshot(spark, "action_units", "action_unit")
    contempt = spark.sql(
        "SELECT action_unit, action_units_text, run_id FROM femo.emotion_action_units "
        "WHERE emotion_id = 7 ORDER BY position"
    ).collect()
    restored = scrape(spark, catalog, PAGE)
    return Runs(
        broken_error=str(failure.value),
        broken_versions=broken_versions,
        broken_rows=broken_rows,
        first=first,
        first_units=first_units,
        after_first=after_first,
        again=again,
        after_again=after_again,
        changed=changed_line,
        changed_units=changed_units,
        changed_contempt=[tuple(r) for r in contempt],
        restored=restored,
        restored_units=snapshot(spark, "action_units", "action_unit"),
    )


def test_broken_page_writes_nothing(runs: Runs) -> None:
    assert "row 7" in runs.broken_error
    before, after = runs.broken_versions
    assert after == before
    assert runs.broken_rows == 0


def test_first_run_summary(runs: Runs) -> None:
    assert runs.first == (
        f"action_units: 30 rows (+30 ~0 -0); emotion_action_units: {LINK_ROWS} rows "
        f"(+{LINK_ROWS} ~0 -0)"
    )


def test_rerun_commits_no_delta_version(runs: Runs) -> None:
    assert runs.again == (
        f"action_units: 30 rows (+0 ~0 -0); emotion_action_units: {LINK_ROWS} rows (+0 ~0 -0)"
    )
    assert runs.after_again == runs.after_first


def test_changed_page_updates_and_deletes(runs: Runs) -> None:
    assert runs.changed == (
        f"action_units: 29 rows (+0 ~1 -1); emotion_action_units: {LINK_ROWS - 1} rows "
        "(+0 ~1 -1)"
    )
    first, changed = runs.first_units, runs.changed_units
    assert 46 not in changed
    assert changed[12][2] == "Zygomaticus major"
    first_run, changed_run = first[1][-1], changed[12][-1]
    assert changed_run != first_run
    # unchanged rows keep the stamps of the run that wrote them
    assert {au: row for au, row in changed.items() if au != 12} == {
        au: row for au, row in first.items() if au not in (12, 46)
    }
    assert runs.changed_contempt == [(12, "12 (on one side of the face)", changed_run)]


def test_restored_page_restores_the_rows(runs: Runs) -> None:
    assert runs.restored == (
        f"action_units: 30 rows (+1 ~1 -0); emotion_action_units: {LINK_ROWS} rows (+1 ~1 -0)"
    )
    strip = {au: row[:-2] for au, row in runs.first_units.items()}
    assert {au: row[:-2] for au, row in runs.restored_units.items()} == strip


def test_tables_hold_the_guide(spark: SparkSession, runs: Runs) -> None:
    units = spark.sql(
        "SELECT action_unit, name, facial_muscle, note, example_gif_url, source_url "
        "FROM femo.action_units"
    ).collect()
    assert {r.action_unit: (r.name, r.facial_muscle, r.note) for r in units} == UNITS
    assert {r.source_url for r in units} == {DEFAULT_URL}
    assert all(r.example_gif_url == f"{UPLOADS}AU{r.action_unit}.gif" for r in units)
    links = spark.sql(
        # collect_list keeps no order Spark promises: sort by position inside the aggregate
        "SELECT emotion_id, emotion, "
        "transform(array_sort(collect_list(struct(position, action_unit))), x -> x.action_unit) "
        "AS aus, max(note) AS note FROM femo.emotion_action_units GROUP BY emotion_id, emotion"
    ).collect()
    assert sorted((r.emotion, r.emotion_id, tuple(r.aus), r.note) for r in links) == sorted(
        EMOTIONS
    )
    source = spark.sql("SELECT kind, url FROM femo.sources WHERE source_id = 'imotions_facs'")
    assert [tuple(r) for r in source.collect()] == [("web_page", DEFAULT_URL)]


@pytest.mark.parametrize("name", ["happy", "JOY", "Happiness / Joy"])
def test_insight_action_units_of_emotion(spark: SparkSession, runs: Runs, name: str) -> None:
    spark.catalog.setCurrentDatabase("femo")
    rows = run_sql(spark, "insights/action_units_of_emotion", {"emotion": name}).collect()
    assert [(r.emotion, r.action_unit, r.action_unit_name, r.facial_muscle) for r in rows] == [
        ("happy", 6, "Cheek Raiser", "Orbicularis oculi, pars orbitalis"),
        ("happy", 12, "Lip Corner Puller", "Zygomatic Major"),
    ]


def test_insight_action_units_of_contempt_and_of_nothing(spark: SparkSession, runs: Runs) -> None:
    spark.catalog.setCurrentDatabase("femo")
    rows = run_sql(spark, "insights/action_units_of_emotion", {"emotion": "disdain"}).collect()
    assert [(r.emotion_id, r.action_unit, r.note) for r in rows] == [
        (7, 12, "on one side of the face"),
        (7, 14, "on one side of the face"),
    ]
    assert run_sql(spark, "insights/action_units_of_emotion", {"emotion": "neutral"}).isEmpty()


def test_insight_emotion_with_most_action_units(spark: SparkSession, runs: Runs) -> None:
    spark.catalog.setCurrentDatabase("femo")
    rows = run_sql(spark, "insights/emotion_with_most_action_units").collect()
    assert [(r.emotion, r.guide_emotion, r.action_unit_count, r.action_units) for r in rows] == [
        ("fear", "Fear", 7, [1, 2, 4, 5, 7, 20, 26])
    ]


@pytest.fixture
def labelled_images(spark: SparkSession, runs: Runs) -> Iterator[str]:
    """Three bare image rows (happy, neutral, no label) under a source of their own."""
    from femo.platform.schemas import IMAGES

    source = "facs_view_test"
    fields = IMAGES.schema.fieldNames()
    rows = [
        {
            **dict.fromkeys(fields),
            "source": source,
            "path": f"/x/{i}.png",
            "origin": f"/x/{i}.png",
            "label_id": label,
        }
        for i, label in enumerate((3, 6, None))
    ]
    frame = spark.createDataFrame([tuple(r[f] for f in fields) for r in rows], IMAGES.schema)
    frame.write.format("delta").mode("append").saveAsTable("femo.images")
    yield source
    spark.sql("DELETE FROM femo.images WHERE source = :source", args={"source": source})


def test_all_data_view(spark: SparkSession, labelled_images: str) -> None:
    rows = spark.sql(
        "SELECT path, emotion, action_units, action_unit_names FROM femo.all_data "
        "WHERE source = :source ORDER BY path",
        args={"source": labelled_images},
    ).collect()
    assert [tuple(r) for r in rows] == [
        ("/x/0.png", "happy", [6, 12], ["Cheek Raiser", "Lip Corner Puller"]),
        ("/x/1.png", "neutral", [], []),
        ("/x/2.png", None, None, None),
    ]


# -- the job against a local HTTP server, on a database of its own -------------------------


class _Quiet(SimpleHTTPRequestHandler):
    """Serves the fixtures; records the paths asked for instead of logging them."""

    requested: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: Any) -> None:
        _Quiet.requested.append(self.path)


@pytest.fixture
def page_server() -> Iterator[str]:
    handler = functools.partial(_Quiet, directory=str(FIXTURES))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_job_scrapes_the_url_then_query_finds_it(
    spark: SparkSession, catalog: Settings, page_server: str
) -> None:
    url = f"{page_server}/imotions_facs.html"
    _Quiet.requested.clear()
    with own_database(spark, catalog, "femo_facs_job") as own:
        scraped = run_job(ScrapeFacs, spark, own, "--url", url)
        assert scraped.splitlines()[-1] == (
            f"action_units: 30 rows (+30 ~0 -0); emotion_action_units: {LINK_ROWS} rows "
            f"(+{LINK_ROWS} ~0 -0)"
        )
        assert _Quiet.requested == ["/imotions_facs.html"]
        queried = run_job(
            Query,
            spark,
            own,
            "--file",
            "sql/insights/action_units_of_emotion.sql",
            "--param",
            "emotion=happy",
            "--format",
            "csv",
        )
    lines = queried.splitlines()
    header = lines.index(
        "emotion_id,emotion,guide_emotion,position,action_unit,action_unit_name,facial_muscle,"
        "action_units_text,note"
    )
    assert lines[header + 1 :] == [
        '3,happy,Happiness / Joy,1,6,Cheek Raiser,"Orbicularis oculi, pars orbitalis",6 + 12,',
        "3,happy,Happiness / Joy,2,12,Lip Corner Puller,Zygomatic Major,6 + 12,",
    ]
