"""Image search connectors: how to ask a search API for a page, and how to read its answer.

A connector is a small class over :class:`Connector`: it builds the request for a query and a
page (:meth:`Connector.request`), parses the decoded JSON answer into :class:`Candidate` images
(:meth:`Connector.parse`), and says whether another page is worth asking for
(:meth:`Connector.has_more`). Everything here is pure: no network, no files, no Spark; the job
(:mod:`femo.sources.fetch`) does the I/O through :mod:`femo.sources.http`.

Connectors are registered by name in :data:`REGISTRY` (the name is also the ``source_id`` of
the ``sources`` table and the ``--source`` of ``jobs/fetch_api_images.py``), each with a
settings entry under ``fetch.connectors``. Adding a source is one class with
:func:`register` and one settings entry.

API keys come from the environment only (:func:`from_settings` reads the variable named by
``key_env``); a connector keeps its key to build requests and lists it in
:attr:`Connector.secrets` so that every URL and message derived from a request can be scrubbed.
"""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, TypeVar
from urllib.parse import urlencode

from femo.platform.errors import FemoError, MissingPrerequisiteError, RunFailedError
from femo.platform.settings import ConnectorSettings, FetchSettings
from femo.sources.http import redact, scrub

#: Reasons a search page is rejected (they end up in quarantine rows).
BAD_JSON: Final = "bad_json"
UNEXPECTED_JSON: Final = "unexpected_json"

#: What a source image id may look like: it becomes a file name in the landing zone.
SAFE_ID: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class PageError(RunFailedError):
    """A search answer that cannot be used: not JSON, or not the shape the API documents."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class MissingKeyError(MissingPrerequisiteError):
    """The environment variable that should hold a connector's API key is not set."""


@dataclass(frozen=True)
class PageRequest:
    """One search request: the full URL (query string included) and the headers."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Candidate:
    """An image a search answered with, as the source describes it."""

    source_image_id: str
    image_url: str
    page_url: str | None = None
    title: str | None = None
    author: str | None = None
    width: int | None = None
    height: int | None = None
    licence: str | None = None


@dataclass(frozen=True)
class Page:
    """A parsed search answer: its usable candidates, how many results the query has in all
    (``None`` when the API does not say) and how many results were malformed and skipped."""

    candidates: tuple[Candidate, ...]
    total: int | None = None
    skipped: int = 0


def url_id(url: str) -> str:
    """A stable id for an image known only by its URL: the first 20 hex digits of its
    SHA-256 (80 bits; the same URL gives the same id on every run and machine)."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:20]


def _int_or_none(value: Any) -> int | None:
    """An announced dimension as an int (APIs send ints or digit strings); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _is_http_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


class Connector(ABC):
    """A search source. Subclasses set :attr:`name`, :attr:`kind`, :attr:`query_template`
    and implement :meth:`request` and :meth:`parse`."""

    #: The source id (``sources.source_id``) and ``--source`` value.
    name: ClassVar[str]
    #: ``sources.kind``: image_api or web_search.
    kind: ClassVar[str]
    #: Where the source is documented (``sources.url`` when the job registers it).
    home_url: ClassVar[str]
    #: The search text for an emotion word, e.g. ``"{emotion} face"``.
    query_template: ClassVar[str]
    #: Licence of every image, when the source has one licence for all.
    licence: ClassVar[str | None] = None

    def __init__(self, settings: ConnectorSettings, key: str) -> None:
        self.settings = settings
        self._key = key

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values to scrub from anything derived from this connector's requests."""
        return (self._key,) if self._key else ()

    @property
    def base_url(self) -> str:
        """``base_url`` without a trailing slash."""
        return self.settings.base_url.rstrip("/")

    def query(self, emotion: str) -> str:
        """The search text for ``emotion``."""
        return self.query_template.format(emotion=emotion.strip().lower())

    @abstractmethod
    def request(self, query: str, page: int) -> PageRequest:
        """The request for result page ``page`` (1-based) of ``query``."""

    @abstractmethod
    def parse(self, payload: Any) -> Page:
        """The candidates of a decoded JSON answer.

        Raises:
            PageError: ``unexpected_json`` when the answer is not shaped as documented.
        """

    def has_more(self, page_no: int, page: Page) -> bool:
        """Whether page ``page_no + 1`` can hold further results (default: while pages are
        full and the announced total is not reached)."""
        per_page = self.settings.per_page
        if per_page is None or (not page.candidates and not page.skipped):
            return False
        if page.total is not None and page_no * per_page >= page.total:
            return False
        return len(page.candidates) + page.skipped >= per_page

    def candidate(
        self,
        source_image_id: str,
        image_url: str,
        *,
        page_url: str | None = None,
        title: str | None = None,
        author: str | None = None,
        width: int | None = None,
        height: int | None = None,
        licence: str | None = None,
    ) -> Candidate:
        """A :class:`Candidate` with every text scrubbed of the key (an API that echoes it
        must not get it into a table), a file-name-safe id (hashed when it is not) and the
        image's licence (default: the connector's)."""

        def clean(text: str | None) -> str | None:
            return scrub(text, self.secrets) if text is not None else None

        image_id = source_image_id if SAFE_ID.match(source_image_id) else url_id(source_image_id)
        return Candidate(
            source_image_id=image_id,
            image_url=scrub(image_url, self.secrets),
            page_url=clean(page_url),
            title=clean(title),
            author=clean(author),
            width=width,
            height=height,
            licence=clean(licence) or self.licence,
        )

    def describe(self, request: PageRequest) -> str:
        """The request's URL with its key redacted: safe for logs, messages and tables."""
        return redact(request.url, self.secrets)


#: Connector classes by name.
REGISTRY: dict[str, type[Connector]] = {}

C = TypeVar("C", bound=type[Connector])


