"""Download images found by a search connector into the landing zone, with a manifest.

For every requested emotion the job asks the connector's API for result pages, downloads the
candidates it has not stored yet, checks that each answer is an image, and lands it as
``<home>/landing/<source>/<emotion>/<source_image_id>.<ext>`` (extension from the sniffed
bytes; written to a hidden temp file and renamed, so a reader never sees half a file). The
``downloads`` table gets one row per image; rejected answers go to ``quarantine`` with their
reason. ``jobs/ingest_images.py --source <source> --path <home>/landing/<source>`` ingests the
landing zone (label = emotion folder).

Re-runs and interruptions:

* ``--per-emotion N`` is a target: a query that already has N images in the manifest is not
  searched again, so a finished run's re-run makes no request and writes nothing.
* A candidate already in the manifest (by source image id) is skipped; bytes already stored
  under another id (same SHA-256) are not stored twice: the second id gets a ``duplicate`` row
  pointing at the first copy.
* An image URL quarantined for what its bytes were (HTML, wrong type, too large, not an image)
  or for where it led (``refused_address``: its host, or a redirect's, resolves to a loopback,
  private, link-local... address outside ``http.allow_networks``; see
  :mod:`femo.sources.http`) is not downloaded again; one that failed on the network (timeout,
  HTTP error, connection, truncated) is tried again on the next run.
* Before a file is landed its manifest row is written to a journal
  (``<home>/landing/.journal/<source>/``, hidden from Spark's file listing); the journal entry
  is removed once the row is committed. A run killed between landing files and committing their
  rows is completed by the next run from the journal, without downloading again. A landed file
  that has neither a row nor a journal entry is adopted when the search returns its candidate.

Downloads run in a thread pool on the driver (``fetch.threads``): the work is waiting on remote
servers (I/O bound; sockets release the GIL), and the bytes must end up in the driver's landing
zone anyway, so Spark tasks would only add scheduling and serialisation. Spark does what it is
good at here: the few Delta commits.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import requests

from femo.ingest.images import Limits, Rejection, inspect_image, sha256_hex
from femo.ingest.run import quarantine_rows, rejection_record, results_frame
from femo.platform.catalog import delete_keys, label_names, upsert
from femo.platform.errors import FemoError
from femo.platform.files import remove_partials, write_atomic
from femo.platform.schemas import DOWNLOADS, QUARANTINE
from femo.platform.settings import HttpSettings, Settings, is_uri
from femo.sources import http
from femo.sources.connectors import BAD_JSON, Candidate, Connector, Page, PageError, PageRequest

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

DOWNLOADED: Final = "downloaded"
DUPLICATE: Final = "duplicate"
#: An answer whose Content-Type says it is no image (an HTML error page served with 200).
WRONG_CONTENT_TYPE: Final = "wrong_content_type"
#: Content types that say nothing either way: the bytes decide.
NEUTRAL_TYPES: Final = frozenset({"", "application/octet-stream", "binary/octet-stream"})
#: Failures that are the network's fault, not the file's: a re-run tries these URLs again.
TRANSIENT: Final = frozenset({http.HTTP_ERROR, http.TIMEOUT, http.CONNECTION, http.TRUNCATED})
#: File extension of each sniffed format.
EXTENSIONS: Final[dict[str, str]] = {
    "jpeg": "jpg",
    "png": "png",
    "gif": "gif",
    "bmp": "bmp",
    "webp": "webp",
    "tiff": "tif",
    "pnm": "ppm",
    "ico": "ico",
    "tga": "tga",
    "pcx": "pcx",
}
JOURNAL: Final = ".journal"


# Pure parts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One query of a run: the emotion word as asked, its canonical name and id."""

    word: str
    emotion: str
    emotion_id: int


def resolve_emotions(
    words: Iterable[str], labels: Mapping[str, int], names: Mapping[int, str]
) -> list[Target]:
    """The targets for emotion words, matched case-insensitively against the ``emotions``
    names and synonyms (``labels``: label -> id; ``names``: id -> canonical name).

    Raises:
        FemoError: a word matches no emotion (all unknown words are named), or none is given.
    """
    targets: dict[str, Target] = {}
    unknown = []
    for raw in words:
        word = raw.strip().lower()
        if not word:
            continue
        if word not in labels:
            unknown.append(raw.strip())
            continue
        targets.setdefault(word, Target(word, names[labels[word]], labels[word]))
    if unknown:
        raise FemoError(
            f"unknown emotion(s) {', '.join(unknown)}: use names or synonyms from the emotions "
            f"table ({', '.join(names[i] for i in sorted(names))})"
        )
    if not targets:
        raise FemoError("no emotion given (e.g. --emotions happy,sad)")
    return list(targets.values())


