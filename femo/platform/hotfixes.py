"""Process-wide fixes for known defects in the stack, applied when :mod:`femo` is imported.

**Zip imports on Python 3.10-3.11.** ``zipimport.zipimporter.invalidate_caches`` re-reads the
whole directory of its archive on every call (CPython gh-103200, fixed in 3.12 only). PySpark's
worker calls ``importlib.invalidate_caches()`` at the start of every task (Spark's master skips
the call since SPARK-54744, after 3.5), and a Spark 3.5 worker has ``pyspark.zip``, the py4j zip
and ``spark-core.jar`` on its path behind a dozen importers: measured here, 70-80 ms of CPU per
task, every task of every Python UDF. The fix keeps the semantics (an archive that changed on
disk is re-read) and skips the re-read of an archive whose size and modification time are
those it was read with.
"""

from __future__ import annotations

import os
import sys
import zipimport
from collections.abc import Callable
from typing import Any, Final

#: (mtime_ns, size) of each archive when this process last read its directory.
_STAMPS: Final[dict[str, tuple[int, int]]] = {}


def archive_stamp(path: str) -> tuple[int, int] | None:
    """(mtime_ns, size) of the file at ``path``, or None where it cannot be stat'ed."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def stamped_invalidation(reread: Callable[[Any], None]) -> Callable[[Any], None]:
    """``zipimporter.invalidate_caches`` that calls ``reread`` (the original) only when the
    archive is new to this process or changed since it was last read."""

    def invalidate_caches(self: Any) -> None:
        stamp = archive_stamp(self.archive)
        cached = zipimport._zip_directory_cache.get(self.archive)  # type: ignore[attr-defined]
        if stamp is not None and cached is not None and _STAMPS.get(self.archive) == stamp:
            self._files = cached
            return
        reread(self)
        if stamp is not None:
            _STAMPS[self.archive] = stamp

    invalidate_caches.__doc__ = "Re-read the archive's directory if it changed on disk (femo)."
    invalidate_caches.femo_hotfix = True  # type: ignore[attr-defined]
    return invalidate_caches


def fix_zipimport_invalidation() -> bool:
    """Install :func:`stamped_invalidation` on Python 3.10-3.11; True when installed now."""
    original = getattr(zipimport.zipimporter, "invalidate_caches", None)
    if not (3, 10) <= sys.version_info[:2] < (3, 12) or original is None:
        return False
    if getattr(original, "femo_hotfix", False):
        return False
    zipimport.zipimporter.invalidate_caches = stamped_invalidation(original)  # type: ignore[method-assign,assignment]
    return True
