"""jobs/ingest_images.py on generated collections with every kind of bad input."""

from __future__ import annotations

import gzip
import io
import os
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import SparkSession

from femo.ingest.run import Tally, TallyParam, run_markers
from femo.ingest.sample import Sample, encode, face_like, write_images, write_sample
from femo.platform.cli import base_parser
from femo.platform.errors import EXIT_NOTHING_TO_DO, RunFailedError
from femo.platform.settings import Settings
from jobs.ingest_images import IngestImages

from .conftest import make_settings, own_database

#: Small caps so the test collection can hit them.
GUARDS = ("ingest.max_file_bytes=300000",)


def ingest(spark: SparkSession, settings: Settings, *argv: str) -> tuple[int, str]:
    parser = base_parser(None)  # --signal-idle too
    IngestImages.add_arguments(parser)
    out = io.StringIO()
    database = f"catalog.database={settings.catalog.database}"
    job_settings = make_settings(Path(settings.home), *GUARDS, database)
    code = IngestImages(job_settings, spark, out=out).run(parser.parse_args(list(argv)))
    return code, out.getvalue().strip()


def rows(spark: SparkSession, sql: str, **args: object) -> list:
    return spark.sql(sql, args=args).collect()


def versions(spark: SparkSession, table: str) -> int:
    return spark.sql(f"DESCRIBE HISTORY femo.{table}").count()


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    out = tmp_path_factory.mktemp("sample")
    made = write_sample(out)
    # over the 300 kB cap of GUARDS: quarantined without being read
    (made.images / "train" / "neutral" / "oversized.jpg").write_bytes(os.urandom(400_000))
    return made


@pytest.fixture(scope="module")
def first_run(spark: SparkSession, catalog: Settings, sample: Sample) -> str:
    code, line = ingest(spark, catalog, "--source", "sample", "--path", str(sample.images))
    assert code == 0
    return line


def expected_reasons(sample: Sample) -> Counter[str]:
    return Counter(sample.bad_files.values()) + Counter({"file_too_large": 1})


def test_summary_line(first_run: str, sample: Sample) -> None:
    reasons = expected_reasons(sample)
    listed = ", ".join(f"{r} {n}" for r, n in sorted(reasons.items()))
    assert first_run == (
        f"sample: accepted {sample.good_files}, quarantined "
        f"{sum(reasons.values())} ({listed}), skipped 0 already ingested"
    )


def test_every_file_is_accounted_for(spark: SparkSession, first_run: str, sample: Sample) -> None:
    files = sum(1 for p in sample.images.rglob("*") if p.is_file())
    images = rows(spark, "SELECT count(*) n FROM femo.images WHERE source = 'sample'")[0].n
    quarantined = rows(spark, "SELECT count(*) n FROM femo.quarantine WHERE source = 'sample'")[0].n
    assert (images, images + quarantined) == (sample.good_files, files)


def test_each_bad_file_has_its_reason(spark: SparkSession, first_run: str, sample: Sample) -> None:
    found = {
        r.path.split("/images/", 1)[1]: r.reason
        for r in rows(spark, "SELECT path, reason FROM femo.quarantine WHERE source = 'sample'")
    }
    assert found == {**sample.bad_files, "train/neutral/oversized.jpg": "file_too_large"}
    details = {
        r.reason: r.detail
        for r in rows(spark, "SELECT reason, detail FROM femo.quarantine WHERE source = 'sample'")
    }
    assert details["unknown_label"] == "label 'bored' matches no emotion synonym"
    assert details["file_too_large"] == "400000 bytes > 300000"
    assert details["too_many_pixels"] == "8000x6000 = 48000000 pixels > 40000000"