def source_dir(landing_dir: str, source: str) -> Path:
    """Where a source's images land: ``<landing>/<source>``, the ingest job's ``--path``."""
    if is_uri(landing_dir):
        raise FemoError(
            f"downloads are written by the driver to a local landing zone; home {landing_dir} "
            "is a URI: run the fetch job with a local home and copy the landing zone over"
        )
    return Path(landing_dir) / source


def landing_path(landing_dir: str, source: str, emotion: str, image_id: str, fmt: str) -> Path:
    """``<landing>/<source>/<emotion>/<image_id>.<ext>``, the extension from the format."""
    return source_dir(landing_dir, source) / emotion / f"{image_id}.{EXTENSIONS[fmt]}"


def journal_dir(landing_dir: str, source: str) -> Path:
    """The journal of rows landed but not committed yet (outside the source's folder)."""
    return Path(landing_dir) / JOURNAL / source


@dataclass(frozen=True)
class Accepted:
    """Bytes that are a whole image."""

    data: bytes
    format: str
    sha256: str


def _preview(data: bytes, secrets: Sequence[str]) -> str:
    text = data[:48].decode("utf-8", "replace")
    return http.scrub("".join(ch if ch.isprintable() else "." for ch in text), secrets)


def judge(
    content: bytes, content_type: str, limits: Limits, secrets: Sequence[str] = ()
) -> Accepted | Rejection:
    """Whether a downloaded answer is an image: its Content-Type must not say otherwise
    (``wrong_content_type``), and the bytes must sniff and decode as a whole image (the reasons
    of :func:`femo.ingest.images.inspect_image`: not_an_image, truncated, undecodable, ...)."""
    if content_type not in NEUTRAL_TYPES and not content_type.startswith("image/"):
        return Rejection(
            WRONG_CONTENT_TYPE,
            f"Content-Type {content_type}, {len(content)} bytes starting "
            f"{_preview(content, secrets)!r}",
        )
    facts = inspect_image(content, limits)
    if isinstance(facts, Rejection):
        return facts
    return Accepted(content, facts.format, facts.image_id)


def decode_json(content: bytes, content_type: str, secrets: Sequence[str] = ()) -> Any:
    """The decoded JSON of a search answer.

    Raises:
        PageError: ``bad_json`` when the body is not JSON (the message shows its start).
    """
    try:
        return json.loads(content)
    except ValueError:
        raise PageError(
            BAD_JSON,
            f"answer is not JSON ({content_type or 'no Content-Type'}, {len(content)} bytes "
            f"starting {_preview(content, secrets)!r})",
        ) from None


def manifest_row(
    connector: Connector,
    target: Target,
    candidate: Candidate,
    *,
    status: str,
    sha256: str,
    fmt: str,
    size: int,
    path: Path,
    fetched_at: datetime,
    run_id: str,
    duplicate_of: str | None = None,
) -> dict[str, Any]:
    """A ``downloads`` row; URLs are redacted and every text scrubbed of the key."""
    secrets = connector.secrets

    def safe(url: str | None) -> str | None:
        return http.redact(url, secrets) if url else None

    row = {
        "source": connector.name,
        "source_image_id": candidate.source_image_id,
        "emotion_id": target.emotion_id,
        "emotion": target.emotion,
        "query": connector.query(target.word),
        "page_url": safe(candidate.page_url),
        "image_url": safe(candidate.image_url),
        "title": candidate.title,
        "licence": candidate.licence,
        "author": candidate.author,
        "width": candidate.width,
        "height": candidate.height,
        "status": status,
        "duplicate_of": duplicate_of,
        "sha256": sha256,
        "format": fmt,
        "size_bytes": size,
        "landing_path": str(path),
        "fetched_at": fetched_at,
        "run_id": run_id,
    }
    return {k: http.scrub(v, secrets) if isinstance(v, str) else v for k, v in row.items()}


