"""Process-wide fixes: zip imports re-read an archive only when it changed."""

from __future__ import annotations

import importlib
import os
import sys
import zipfile
import zipimport
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import femo  # noqa: F401  (installs the fixes)

pytestmark = pytest.mark.skipif(
    not (3, 10) <= sys.version_info[:2] < (3, 12), reason="the defect is in CPython 3.10-3.11"
)


def write_zip(path: Path, modules: dict[str, str]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, source in modules.items():
            archive.writestr(f"{name}.py", source)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Directory reads per archive, counted under the original invalidation."""
    counts: Counter[str] = Counter()
    read = zipimport._read_directory  # type: ignore[attr-defined]

    def counting(archive: str) -> Any:
        counts[archive] += 1
        return read(archive)

    monkeypatch.setattr(zipimport, "_read_directory", counting)
    return counts


@pytest.fixture
def on_path(tmp_path: Path) -> Iterator[Path]:
    archive = tmp_path / "femo_zipped.zip"
    write_zip(archive, {"femo_zipped_a": "VALUE = 'a'\n"})
    sys.path.insert(0, str(archive))
    yield archive
    sys.path.remove(str(archive))
    sys.path_importer_cache.pop(str(archive), None)
    for name in ("femo_zipped_a", "femo_zipped_b"):
        sys.modules.pop(name, None)


def test_unchanged_archive_is_not_reread(on_path: Path, reads: Counter[str]) -> None:
    assert importlib.import_module("femo_zipped_a").VALUE == "a"
    imported = reads[str(on_path)]  # the importer read it when it was made
    importlib.invalidate_caches()  # the first invalidation in this process reads it once more
    first = reads[str(on_path)]
    for _ in range(5):
        importlib.invalidate_caches()
    assert first <= imported + 1
    assert reads[str(on_path)] == first
    assert importlib.import_module("femo_zipped_a").VALUE == "a"


def test_changed_archive_is_reread_and_its_new_modules_import(
    on_path: Path, reads: Counter[str]
) -> None:
    importlib.import_module("femo_zipped_a")
    importlib.invalidate_caches()
    before = reads[str(on_path)]
    write_zip(on_path, {"femo_zipped_a": "VALUE = 'a'\n", "femo_zipped_b": "VALUE = 'b'\n"})
    stat = on_path.stat()
    os.utime(on_path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    importlib.invalidate_caches()
    assert reads[str(on_path)] == before + 1
    assert importlib.import_module("femo_zipped_b").VALUE == "b"


def probe(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    for batch in batches:
        fixed = getattr(zipimport.zipimporter.invalidate_caches, "femo_hotfix", False)
        yield pd.DataFrame({"fixed": [fixed] * len(batch)})


def test_spark_python_workers_run_the_fix(spark: Any) -> None:
    """A worker imports femo when it unpickles a femo function, which installs the fix there."""
    rows = spark.range(4, numPartitions=2).mapInPandas(probe, "fixed boolean").collect()
    assert [row.fixed for row in rows] == [True] * 4