def test_image_rows_carry_labels_splits_and_metadata(
    spark: SparkSession, first_run: str, sample: Sample
) -> None:
    by_split = rows(
        spark,
        "SELECT split, label_id, count(*) n FROM femo.images "
        "WHERE source = 'sample' GROUP BY split, label_id ORDER BY split, label_id",
    )
    assert [(r.split, r.label_id, r.n) for r in by_split] == [
        *[("test", i, 2) for i in range(7)],
        ("train", 0, 4),
        ("train", 1, 4),
        ("train", 2, 4),
        ("train", 3, 8),
        ("train", 4, 5),
        ("train", 5, 4),
        ("train", 6, 4),
    ]
    photo = rows(spark, "SELECT * FROM femo.images WHERE path LIKE '%/photo_0.png'")[0]
    assert (photo.format, photo.width, photo.height, photo.channels, photo.color_space) == (
        "png",
        224,
        224,
        3,
        "color",
    )
    assert photo.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(photo.content) == photo.file_size_bytes == photo.origin_size
    odd = {
        r.path.rsplit("/", 1)[1]: r
        for r in rows(
            spark,
            "SELECT path, format, color_space, channels FROM femo.images "
            "WHERE path LIKE '%gray_in_bgr.png' OR path LIKE '%really_a_png.jpg'",
        )
    }
    assert (odd["gray_in_bgr.png"].channels, odd["gray_in_bgr.png"].color_space) == (3, "grayscale")
    assert odd["really_a_png.jpg"].format == "png"


def test_views_join_names(spark: SparkSession, first_run: str) -> None:
    row = rows(
        spark,
        "SELECT emotion, source_name, image_format FROM femo.images_sample "
        "WHERE path LIKE '%/test/happy/test_happy_0.jpg'",
    )[0]
    assert (row.emotion, row.source_name, row.image_format) == ("happy", "sample", "jpeg")
    assert rows(spark, "SELECT count(*) n FROM femo.all_images WHERE source = 'sample'")[0].n > 0
    source = rows(spark, "SELECT kind FROM femo.sources WHERE source_id = 'sample'")[0]
    assert source.kind == "image_folders"