def landed_file(folder: Path, image_id: str) -> Path | None:
    """The landed file of ``image_id`` in ``folder`` (any extension), if there is one."""
    if not folder.is_dir():
        return None
    found = sorted(p for p in folder.glob(f"{image_id}.*") if not p.name.startswith("."))
    return found[0] if found else None


def journal_write(folder: Path, row: Mapping[str, Any]) -> None:
    """Journal one manifest row (JSON, written atomically)."""
    entry = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}
    write_atomic(folder / f"{row['source_image_id']}.json", json.dumps(entry).encode("utf-8"))


def journal_read(folder: Path) -> list[dict[str, Any]]:
    """The journaled rows (unreadable entries are skipped and removed)."""
    rows = []
    for entry in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            row = json.loads(entry.read_text("utf-8"))
            row["fetched_at"] = datetime.fromisoformat(row["fetched_at"])
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("dropping unreadable journal entry %s", entry)
            entry.unlink(missing_ok=True)
            continue
        rows.append(row)
    return rows


def journal_drop(folder: Path, image_ids: Iterable[str]) -> None:
    """Remove the journal entries of ``image_ids``."""
    for image_id in image_ids:
        (folder / f"{image_id}.json").unlink(missing_ok=True)


# Downloads ---------------------------------------------------------------------------------


