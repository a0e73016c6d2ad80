"""femo.platform.files (listing, reading) and the folder ingest's per-record function, without
Spark."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from femo.ingest.layout import LabelMap
from femo.ingest.run import (
    ACCEPTED,
    QUARANTINED,
    FileShare,
    InspectOptions,
    Tally,
    TallyParam,
    batch_rows,
    collection_reader,
    inspect_files_frame,
    per_origin,
    task_sizes,
    unread_results,
)
from femo.ingest.sample import encode, face_like
from femo.platform.errors import FemoError
from femo.platform.files import (
    Collection,
    LinkError,
    canonical,
    list_files,
    local_path,
    unseen,
)

MTIME_NS = 1_700_000_000_123_456_789  # milliseconds are floored, as Hadoop reports them


def touch(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, ns=(MTIME_NS, MTIME_NS))
    return path


def test_listing_follows_spark_rules_and_fingerprints(tmp_path: Path) -> None:
    touch(tmp_path / "happy" / "a.jpg", b"abc")
    touch(tmp_path / "sad" / "empty.jpg", b"")
    for hidden in (
        "happy/.DS_Store",
        "_temporary/x.jpg",
        ".journal/pixabay/run.json",
        "sad/b.jpg._COPYING_",
    ):
        touch(tmp_path / hidden, b"zz")
    listing = list_files(str(tmp_path))
    assert list(listing.columns) == ["origin", "origin_size", "origin_modified_ms"]
    assert listing.to_dict("records") == [
        {
            "origin": f"file:{tmp_path}/happy/a.jpg",
            "origin_size": 3,
            "origin_modified_ms": 1_700_000_000_123,
        },
        {
            "origin": f"file:{tmp_path}/sad/empty.jpg",
            "origin_size": 0,
            "origin_modified_ms": 1_700_000_000_123,
        },
    ]
    # a file: URI, a trailing slash or a single file as the root lists the same way
    assert list_files(f"file://{tmp_path}/").equals(listing)
    single = list_files(str(tmp_path / "happy" / "a.jpg"))
    assert list(single["origin"]) == [f"file:{tmp_path}/happy/a.jpg"]


def test_roots_that_cannot_be_listed_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(FemoError, match="no such file or folder"):
        list_files(str(tmp_path / "missing"))
    with pytest.raises(FemoError, match="no Python filesystem for ftp://"):
        Collection.open("ftp://example.org/images")


def test_canonical_spelling_of_roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert canonical("data/fer") == f"file:{tmp_path}/data/fer"
    assert canonical("file:///srv/fer/") == "file:/srv/fer"
    assert canonical("file:/srv/fer") == "file:/srv/fer"
    assert canonical("s3a://bucket/fer/") == "s3a://bucket/fer"


def test_local_path_drops_a_file_scheme_only() -> None:
    assert local_path("file:/srv/fer/a.jpg") == "/srv/fer/a.jpg"
    assert local_path("file:///srv/fer/a.jpg") == "/srv/fer/a.jpg"
    assert local_path("/srv/fer/a.jpg") == "/srv/fer/a.jpg"
    assert local_path("data/fer") == "data/fer"
    assert local_path("s3a://bucket/fer/a.jpg") == "s3a://bucket/fer/a.jpg"


def test_read_is_sized_by_the_listing_but_sees_growth_and_the_cap(tmp_path: Path) -> None:
    path = touch(tmp_path / "happy" / "a.jpg", b"x" * 100)
    collection = Collection.open(str(tmp_path))
    origin = f"file:{path}"
    assert collection.read(origin, 100, 1000) == b"x" * 100
    assert collection.read(origin, 10, 1000) == b"x" * 100  # grew since the listing
    assert collection.read(origin, 100, 50) == b"x" * 51  # over the cap: cap + 1 bytes
    with pytest.raises(OSError):
        collection.read(f"file:{tmp_path}/happy/gone.jpg", 10, 1000)
    with pytest.raises(ValueError, match="not under"):
        collection.path_of("file:/elsewhere/a.jpg")


def test_unseen_keeps_new_and_changed_files_only() -> None:
    listing = pd.DataFrame(
        {
            "origin": ["file:/c/a.jpg", "file:/c/b.jpg", "file:/c/new.jpg"],
            "origin_size": [10, 20, 5],
            "origin_modified_ms": [1, 2, 3],
        }
    )
    known = pd.DataFrame(
        {
            "origin": ["file:/c/a.jpg", "file:/c/b.jpg", "file:/c/b.jpg"],
            "origin_size": [10, 21, 21],
            "origin_modified_ms": [1, 2, 2],
        }
    )
    assert list(unseen(listing, known)["origin"]) == ["file:/c/b.jpg", "file:/c/new.jpg"]
    assert unseen(listing, known.iloc[0:0]).equals(listing)


LABELS = {"happy": 3, "sad": 4}


def test_per_record_function_reads_only_what_it_must(tmp_path: Path) -> None:
    good = encode(face_like(np.random.default_rng(1), 48, color=False), ".png")
    touch(tmp_path / "happy" / "good.png", good)
    names = ["happy/good.png", "happy/empty.jpg", "happy/huge.jpg", "bored/x.jpg"]
    names += ["happy/locked.jpg"]
    listing = pd.DataFrame(
        {
            "origin": [f"file:{tmp_path}/{n}" for n in names],
            "origin_size": [len(good), 0, 10_000, 50, 60],
            "origin_modified_ms": [7] * len(names),
        }
    )
    options = InspectOptions(
        root=f"file:{tmp_path}", split_from="none", labels=LABELS, max_file_bytes=5_000
    )
    disk = collection_reader(options.root, options.max_file_bytes)
    asked: list[str] = []

    def read(origin: str, size: int) -> bytes:
        asked.append(origin.rsplit("/", 1)[1])
        if origin.endswith("locked.jpg"):
            raise PermissionError(13, "Permission denied")
        return disk(origin, size)

    out = inspect_files_frame(listing, options, LabelMap.from_names(LABELS), read)
    assert asked == ["good.png", "locked.jpg"]
    by_name = {p.rsplit("/", 1)[1]: r for p, r in zip(out["path"], out.itertuples(), strict=True)}
    assert by_name["good.png"].status == ACCEPTED
    assert by_name["good.png"].content == good
    assert (by_name["good.png"].label_id, by_name["good.png"].format) == (3, "png")
    assert by_name["good.png"].origin_modified_ms == 7
    reasons = {n: (r.status, r.reason) for n, r in by_name.items() if n != "good.png"}
    assert reasons == {
        "empty.jpg": (QUARANTINED, "empty_file"),
        "huge.jpg": (QUARANTINED, "file_too_large"),
        "x.jpg": (QUARANTINED, "unknown_label"),
        "locked.jpg": (QUARANTINED, "unreadable"),
    }
    assert "Permission denied" in by_name["locked.jpg"].detail
    assert by_name["huge.jpg"].detail == "10000 bytes > 5000"


def test_files_that_gave_no_row_are_quarantined_as_unreadable() -> None:
    new = pd.DataFrame(
        {
            "origin": ["file:/d/a.csv", "file:/d/header_only.csv"],
            "origin_size": [100, 20],
            "origin_modified_ms": [1, 2],
        }
    )
    counts = pd.DataFrame(
        {
            "origin": ["file:/d/a.csv", "file:/d/a.csv"],
            "status": [ACCEPTED, QUARANTINED],
            "reason": [None, "malformed_row"],
            "count": [3, 1],
        }
    )
    finished = per_origin(counts, new)
    assert finished[["origin", "images", "quarantined"]].values.tolist() == [
        ["file:/d/a.csv", 3, 1],
        ["file:/d/header_only.csv", 0, 0],
    ]
    unread = unread_results(finished)
    assert unread[["path", "status", "reason"]].values.tolist() == [
        ["file:/d/header_only.csv", QUARANTINED, "unreadable"]
    ]


def test_batch_rows_follow_the_files_bytes() -> None:
    assert batch_rows(pd.Series([1_500] * 10), 16_000_000) == 4096  # FER: capped
    assert batch_rows(pd.Series([5_000_000] * 10), 16_000_000) == 16  # photos: floor
    assert batch_rows(pd.Series([100_000] * 10), 16_000_000) == 160
    assert batch_rows(pd.Series([], dtype="int64"), 16_000_000) == 4096


def test_task_sizes_halve_what_is_left_each_round() -> None:
    assert task_sizes(28_709, cores=2, rounds=4) == [7177, 7177, 3588, 3588, 1794, 1794, 1796, 1795]
    assert task_sizes(100, cores=4, rounds=1) == [25, 25, 25, 25]
    assert task_sizes(10, cores=2, rounds=4) == [2, 2, 1, 1, 1, 1, 1, 1]
    assert task_sizes(3, cores=4, rounds=3) == [1, 1, 1]  # fewer files than cores
    assert task_sizes(0, cores=2, rounds=4) == []
    for files, cores, rounds in ((28_709, 2, 5), (1, 1, 1), (999, 64, 4), (7, 3, 9)):
        sizes = task_sizes(files, cores, rounds)
        assert sum(sizes) == files and min(sizes, default=1) > 0
        assert len(sizes) <= cores * rounds
        # The last tasks are the short ones: no task is bigger than one before it but for
        # the last round, which takes the rest.
        assert sizes[:-cores] == sorted(sizes[:-cores], reverse=True)


def test_a_share_deals_every_file_to_exactly_one_task_each_a_sample_of_all() -> None:
    listing = pd.DataFrame(
        {
            "origin": [f"file:/c/{'ab'[i // 10]}/{i:02d}.png" for i in range(20)],
            "origin_size": 1,
            "origin_modified_ms": 0,
        }
    )
    share = FileShare.deal(listing, cores=2, rounds=2, rows=3)
    assert share.sizes == (5, 5, 5, 5) and share.tasks == 4
    batches = {task: list(share.batches(task)) for task in range(share.tasks)}
    assert [len(b) for b in batches[0]] == [3, 2]
    firsts = [o for b in batches[0] for o in b["origin"]]
    assert firsts == [
        f"file:/c/{d}/{i:02d}.png" for d, i in zip("aaabb", (0, 4, 8, 12, 16), strict=True)
    ]
    dealt = [o for task in batches.values() for b in task for o in b["origin"]]
    assert sorted(dealt) == listing["origin"].tolist()
    empty = FileShare.deal(listing.iloc[:0], cores=2, rounds=3, rows=2)
    assert empty.tasks == 0


def test_tally_counts_batches_and_merges_by_key(tmp_path: Path) -> None:
    """A task's batches add up; merging task tallies replaces entries by key, so a task Spark
    runs again (same partition, same files) cannot count twice."""
    root = tmp_path / "c"
    rng = np.random.default_rng(2)
    for name in ("happy/a.png", "happy/b.png", "nope/c.png"):
        touch(root / name, encode(face_like(rng, 32, color=False), ".png"))
    touch(root / "happy" / "bad.jpg", b"not an image at all")
    listing = list_files(str(root))
    options = InspectOptions(root=canonical(str(root)), split_from="none", labels={"happy": 3})
    read = collection_reader(options.root, options.max_file_bytes)
    labels = LabelMap.from_names(options.labels)
    task = Tally()
    for batch in (listing.iloc[:2], listing.iloc[2:]):
        task.add_results(inspect_files_frame(batch, options, labels, read), partition=7)
    param = TallyParam()
    driver = param.addInPlace(param.zero(Tally()), task)
    again = Tally()
    again.add_results(inspect_files_frame(listing, options, labels, read), partition=7)
    driver = param.addInPlace(driver, again)  # a retried task reports the same entries

    counts = driver.counts_frame().sort_values(["origin", "reason"], na_position="first")
    assert [(o.rsplit("/", 2)[-2:], s, r, n) for o, s, r, n in counts.values.tolist()] == [
        (["happy", "a.png"], ACCEPTED, None, 1),
        (["happy", "b.png"], ACCEPTED, None, 1),
        (["happy", "bad.jpg"], QUARANTINED, "not_an_image", 1),
        (["nope", "c.png"], QUARANTINED, "unknown_label", 1),
    ]
    assert driver.origins() == set(listing["origin"])
    rejected = driver.rejected_frame()
    assert sorted(rejected["reason"]) == ["not_an_image", "unknown_label"]
    assert rejected["content"].isna().all() and (rejected["status"] == QUARANTINED).all()


def test_listing_follows_links_and_lists_broken_ones_and_loops_once(tmp_path: Path) -> None:
    root, outside = tmp_path / "c", tmp_path / "outside"
    (root / "train" / "happy").mkdir(parents=True)
    outside.mkdir()
    (outside / "o.jpg").write_bytes(b"outside")
    (root / "train" / "happy" / "r.jpg").write_bytes(b"real")
    (root / "train" / "happy" / "l.jpg").symlink_to(outside / "o.jpg")
    (root / "train" / "happy" / "b.jpg").symlink_to(outside / "gone.jpg")
    (root / "train" / "happy" / "self.jpg").symlink_to(root / "train" / "happy" / "self.jpg")
    (root / "train" / "happy" / "up").symlink_to(root)  # back to the root: a loop
    (root / "train" / "sad").symlink_to(outside)
    collection = Collection.open(str(root))
    listing = collection.listing()
    names = [o.removeprefix(collection.root + "/") for o in listing["origin"]]
    assert names == [
        "train/happy/b.jpg",
        "train/happy/l.jpg",
        "train/happy/r.jpg",
        "train/happy/self.jpg",
        "train/happy/up",
        "train/sad/o.jpg",
    ]
    read = dict(zip(names, listing["origin_size"], strict=True))
    assert collection.read(
        f"{collection.root}/train/happy/l.jpg", read["train/happy/l.jpg"], 99
    ) == (b"outside")
    reasons = {}
    for name in ("train/happy/b.jpg", "train/happy/self.jpg", "train/happy/up"):
        with pytest.raises(LinkError) as failed:
            collection.read(f"{collection.root}/{name}", read[name], 99)
        reasons[name] = failed.value.reason
    assert reasons == {
        "train/happy/b.jpg": "broken_link",
        "train/happy/self.jpg": "symlink_loop",
        "train/happy/up": "symlink_loop",
    }


def test_a_file_is_read_whole_or_says_why_not(tmp_path: Path) -> None:
    import bz2
    import gzip

    data = b"".join(b"%d,%d\n" % (i, i * i) for i in range(50_000))
    for name, packed in (("a.csv.gz", gzip.compress(data)), ("a.csv.bz2", bz2.compress(data))):
        (tmp_path / name).write_bytes(packed)
        (tmp_path / f"cut-{name}").write_bytes(packed[: len(packed) // 2])
    (tmp_path / "plain.csv").write_bytes(data)
    collection = Collection.open(str(tmp_path))
    listing = collection.listing()
    names = listing["origin"].str.rsplit("/", n=1).str[-1]
    listed = dict(zip(names, listing["origin_size"], strict=True))

    def why(name: str) -> str | None:
        return collection.unreadable(collection.origin_of(str(tmp_path / name)), listed[name])

    assert [why(n) for n in ("a.csv.gz", "a.csv.bz2", "plain.csv")] == [None, None, None]
    for name in ("cut-a.csv.gz", "cut-a.csv.bz2"):
        assert why(name) == "cannot be read whole: Truncated compressed stream"
    (tmp_path / "plain.csv").write_bytes(data[:100])
    assert why("plain.csv") == f"100 bytes now, {len(data)} when listed: changing or replaced"
    (tmp_path / "plain.csv").unlink()
    assert why("plain.csv") == "gone since it was listed"