def register(cls: C) -> C:
    """Class decorator adding a connector to :data:`REGISTRY` under its :attr:`name`."""
    REGISTRY[cls.name] = cls
    return cls


def _shape(payload: Any, what: str, check: Callable[[Any], bool]) -> None:
    if not check(payload):
        raise PageError(UNEXPECTED_JSON, f"answer is not {what}")


@register
class Pixabay(Connector):
    """Pixabay's image API: ``GET <base_url>/api/?key=...&q=...`` (https://pixabay.com/api/docs/).

    Answers ``{total, totalHits, hits: [{id, pageURL, tags, webformatURL, largeImageURL,
    imageWidth, imageHeight, user, ...}]}``; ``totalHits`` (at most 500) are reachable by
    paging. ``webformatURL`` (up to 640 px) is downloaded: plenty for 48-px face crops.
    """

    name = "pixabay"
    kind = "image_api"
    home_url = "https://pixabay.com/api/docs/"
    query_template = "{emotion} face"
    licence = "Pixabay Content License"

    def request(self, query: str, page: int) -> PageRequest:
        params = {
            "key": self._key,
            "q": query,
            "lang": "en",
            "image_type": "photo",
            "category": "people",
            "safesearch": "true",
            "per_page": str(self.settings.per_page or 20),
            "page": str(page),
        }
        return PageRequest(f"{self.base_url}/api/?{urlencode(params)}")

    def parse(self, payload: Any) -> Page:
        _shape(payload, "a JSON object", lambda p: isinstance(p, dict))
        hits, total = payload.get("hits"), payload.get("totalHits")
        _shape(hits, "shaped as {hits: [...]}", lambda h: isinstance(h, list))
        _shape(total, "shaped as {totalHits: <int>}", lambda t: _int_or_none(t) is not None)
        found, skipped = [], 0
        for hit in hits:
            if not isinstance(hit, dict) or not _is_http_url(hit.get("webformatURL")):
                skipped += 1
                continue
            if _int_or_none(hit.get("id")) is None:
                skipped += 1
                continue
            found.append(
                self.candidate(
                    source_image_id=str(hit["id"]),
                    image_url=hit["webformatURL"],
                    page_url=_text(hit.get("pageURL")),
                    title=_text(hit.get("tags")),
                    author=_text(hit.get("user")),
                    width=_int_or_none(hit.get("imageWidth")),
                    height=_int_or_none(hit.get("imageHeight")),
                )
            )
        return Page(tuple(found), _int_or_none(total), skipped)


@register
class DuckDuckGo(Connector):
    """A DuckDuckGo image search hosted on RapidAPI: ``GET <base_url>/search/images?term=...``
    with headers ``X-RapidAPI-Key`` and ``X-RapidAPI-Host``.

    Answers ``{status, message, data: [{image, thumbnail, url, title, width, height,
    source}]}``, one page per query. Results are web pages' images: the licence is whatever
    the page states, so the manifest points at the page.
    """

    name = "ddg"
    kind = "web_search"
    home_url = "https://duckduckgo.com"
    query_template = "{emotion} human face"
    licence = "unknown: see the page it was found on"

    def request(self, query: str, page: int) -> PageRequest:
        del page  # one page per query
        params = {"term": query, "region": "us-en", "safeSearch": "strict"}
        headers = {"X-RapidAPI-Key": self._key}
        if self.settings.host:
            headers["X-RapidAPI-Host"] = self.settings.host
        return PageRequest(f"{self.base_url}/search/images?{urlencode(params)}", headers)

    def parse(self, payload: Any) -> Page:
        _shape(payload, "a JSON object", lambda p: isinstance(p, dict))
        data = payload.get("data")
        if not isinstance(data, list):
            status, message = payload.get("status"), payload.get("message")
            said = f" (status {status!r}: {message!r})" if status or message else ""
            raise PageError(
                UNEXPECTED_JSON,
                scrub(f"answer is not shaped as {{data: [...]}}{said}", self.secrets),
            )
        found, skipped = [], 0
        for item in data:
            if not isinstance(item, dict) or not _is_http_url(item.get("image")):
                skipped += 1
                continue
            found.append(
                self.candidate(
                    source_image_id=url_id(item["image"]),
                    image_url=item["image"],
                    page_url=_text(item.get("url")),
                    title=_text(item.get("title")),
                    author=_text(item.get("source")),
                    width=_int_or_none(item.get("width")),
                    height=_int_or_none(item.get("height")),
                )
            )
        return Page(tuple(found), len(data), skipped)

    def has_more(self, page_no: int, page: Page) -> bool:
        return False


def connector_settings(fetch: FetchSettings, name: str) -> ConnectorSettings:
    """The settings entry of connector ``name`` (``fetch.connectors.<name>``).

    Raises:
        FemoError: no connector or no settings entry of that name.
    """
    entry = getattr(fetch.connectors, name, None)
    if name not in REGISTRY or not isinstance(entry, ConnectorSettings):
        raise FemoError(f"unknown source {name!r}: known are {', '.join(sorted(REGISTRY))}")
    return entry


def from_settings(name: str, fetch: FetchSettings, environ: Mapping[str, str]) -> Connector:
    """The connector ``name``, configured from settings, with its key from ``environ``.

    Raises:
        FemoError: unknown connector.
        MissingKeyError: the variable named by ``key_env`` is unset or empty (the message names
            the variable, never a value).
    """
    settings = connector_settings(fetch, name)
    key = environ.get(settings.key_env, "").strip()
    if not key:
        raise MissingKeyError(
            f"{name}: set the environment variable {settings.key_env} to your API key "
            f"(the variable's name is the setting fetch.connectors.{name}.key_env)"
        )
    return REGISTRY[name](settings, key)