class Downloader:
    """GETs through :mod:`femo.sources.http`, one session per thread, images in a thread pool.

    Why threads on the driver: see the module docstring (I/O bound work, bytes bound for the
    driver's landing zone).
    """

    def __init__(self, settings: HttpSettings, threads: int) -> None:
        self.settings = settings
        self.threads = threads
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def _session(self) -> requests.Session:
        found: requests.Session | None = getattr(self._local, "session", None)
        if found is None:
            found = http.session(self.settings)
            self._local.session = found
            with self._lock:
                self._sessions.append(found)
        return found

    def page(self, request: PageRequest, secrets: Sequence[str]) -> http.Fetched:
        """One search page. Redirects are not followed: an API answers where it is asked (and
        its request carries the key)."""
        return http.get(
            self._session(),
            request.url,
            self.settings,
            headers=request.headers,
            secrets=secrets,
            allow_redirects=False,
        )

    def image(self, url: str, secrets: Sequence[str]) -> http.Fetched | http.FetchError:
        """One image, or why it could not be had."""
        try:
            return http.get(self._session(), url, self.settings, secrets=secrets)
        except http.FetchError as exc:
            return exc

    def images(
        self, urls: Sequence[str], secrets: Sequence[str]
    ) -> list[http.Fetched | http.FetchError]:
        """Every URL of ``urls``, in parallel, results in the same order."""
        if len(urls) <= 1 or self.threads == 1:
            return [self.image(url, secrets) for url in urls]
        if self._pool is None:  # one pool for the run: threads keep their sessions
            self._pool = ThreadPoolExecutor(self.threads, "femo-fetch")
        return list(self._pool.map(lambda url: self.image(url, secrets), urls))

    def close(self) -> None:
        """Stop the threads and close every thread's session."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        with self._lock:
            for one in self._sessions:
                one.close()
            self._sessions.clear()


# One run -----------------------------------------------------------------------------------


@dataclass
class Known:
    """What the tables already hold for a source."""

    #: source_image_id of every manifest row.
    ids: set[str] = field(default_factory=set)
    #: sha256 -> (source_image_id, landing path) of every stored file.
    stored: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: images stored per query.
    have: Counter[str] = field(default_factory=Counter)
    #: quarantine path (redacted URL) -> (reason, detail).
    quarantined: dict[str, tuple[str, str | None]] = field(default_factory=dict)


@dataclass
class FetchSummary:
    """Outcome of one run."""

    source: str
    queries: int = 0
    complete: int = 0
    #: images the manifest held for this run's queries before it started.
    already: int = 0
    downloaded: int = 0
    recovered: int = 0
    duplicates: int = 0
    skipped: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    failed: list[str] = field(default_factory=list)

    @property
    def stored(self) -> int:
        """Rows this run adds to the manifest."""
        return self.downloaded + self.recovered + self.duplicates

    def exit_code(self) -> int:
        """1 when nothing at all could be fetched: no image is there for the requested
        emotions, neither from this run nor from an earlier one (every search failed, or
        answered nothing usable); 0 otherwise, failures of some queries or images included.
        A re-run that finds everything already there is a success."""
        return 0 if self.already or self.stored else 1

    def line(self) -> str:
        """One line: what was stored, rejected, skipped and which queries failed."""
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(self.quarantined.items()))
        total = sum(self.quarantined.values())
        failed = f"; failed queries: {', '.join(self.failed)}" if self.failed else ""
        return (
            f"{self.source}: downloaded {self.downloaded}, recovered {self.recovered}, "
            f"duplicates {self.duplicates}, quarantined {total}"
            f"{f' ({reasons})' if reasons else ''}, skipped {self.skipped} already known; "
            f"queries {self.queries}, {self.complete} already complete{failed}"
        )


class FetchRun:
    """One run of one connector: search, download, land, journal. No Spark here: the tables'
    state comes in as :class:`Known`, the rows to commit go out as :attr:`rows` and
    :attr:`rejected`."""

    def __init__(
        self,
        connector: Connector,
        settings: Settings,
        known: Known,
        run_id: str,
        downloader: Downloader | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.connector = connector
        self.source = connector.name
        self.settings = settings
        self.known = known
        self.run_id = run_id
        self.clock = clock
        self.downloader = downloader or Downloader(settings.http, settings.fetch.threads)
        self.root = source_dir(settings.landing_dir, self.source)
        self.journal = journal_dir(settings.landing_dir, self.source)
        guards = settings.ingest
        # Only what makes bytes no image is judged here; sizes are the ingest job's business.
        self.limits = Limits.from_settings(guards, min_side=1)
        self.summary = FetchSummary(self.source)
        #: manifest rows to commit, by source_image_id.
        self.rows: dict[str, dict[str, Any]] = {}
        #: rejected URLs (redacted) -> their results (:func:`rejection_record`), to commit.
        self.rejected: dict[str, dict[str, Any]] = {}
        #: redacted URLs fetched fine this run (their old quarantine rows go).
        self.succeeded: set[str] = set()
        self._new_have: Counter[str] = Counter()

    # bookkeeping ---------------------------------------------------------------------------
    def _add(self, row: dict[str, Any]) -> None:
        self.rows[row["source_image_id"]] = row
        if row["status"] == DOWNLOADED:
            self.known.stored.setdefault(
                row["sha256"], (row["source_image_id"], row["landing_path"])
            )
            self._new_have[row["query"]] += 1

    def _reject(self, url: str, reason: str, detail: str, label: str, size: int | None) -> None:
        detail = http.scrub(detail, self.connector.secrets)
        self.rejected[url] = rejection_record(url, Rejection(reason, detail), size, label=label)
        self.summary.quarantined[reason] += 1

    def _known(self, image_id: str) -> bool:
        return image_id in self.known.ids or image_id in self.rows

    # recovery ------------------------------------------------------------------------------
    def recover(self) -> None:
        """Complete what a killed run left: remove temp files, and take journaled rows whose
        file is in place (the others are dropped: their image is fetched again)."""
        removed = remove_partials(self.root) + remove_partials(self.journal)
        if removed:
            log.info("%s: removed %d partial files of an interrupted run", self.source, removed)
        stale = []
        for row in journal_read(self.journal):
            image_id = row["source_image_id"]
            if image_id in self.known.ids:
                stale.append(image_id)  # committed; the run died before tidying
                continue
            landed = Path(row["landing_path"])
            intact = landed.is_file() and (
                row["status"] == DUPLICATE or sha256_hex(landed.read_bytes()) == row["sha256"]
            )
            if not intact:
                stale.append(image_id)
                continue
            self._add(row)
            self.summary.recovered += 1
        journal_drop(self.journal, stale)
        if self.summary.recovered:
            log.info("%s: recovered %d rows from the journal", self.source, self.summary.recovered)

    # one query -----------------------------------------------------------------------------
    def fetch(self, target: Target, per_emotion: int) -> None:
        """Page through the results of ``target``'s query until it has ``per_emotion``
        images, the results run out, or ``fetch.max_pages`` pages were read."""
        query = self.connector.query(target.word)
        self.summary.queries += 1
        self.summary.already += self.known.have[query]
        need = per_emotion - self.known.have[query] - self._new_have[query]
        if need <= 0:
            self.summary.complete += 1
            have = self.known.have[query]
            log.info("%s %r: already %d images, nothing to fetch", self.source, query, have)
            return
        for page_no in range(1, self.settings.fetch.max_pages + 1):
            page = self._page(target, query, page_no)
            if page is None:
                return
            queue = [c for c in page.candidates if self._wanted(c)]
            while need > 0 and queue:
                wave, queue = queue[:need], queue[need:]
                need -= self._download(target, wave)
            if need <= 0 or not self.connector.has_more(page_no, page):
                return

    def _page(self, target: Target, query: str, page_no: int) -> Page | None:
        request = self.connector.request(query, page_no)
        safe = self.connector.describe(request)
        secrets = self.connector.secrets
        try:
            fetched = self.downloader.page(request, secrets)
            page = self.connector.parse(decode_json(fetched.content, fetched.content_type, secrets))
        except (http.FetchError, PageError) as exc:
            message = http.scrub(str(exc), secrets)
            log.error(
                "%s %r: search failed (%s): %s [%s]", self.source, query, exc.reason, message, safe
            )
            self._reject(safe, exc.reason, message, target.emotion, None)
            self.summary.failed.append(f"{query} ({exc.reason})")
            return None
        self.succeeded.add(safe)
        log.info(
            "%s %r page %d: %d results%s",
            self.source,
            query,
            page_no,
            len(page.candidates),
            f" ({page.skipped} malformed, skipped)" if page.skipped else "",
        )
        return page

    def _wanted(self, candidate: Candidate) -> bool:
        if self._known(candidate.source_image_id):
            self.summary.skipped += 1
            return False
        seen = self.known.quarantined.get(http.redact(candidate.image_url, self.connector.secrets))
        if seen is not None and seen[0] not in TRANSIENT:
            self.summary.skipped += 1
            return False
        return True

    def _download(self, target: Target, wave: list[Candidate]) -> int:
        """Land the images of ``wave``; how many new images were stored."""
        folder = self.root / target.emotion
        fresh, stored = [], 0
        for candidate in wave:
            adopted = self._adopt(target, candidate, folder)
            if adopted is None:
                fresh.append(candidate)
            else:
                stored += adopted
        secrets = self.connector.secrets
        results = self.downloader.images([c.image_url for c in fresh], secrets)
        for candidate, result in zip(fresh, results, strict=True):
            stored += self._settle(target, candidate, result)
        return stored

    def _adopt(self, target: Target, candidate: Candidate, folder: Path) -> int | None:
        """A landed file of ``candidate`` without a row (a run died before its journal was
        written): take it as it is. None when there is none (or it is no image)."""
        landed = landed_file(folder, candidate.source_image_id)
        if landed is None:
            return None
        judged = judge(landed.read_bytes(), "", self.limits)
        if isinstance(judged, Rejection):
            landed.unlink(missing_ok=True)
            return None
        fetched_at = datetime.fromtimestamp(landed.stat().st_mtime, UTC)
        if self._store(target, candidate, judged, fetched_at, landed) == DUPLICATE:
            self.summary.duplicates += 1
            return 0
        self.summary.recovered += 1
        return 1

    def _settle(
        self, target: Target, candidate: Candidate, result: http.Fetched | http.FetchError
    ) -> int:
        safe = http.redact(candidate.image_url, self.connector.secrets)
        if isinstance(result, http.FetchError):
            self._reject(safe, result.reason, str(result), target.emotion, None)
            log.warning("%s: %s not downloaded: %s", self.source, safe, result.reason)
            return 0
        judged = judge(result.content, result.content_type, self.limits, self.connector.secrets)
        if isinstance(judged, Rejection):
            self._reject(safe, judged.reason, judged.detail, target.emotion, len(result.content))
            log.warning("%s: %s rejected: %s", self.source, safe, judged.reason)
            return 0
        self.succeeded.add(safe)
        if self._store(target, candidate, judged, self.clock(), None) == DUPLICATE:
            self.summary.duplicates += 1
            return 0
        self.summary.downloaded += 1
        return 1

    def _store(
        self,
        target: Target,
        candidate: Candidate,
        image: Accepted,
        fetched_at: datetime,
        landed: Path | None,
    ) -> str:
        """Journal and land ``image``, or record it as a duplicate of a stored copy (the
        status is returned). ``landed``: the file is already there (adopted)."""
        first = self.known.stored.get(image.sha256)
        if first is not None and first[0] != candidate.source_image_id:
            row = manifest_row(
                self.connector,
                target,
                candidate,
                status=DUPLICATE,
                sha256=image.sha256,
                fmt=image.format,
                size=len(image.data),
                path=Path(first[1]),
                fetched_at=fetched_at,
                run_id=self.run_id,
                duplicate_of=first[0],
            )
            journal_write(self.journal, row)
            if landed is not None:
                landed.unlink(missing_ok=True)  # a stray second copy
            self._add(row)
            return DUPLICATE
        path = landing_path(
            self.settings.landing_dir,
            self.source,
            target.emotion,
            candidate.source_image_id,
            image.format,
        )
        row = manifest_row(
            self.connector,
            target,
            candidate,
            status=DOWNLOADED,
            sha256=image.sha256,
            fmt=image.format,
            size=len(image.data),
            path=path,
            fetched_at=fetched_at,
            run_id=self.run_id,
        )
        journal_write(self.journal, row)
        if landed is None or landed != path:
            write_atomic(path, image.data)
            if landed is not None:
                landed.unlink(missing_ok=True)
        self._add(row)
        return DOWNLOADED

    def quarantine_changes(self) -> list[dict[str, Any]]:
        """Rejections that are new or say something else than the table's quarantine rows."""
        return [
            row
            for url, row in self.rejected.items()
            if self.known.quarantined.get(url) != (row["reason"], row["detail"])
        ]

    def cleared(self) -> list[str]:
        """Quarantined URLs that were fetched fine this run."""
        return sorted(url for url in self.succeeded if url in self.known.quarantined)


