"""List a collection's files on the driver and read them in the Python workers.

Spark's ``binaryFile`` source lists through Hadoop on the driver, then opens every file in the
JVM and ships its bytes to Python through Arrow. On FER-2013's 28,709 small files that per-file
work took longer than decoding them all (``benchmarks/ingest.py``, BENCHMARKS.md), so femo lists
with a pyarrow filesystem on the driver and lets the Python worker that decodes a file read it:
the bytes cross into the JVM once, on their way to Delta. Local folders, S3 (``s3://``,
``s3a://``), GCS and HDFS are reachable; the listing follows Spark's file-index rules (names
starting with ``.`` or ``_`` and ``*._COPYING_`` files are not part of a collection).

A file is identified by its *origin* URI and fingerprinted by (origin, size, modification time
in milliseconds, the precision Hadoop reports, so rows written by earlier versions compare).
"""

from __future__ import annotations

import errno
import os
import stat
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NamedTuple
from urllib.parse import urlsplit

import pandas as pd
import pyarrow.fs as pafs

from femo.platform.errors import FemoError
from femo.platform.settings import URI_SCHEMES as SCHEMES

#: Suffix of the hidden temp file :func:`write_atomic` renames into place.
_PART: Final = ".part"

#: Columns of a listing frame (:func:`list_files`), the fingerprint of each file.
LISTING_COLUMNS: Final = ("origin", "origin_size", "origin_modified_ms")


#: Compressed files Spark's text source decompresses (by Hadoop codec, from the extension) that
#: pyarrow decompresses the same way, with pyarrow's name for the codec.
WHOLE_READ_CODECS: Final[dict[str, str]] = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}
_WHOLE_READ_CHUNK: Final = 1 << 22


def is_hidden(name: str) -> bool:
    """Names Spark's file index leaves out of a collection: ``.x``, ``_x``, ``x._COPYING_``."""
    return name.startswith((".", "_")) or name.endswith("._COPYING_")


def local_path(uri: str) -> str:
    """``uri`` without a local ``file:`` scheme (``file:/x`` and ``file:///x`` give ``/x``), so
    Spark's URIs and user paths compare; plain paths and other URIs are returned unchanged.
    The other way, to a ``file:`` URI, is :func:`canonical`."""
    for prefix in ("file://", "file:"):
        if uri.startswith(prefix):
            return uri[len(prefix) :]
    return uri


def canonical(root: str) -> str:
    """``root`` as origins are spelled: local paths (plain or ``file:``) become ``file:/abs``
    (Spark's spelling), other URIs keep their scheme; no trailing slash."""
    scheme = urlsplit(root).scheme
    if scheme and scheme != "file":
        return root.rstrip("/")
    return "file:" + str(Path(local_path(root)).expanduser().absolute())