def test_rerun_writes_nothing(
    spark: SparkSession,
    catalog: Settings,
    first_run: str,
    sample: Sample,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tables = ("images", "quarantine", "ingested_files")
    before = [versions(spark, t) for t in tables]

    def not_needed(*args: object) -> None:
        raise AssertionError("a run that finds nothing new needs no labels and no new views")

    monkeypatch.setattr("jobs.ingest_images.inspect_options", not_needed)
    monkeypatch.setattr("femo.platform.catalog.refresh_views", not_needed)
    files = sum(1 for p in sample.images.rglob("*") if p.is_file())
    code, line = ingest(spark, catalog, "--source", "sample", "--path", str(sample.images))
    assert (code, line) == (
        0,
        f"sample: accepted 0, quarantined 0, skipped {files} already " "ingested",
    )
    # for a scheduler that skips on it: nothing to do
    again = ("--source", "sample", "--path", str(sample.images), "--signal-idle")
    assert ingest(spark, catalog, *again)[0] == EXIT_NOTHING_TO_DO == 99
    assert [versions(spark, t) for t in tables] == before


def test_a_run_that_adds_nothing_still_makes_a_missing_source_view(
    spark: SparkSession, catalog: Settings, first_run: str, sample: Sample
) -> None:
    spark.sql("DROP VIEW femo.images_sample")  # as if a run was killed before its views
    code, line = ingest(spark, catalog, "--source", "sample", "--path", str(sample.images))
    assert (code, line.split(",")[0]) == (0, "sample: accepted 0")
    assert spark.table("femo.images_sample").count() > 0


def test_strict_fails_on_quarantine(spark: SparkSession, catalog: Settings, tmp_path: Path) -> None:
    (tmp_path / "happy").mkdir()
    (tmp_path / "happy" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut")
    code, line = ingest(
        spark, catalog, "--source", "strict_check", "--path", str(tmp_path), "--strict"
    )
    assert code == 1
    assert line == (
        "strict_check: accepted 0, quarantined 1 (truncated 1), skipped 0 already " "ingested"
    )


def test_new_files_only_and_same_bytes_under_two_labels(
    spark: SparkSession, catalog: Settings, tmp_path: Path
) -> None:
    rng = np.random.default_rng(5)
    root = tmp_path / "grow"
    for label in ("happy", "sad"):
        (root / label).mkdir(parents=True)
    twin = encode(face_like(rng, 48, color=False), ".jpg")
    (root / "happy" / "a.jpg").write_bytes(twin)
    assert ingest(spark, catalog, "--source", "grow", "--path", str(root))[1].startswith(
        "grow: accepted 1, quarantined 0, skipped 0"
    )
    (root / "sad" / "a_again.jpg").write_bytes(twin)
    (root / "sad" / "b.jpg").write_bytes(encode(face_like(rng, 48, color=False), ".jpg"))
    assert ingest(spark, catalog, "--source", "grow", "--path", str(root))[1] == (
        "grow: accepted 2, quarantined 0, skipped 1 already ingested"
    )
    conflicts = rows(
        spark,
        "SELECT emotions, copies FROM femo.all_images a JOIN ("
        "SELECT image_id, sort_array(collect_set(emotion)) emotions, count(*) copies"
        " FROM femo.all_images WHERE source = 'grow' GROUP BY image_id "
        "HAVING count(DISTINCT label_id) > 1) c USING (image_id) LIMIT 1",
    )
    assert [(list(r.emotions), r.copies) for r in conflicts] == [(["happy", "sad"], 2)]


def test_fixed_file_moves_from_quarantine_to_images(
    spark: SparkSession, catalog: Settings, tmp_path: Path
) -> None:
    (tmp_path / "fear").mkdir()
    target = tmp_path / "fear" / "later.png"
    target.write_bytes(b"not yet")
    ingest(spark, catalog, "--source", "fixing", "--path", str(tmp_path))
    good = encode(face_like(np.random.default_rng(2), 48, color=False), ".png")
    target.write_bytes(good)
    os.utime(target, (1_900_000_000, 1_900_000_000))
    assert ingest(spark, catalog, "--source", "fixing", "--path", str(tmp_path))[1] == (
        "fixing: accepted 1, quarantined 0, skipped 0 already ingested"
    )
    where = "WHERE source = 'fixing'"
    assert rows(spark, f"SELECT count(*) n FROM femo.quarantine {where}")[0].n == 0
    assert rows(spark, f"SELECT label_id FROM femo.images {where}")[0].label_id == 2


def test_interrupted_run_is_completed_exactly_once(
    spark: SparkSession, catalog: Settings, tmp_path: Path
) -> None:
    """A run killed after its images commit but before the quarantine and ingested_files
    commits (simulated by removing those rows for the train split and leaving the run's
    marker) is completed by the next run: its files count as new, what they left in images is
    replaced, nothing duplicates, and the marker is gone."""
    root = tmp_path / "partial"
    shutil.copytree(Path(write_sample(tmp_path / "s", per_class=2).images), root)
    ingest(spark, catalog, "--source", "partial", "--path", str(root))
    where = "source = 'partial' AND origin LIKE '%/train/%'"
    total = rows(spark, "SELECT count(*) n FROM femo.images WHERE source = 'partial'")[0].n
    bad = rows(spark, "SELECT count(*) n FROM femo.quarantine WHERE source = 'partial'")[0].n
    good_test = rows(spark, f"SELECT count(*) n FROM femo.images WHERE {where}")[0].n
    bad_test = rows(spark, f"SELECT count(*) n FROM femo.quarantine WHERE {where}")[0].n
    assert good_test > 0 and bad_test > 0
    spark.sql(f"DELETE FROM femo.quarantine WHERE {where}")
    spark.sql(f"DELETE FROM femo.ingested_files WHERE {where}")
    markers = run_markers(spark, "femo", "partial")
    markers.put("killed0run")
    code, line = ingest(spark, catalog, "--source", "partial", "--path", str(root))
    assert markers.names() == []
    assert line.startswith(f"partial: accepted {good_test}, quarantined {bad_test} (")
    counts = rows(
        spark,
        "SELECT (SELECT count(*) FROM femo.images WHERE source = 'partial') images, "
        "(SELECT count(DISTINCT path) FROM femo.images WHERE source = 'partial') image_paths, "
        "(SELECT count(*) FROM femo.quarantine WHERE source = 'partial') bad, "
        "(SELECT count(DISTINCT path) FROM femo.quarantine WHERE source = 'partial') bad_paths",
    )[0]
    assert (counts.images, counts.image_paths, counts.bad, counts.bad_paths) == (
        total,
        total,
        bad,
        bad,
    )
    # and now every file is finished: a third run writes nothing
    assert ingest(spark, catalog, "--source", "partial", "--path", str(root))[1].startswith(
        "partial: accepted 0, quarantined 0, skipped"
    )


def test_ingested_files_record_each_file_once_per_content(
    spark: SparkSession, catalog: Settings, first_run: str, sample: Sample
) -> None:
    files = sum(1 for p in sample.images.rglob("*") if p.is_file())
    got = rows(
        spark,
        "SELECT count(*) n, count(DISTINCT origin) origins, sum(images) images, "
        "sum(quarantined) quarantined FROM femo.ingested_files WHERE source = 'sample'",
    )[0]
    assert (got.n, got.origins, got.images) == (files, files, sample.good_files)
    assert got.images + got.quarantined == files


def test_fer_csv_rows_and_malformed_rows(
    spark: SparkSession, catalog: Settings, sample: Sample
) -> None:
    code, line = ingest(
        spark,
        catalog,
        "--source",
        "fer_csv_sample",
        "--path",
        str(sample.csv),
        "--layout",
        "fer_csv",
    )
    assert line == (
        "fer_csv_sample: accepted 20, quarantined 5 (bad_pixel_count 1, "
        "label_out_of_range 1, malformed_row 1, non_numeric_pixels 1, "
        "unknown_usage 1), skipped 0 already ingested"
    )
    got = rows(
        spark,
        "SELECT split, count(*) n FROM femo.images WHERE source = 'fer_csv_sample' "
        "GROUP BY split ORDER BY split",
    )
    assert [(r.split, r.n) for r in got] == [("test", 13), ("train", 7)]
    first = rows(
        spark,
        "SELECT path, label_id, width, height, format FROM femo.images "
        "WHERE source = 'fer_csv_sample' AND path LIKE '%#line=2'",
    )[0]
    assert (first.label_id, first.width, first.height, first.format) == (0, 48, 48, "png")
    bad = rows(
        spark,
        "SELECT path FROM femo.quarantine WHERE source = 'fer_csv_sample' "
        "AND reason = 'malformed_row'",
    )[0]
    assert bad.path.endswith("fer2013.csv#line=26")
    again = ingest(
        spark,
        catalog,
        "--source",
        "fer_csv_sample",
        "--path",
        str(sample.csv),
        "--layout",
        "fer_csv",
    )[1]
    assert again == "fer_csv_sample: accepted 0, quarantined 0, skipped 1 already ingested"


def test_a_cut_csv_gz_is_quarantined_whole_and_a_good_one_beside_it_ingested(
    spark: SparkSession, catalog: Settings, sample: Sample, tmp_path: Path
) -> None:
    """Spark's text source reads a cut .csv.gz partly: none of it may pass for its ingest."""
    packed = gzip.compress(sample.csv.read_bytes())
    (tmp_path / "good.csv.gz").write_bytes(packed)
    (tmp_path / "cut.csv.gz").write_bytes(packed[: len(packed) // 2])
    args = ("--source", "fer_csv_gz", "--path", str(tmp_path), "--layout", "fer_csv")
    db = "femo_csv_gz"
    with own_database(spark, catalog, db) as own:
        code, line = ingest(spark, own, *args)
        assert code == 0
        assert line == (
            "fer_csv_gz: accepted 20, quarantined 6 (bad_pixel_count 1, label_out_of_range 1, "
            "malformed_row 1, non_numeric_pixels 1, unknown_usage 1, unreadable 1), "
            "skipped 0 already ingested"
        )
        origins = rows(
            spark,
            "SELECT regexp_extract(origin, '[^/]+$', 0) AS file, count(*) AS n "
            f"FROM {db}.images GROUP BY ALL",
        )
        assert [(r.file, r.n) for r in origins] == [("good.csv.gz", 20)]
        (cut,) = rows(
            spark, f"SELECT path, detail FROM {db}.quarantine WHERE reason = 'unreadable'"
        )
        assert cut.path.endswith("/cut.csv.gz")
        assert cut.detail == "cannot be read whole: Truncated compressed stream"
        files = rows(
            spark,
            "SELECT regexp_extract(origin, '[^/]+$', 0) AS file, images, quarantined "
            f"FROM {db}.ingested_files ORDER BY file",
        )
        assert [tuple(r) for r in files] == [("cut.csv.gz", 0, 1), ("good.csv.gz", 20, 5)]


def test_outcomes_lost_on_the_way_fail_the_run_and_the_next_run_redoes_it(
    spark: SparkSession, catalog: Settings, sample: Sample, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task's accumulator update that never reaches the driver: the committed images are
    not recorded as a file with no rows (nor any outcome); the run fails, the next one
    repairs."""
    merge = TallyParam.addInPlace
    lost: list[Tally] = []

    def lossy(self: TallyParam, total: Tally, update: Tally) -> Tally:
        if not lost and any(update.accepted.values()):
            lost.append(update)
            return total
        return merge(self, total, update)

    args = ("--source", "fer_csv_lost", "--path", str(sample.csv), "--layout", "fer_csv")
    db = "femo_csv_lost"
    with own_database(spark, catalog, db) as own:
        monkeypatch.setattr(TallyParam, "addInPlace", lossy)
        with pytest.raises(RunFailedError, match="images committed differ from those reported"):
            ingest(spark, own, *args)
        assert lost
        recorded = [
            rows(spark, f"SELECT count(*) n FROM {db}.{table}")[0].n
            for table in ("quarantine", "ingested_files")
        ]
        assert recorded == [0, 0]
        monkeypatch.setattr(TallyParam, "addInPlace", merge)
        assert ingest(spark, own, *args)[1].startswith("fer_csv_lost: accepted 20, quarantined 5")
        images = rows(spark, f"SELECT count(*) n, count(DISTINCT path) paths FROM {db}.images")
        assert (images[0].n, images[0].paths) == (20, 20)


def test_bad_source_name_is_refused(spark: SparkSession, catalog: Settings, sample: Sample) -> None:
    from femo.platform.errors import FemoError

    with pytest.raises(FemoError, match="source name 'Bad Name' must match"):
        ingest(spark, catalog, "--source", "Bad Name", "--path", str(sample.images))


def test_symbolic_links_are_followed_and_broken_ones_quarantined(
    spark: SparkSession, catalog: Settings, tmp_path: Path
) -> None:
    # A split laid out with links (a common way to share files between splits): links to files
    # and folders are ingested as what they point at; a broken link, a link to itself and a link
    # to a folder above it are quarantined with their reason; nothing vanishes, nothing loops.
    root, store = tmp_path / "collection", tmp_path / "store"
    good, bad = write_images(root, per_class=2)
    store.mkdir()
    happy = root / "train" / "happy"
    moved = sorted(happy.glob("train_happy_*.jpg"))
    for i, path in enumerate(moved):
        target = store / f"{i}.jpg"
        path.rename(target)
        path.symlink_to(target)  # a link to a file outside the collection
    (root / "test" / "happy").rename(store / "test_happy")
    (root / "test" / "happy").symlink_to(store / "test_happy")  # a label folder that is a link
    (happy / "broken.jpg").symlink_to(store / "gone.jpg")
    (happy / "self.jpg").symlink_to(happy / "self.jpg")
    (happy / "up").symlink_to(root / "train")  # a folder above it: a loop
    # The source sorts after the report tests' one: their tables show the first rows only.
    code, line = ingest(spark, catalog, "--source", "symlinks", "--path", str(root))
    assert code == 0, line
    images = {
        r.path.split("/collection/", 1)[1]
        for r in rows(spark, "SELECT path FROM femo.images WHERE source = 'symlinks'")
    }
    quarantined = {
        r.origin.rsplit("/", 1)[-1]: r.reason
        for r in rows(spark, "SELECT origin, reason FROM femo.quarantine WHERE source = 'symlinks'")
    }
    # Every file found (links included) is an image or a quarantine row: none is hidden here.
    assert len(images) + len(quarantined) == good + len(bad) + 3
    assert {k: v for k, v in quarantined.items() if k in ("broken.jpg", "self.jpg", "up")} == {
        "broken.jpg": "broken_link",
        "self.jpg": "symlink_loop",
        "up": "symlink_loop",
    }
    assert moved and {f"train/happy/{p.name}" for p in moved} <= images
    linked = {f"test/happy/{p.name}" for p in (store / "test_happy").iterdir()}
    assert linked and linked <= images