# Spark side --------------------------------------------------------------------------------


def emotion_names(spark: SparkSession, database: str) -> tuple[dict[str, int], dict[int, str]]:
    """Label names (and synonyms) to ids, and ids to canonical names, from ``emotions``."""
    names = {
        r.emotion_id: r.name
        for r in spark.table(f"{database}.emotions").select("emotion_id", "name").collect()
    }
    return label_names(spark, database), names


def load_known(spark: SparkSession, database: str, source: str) -> Known:
    """What ``downloads`` and ``quarantine`` hold for ``source``."""
    from pyspark.sql import functions as F

    known = Known()
    manifest = (
        spark.table(f"{database}.{DOWNLOADS.name}")
        .where(F.col("source") == source)
        .select("source_image_id", "query", "status", "sha256", "landing_path")
        .collect()
    )
    for row in manifest:
        known.ids.add(row.source_image_id)
        if row.status == DOWNLOADED:
            known.stored.setdefault(row.sha256, (row.source_image_id, row.landing_path))
            known.have[row.query] += 1
    rejected = (
        spark.table(f"{database}.{QUARANTINE.name}")
        .where(F.col("source") == source)
        .select("path", "reason", "detail")
        .collect()
    )
    known.quarantined = {r.path: (r.reason, r.detail) for r in rejected}
    return known