@dataclass(frozen=True)
class Collection:
    """A collection root opened with its pyarrow filesystem; origins under it map to paths in
    that filesystem. Build one per process (a filesystem object may hold clients)."""

    root: str
    fs: pafs.FileSystem
    fs_root: str

    @classmethod
    def open(cls, root: str) -> Collection:
        """Open ``root`` (a local path or a URI).

        Raises:
            FemoError: the scheme has no Python filesystem here.
        """
        uri = canonical(root)
        scheme = urlsplit(uri).scheme
        if scheme == "file":
            return cls(uri, pafs.LocalFileSystem(), local_path(uri))
        if scheme not in SCHEMES:
            raise FemoError(
                f"{root}: no Python filesystem for {scheme}:// "
                f"(supported: {', '.join(sorted(SCHEMES))})"
            )
        native = SCHEMES[scheme] + uri[len(scheme) :]
        try:
            fs, path = pafs.FileSystem.from_uri(native)
        except (OSError, ValueError) as err:
            raise FemoError(f"{root}: cannot open its filesystem: {err}") from err
        return cls(uri, fs, path.rstrip("/"))

    def path_of(self, origin: str) -> str:
        """The filesystem path of ``origin`` (an origin under this root, or the root)."""
        if origin == self.root:
            return self.fs_root
        if not origin.startswith(self.root + "/"):
            raise ValueError(f"{origin} is not under {self.root}")
        return self.fs_root + origin[len(self.root) :]

    def origin_of(self, path: str) -> str:
        """The origin URI of a filesystem ``path`` under the root."""
        return self.root + path[len(self.fs_root) :]

    @property
    def local(self) -> bool:
        """Whether the collection is on the local filesystem (where symbolic links exist)."""
        return isinstance(self.fs, pafs.LocalFileSystem)

    def read(self, origin: str, expected: int, max_bytes: int) -> bytes:
        """The bytes of ``origin``, listed with ``expected`` bytes; never more than
        ``max_bytes + 1`` of them (a caller seeing more than ``max_bytes`` knows the file is
        over its cap without reading all of it). A file that grew since the listing is read to
        its end, within that bound.

        Raises:
            OSError: the file cannot be opened or read.
        """
        wanted = min(expected, max_bytes) + 1  # sized reads: no buffer of max_bytes per file
        path = self.path_of(origin)
        try:
            with self.fs.open_input_stream(path) as stream:
                data: bytes = stream.read(wanted)
                if len(data) == wanted and wanted <= max_bytes:
                    data += stream.read(max_bytes + 1 - wanted)
        except OSError as err:
            if self.local:
                link_error(path, err)
            raise
        return data

    def unreadable(self, origin: str, expected: int) -> str | None:
        """Why ``origin`` (listed with ``expected`` bytes) cannot be read whole now, or None:
        gone, another size than listed, or (``.gz``, ``.bz2``, ``.zst``) a compressed stream
        that is cut short or corrupt, found by decompressing it to its end. Spark's text source
        would read such a file partly (or, told to ignore corrupt files, not at all) without a
        word."""
        path = self.path_of(origin)
        try:
            info = self.fs.get_file_info(path)
            if info.type != pafs.FileType.File:
                return "gone since it was listed"
            if info.size != expected:
                return f"{info.size} bytes now, {expected} when listed: changing or replaced"
            codec = WHOLE_READ_CODECS.get(Path(path).suffix.lower())
            if codec is not None:
                with self.fs.open_input_stream(path, compression=codec) as stream:
                    while stream.read(_WHOLE_READ_CHUNK):
                        pass
        except OSError as err:
            return f"cannot be read whole: {err}"
        return None

    def listing(self) -> pd.DataFrame:
        """Every file of the collection (:data:`LISTING_COLUMNS`), sorted by origin; the root
        may be a single file.

        Raises:
            FemoError: the root does not exist or a folder under it cannot be listed.
        """
        top = self.fs.get_file_info(self.fs_root)
        if top.type == pafs.FileType.NotFound:
            raise FemoError(f"{self.root}: no such file or folder")
        if top.type == pafs.FileType.File:
            infos = [top]
        elif self.local:
            return self._local_listing()
        else:
            infos = []
            folders = [self.fs_root]
            while folders:
                folder = folders.pop()
                try:
                    children = self.fs.get_file_info(pafs.FileSelector(folder))
                except OSError as err:
                    raise FemoError(f"{self.origin_of(folder)}: cannot list: {err}") from err
                for info in children:
                    if is_hidden(info.base_name):
                        continue
                    if info.type == pafs.FileType.Directory:
                        folders.append(info.path)
                    elif info.type == pafs.FileType.File:
                        infos.append(info)
        return _listing_frame(
            [self.origin_of(i.path) for i in infos],
            [i.size for i in infos],
            [i.mtime_ns or 0 for i in infos],
        )

    def _local_listing(self) -> pd.DataFrame:
        """:meth:`listing` of a local folder, following symbolic links.

        pyarrow's local listing follows links but leaves out broken ones and loops without a
        word, and descends into a link to a folder above it until paths grow too long. Here a
        link to a file is listed as that file; a link to a folder is walked unless the folder is
        one of its own ancestors (a loop); a broken link and a loop are listed with the link's
        own size and time, so that reading them fails with :class:`LinkError` and they reach
        quarantine with the reason. Sockets, pipes and devices are not files and are left out.
        """
        rows: list[tuple[str, int, int]] = []
        root_stat = os.stat(self.fs_root)
        folders: list[tuple[str, frozenset[tuple[int, int]]]] = [
            (self.fs_root, frozenset({(root_stat.st_dev, root_stat.st_ino)}))
        ]
        while folders:
            folder, ancestors = folders.pop()
            try:
                children = list(os.scandir(folder))
            except OSError as err:
                raise FemoError(f"{self.origin_of(folder)}: cannot list: {err}") from err
            for child in children:
                if is_hidden(child.name):
                    continue
                try:
                    info = child.stat()  # follows links
                except OSError:  # a broken link, or links that loop among themselves
                    info = child.stat(follow_symlinks=False)
                    rows.append((child.path, info.st_size, info.st_mtime_ns))
                    continue
                if stat.S_ISDIR(info.st_mode):
                    key = (info.st_dev, info.st_ino)
                    if key in ancestors:  # a link back to a folder above it
                        link = child.stat(follow_symlinks=False)
                        rows.append((child.path, link.st_size, link.st_mtime_ns))
                    else:
                        folders.append((child.path, ancestors | {key}))
                elif stat.S_ISREG(info.st_mode):
                    rows.append((child.path, info.st_size, info.st_mtime_ns))
        return _listing_frame(
            [self.origin_of(p) for p, _, _ in rows],
            [size for _, size, _ in rows],
            [mtime for _, _, mtime in rows],
        )


