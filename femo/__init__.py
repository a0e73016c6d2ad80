"""femo: facial emotion recognition as a distributed data job.

The library behind the jobs in ``jobs/``: settings, the Spark session, the catalog, and the
pure per-record functions that the Spark transforms wrap.
"""

from __future__ import annotations

# pyarrow < 14.0.1 carries CVE-2023-47248; the hotfix disables the vulnerable extension type.
import pyarrow_hotfix  # noqa: F401

from femo.platform.hotfixes import fix_zipimport_invalidation

# Every PySpark task re-reads the zips on its path on Python 3.11 (femo.platform.hotfixes); Spark's
# workers import femo when they unpickle a femo function, so the fix reaches them too.
fix_zipimport_invalidation()

__version__ = "0.1.0"