def commit(spark: SparkSession, database: str, run: FetchRun) -> None:
    """Write a run's rows: new manifest rows (insert-only), changed quarantine rows, and remove
    quarantine rows of URLs that worked this time; then tidy the journal. Nothing to write,
    no Delta commit."""
    if run.rows:
        names = DOWNLOADS.schema.fieldNames()
        frame = spark.createDataFrame(
            [tuple(row[n] for n in names) for row in run.rows.values()], DOWNLOADS.schema
        )
        upsert(spark, DOWNLOADS, database, frame, update=False)
    changed = run.quarantine_changes()
    if changed:
        values = {"source": run.source, "run_id": run.run_id, "seen_at": run.clock()}
        rows = quarantine_rows(results_frame(changed), values)
        upsert(spark, QUARANTINE, database, spark.createDataFrame(rows, QUARANTINE.schema))
    cleared = run.cleared()
    if cleared:
        keys = spark.createDataFrame(
            [(run.source, url) for url in cleared], "source string, path string"
        )
        delete_keys(spark, QUARANTINE, database, keys)
    journal_drop(run.journal, run.rows)


def fetch_images(
    spark: SparkSession,
    settings: Settings,
    connector: Connector,
    targets: Sequence[Target],
    per_emotion: int,
    run_id: str,
) -> FetchSummary:
    """Run ``connector`` for ``targets`` and commit the result; see the module docstring."""
    database = settings.catalog.database
    run = FetchRun(connector, settings, load_known(spark, database, connector.name), run_id)
    try:
        run.recover()
        for target in targets:
            run.fetch(target, per_emotion)
    finally:
        run.downloader.close()
    commit(spark, database, run)
    return run.summary