class LinkError(OSError):
    """A listed symbolic link that cannot be read as a file: ``reason`` is ``broken_link`` or
    ``symlink_loop``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


#: Quarantine reasons of :class:`LinkError`.
BROKEN_LINK: Final = "broken_link"
SYMLINK_LOOP: Final = "symlink_loop"


def link_error(path: str, err: OSError) -> None:
    """Raise :class:`LinkError` when ``path``, which failed to open with ``err``, is a symbolic
    link that is broken or loops; return when it is not a link (the caller re-raises ``err``)."""
    if not os.path.islink(path):
        return
    target = os.readlink(path)
    looped = os.path.isdir(path)  # listed as a file only when it leads to a folder above it
    if not looped:
        try:
            os.stat(path)
        except OSError as cause:
            if cause.errno != errno.ELOOP:
                raise LinkError(
                    BROKEN_LINK, f"symbolic link to {target}, which does not exist"
                ) from err
            looped = True
    if looped:
        raise LinkError(SYMLINK_LOOP, f"symbolic link to {target} loops back on itself") from err


def _listing_frame(origins: list[str], sizes: list[int], mtimes_ns: list[int]) -> pd.DataFrame:
    """A listing frame (:data:`LISTING_COLUMNS`) sorted by origin; times in milliseconds."""
    frame = pd.DataFrame(
        {
            "origin": origins,
            "origin_size": pd.array(sizes, dtype="int64"),
            "origin_modified_ms": pd.array([t // 1_000_000 for t in mtimes_ns], dtype="int64"),
        },
        columns=list(LISTING_COLUMNS),
    )
    return frame.sort_values("origin", ignore_index=True)


class Listed(NamedTuple):
    """One listed file: its fingerprint."""

    origin: str
    origin_size: int
    origin_modified_ms: int


def entries(listing: pd.DataFrame) -> list[Listed]:
    """The rows of a listing frame."""
    return [
        Listed(str(o), int(s), int(m))
        for o, s, m in zip(
            listing["origin"],
            listing["origin_size"],
            listing["origin_modified_ms"],
            strict=True,
        )
    ]


def list_files(root: str) -> pd.DataFrame:
    """Every file under ``root`` (see :meth:`Collection.listing`)."""
    return Collection.open(root).listing()


def unseen(listing: pd.DataFrame, known: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``listing`` whose fingerprint is not in ``known`` (both :data:`LISTING_COLUMNS`):
    new files, and files whose size or modification time changed."""
    if known.empty:
        return listing.copy()
    merged = listing.merge(
        known[list(LISTING_COLUMNS)].drop_duplicates(),
        on=list(LISTING_COLUMNS),
        how="left",
        indicator=True,
    )
    return merged[merged["_merge"] == "left_only"][list(LISTING_COLUMNS)].reset_index(drop=True)


@dataclass(frozen=True)
class Markers:
    """Empty files named after something (a run id) in one folder, local or a URI: a journal
    of what has started and not yet finished. The folder appears with the first marker."""

    folder: str

    def put(self, name: str) -> None:
        """Leave the marker ``name``.

        Raises:
            OSError: it cannot be written.
        """
        where = Collection.open(self.folder)
        where.fs.create_dir(where.fs_root, recursive=True)
        with where.fs.open_output_stream(f"{where.fs_root}/{name}"):
            pass

    def names(self) -> list[str]:
        """The markers left and not dropped, sorted."""
        where = Collection.open(self.folder)
        found = where.fs.get_file_info(pafs.FileSelector(where.fs_root, allow_not_found=True))
        return sorted(i.base_name for i in found if i.type == pafs.FileType.File)

    def drop(self, names: list[str]) -> None:
        """Remove the markers ``names`` (those already gone are fine)."""
        where = Collection.open(self.folder)
        for name in names:
            with suppress(FileNotFoundError):
                where.fs.delete_file(f"{where.fs_root}/{name}")


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a hidden temp file beside ``path`` and rename it into place, so a
    reader never sees half a file (landed images, journal entries, the EDA report)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}{_PART}")
    with part.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(part, path)


def remove_partials(root: Path) -> int:
    """Remove temp files a killed run left under ``root``; how many."""
    stale = [p for p in root.rglob(f".*{_PART}") if p.is_file()] if root.is_dir() else []
    for part in stale:
        part.unlink(missing_ok=True)
    return len(stale)
