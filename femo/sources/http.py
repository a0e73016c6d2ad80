"""HTTP for the jobs that read the web: one retrying session, size-capped reads, redaction.

Retries are urllib3's :class:`~urllib3.util.Retry` mounted on a ``requests`` adapter (429 and
5xx answers, timeouts and lost connections; ``Retry-After`` honoured; exponential backoff), not a
hand-written loop. Every failure becomes a :class:`FetchError` whose message holds only the
*redacted* URL: API keys travel in query strings and headers, and must never reach a log line,
an exception message, a table or a file.

Redaction covers more than femo's own messages: urllib3 logs the URL it retries (at WARNING,
query string included), so :func:`session` puts a filter on urllib3's and requests' loggers
that scrubs every secret given to :func:`register_secret` (and the values of secret query
parameters) from their records.

A rate-limited answer (429) is retried after its ``Retry-After``, or, when it has none, after
``X-RateLimit-Reset`` (Pixabay's header); both waits are capped by ``retry_after_max_s``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from femo.platform.errors import FemoError
from femo.platform.settings import HttpSettings

log = logging.getLogger(__name__)

#: Query parameters whose values are secrets (compared in lower case).
SECRET_PARAMS: Final = frozenset(
    {"key", "api_key", "apikey", "token", "access_token", "secret", "signature", "sig", "password"}
)
#: Headers whose values are secrets (compared in lower case).
SECRET_HEADERS: Final = frozenset(
    {"authorization", "x-rapidapi-key", "x-api-key", "api-key", "cookie", "proxy-authorization"}
)
REDACTED: Final = "***"
#: Answers worth another try: rate limited, or the server failed.
RETRY_STATUSES: Final = (429, 500, 502, 503, 504)

# Reasons of FetchError, machine-readable (they end up in quarantine rows).
HTTP_ERROR: Final = "http_error"
TIMEOUT: Final = "timeout"
CONNECTION: Final = "connection_error"
TOO_LARGE: Final = "too_large"
TRUNCATED: Final = "truncated"

_CHUNK = 64 * 1024

#: ``name=value`` of a secret query parameter anywhere in free text (a log line, a message).
_SECRET_PARAM_TEXT: Final = re.compile(
    r"(?i)\b(" + "|".join(sorted(SECRET_PARAMS)) + r")=([^&\s#'\"]+)"
)
#: Loggers of the HTTP stack whose records may hold a URL with its query string.
_HTTP_LOGGERS: Final = ("urllib3", "requests")

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


class FetchError(FemoError):
    """A request failed for good (after retries). ``reason`` is machine-readable; the message
    names the redacted URL only."""

    def __init__(self, reason: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class Fetched:
    """A successful answer read in full (never more than the size cap)."""

    url: str
    status: int
    content_type: str
    content: bytes
    headers: Mapping[str, str]


def register_secret(value: str) -> None:
    """Remember ``value`` (an API key) so the HTTP stack's log records are scrubbed of it."""
    if value:
        with _secrets_lock:
            _secrets.add(value)


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Free ``text`` with secret query values, registered secrets and ``secrets`` replaced."""
    with _secrets_lock:
        known = tuple(_secrets)
    text = _SECRET_PARAM_TEXT.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
    return scrub(scrub(text, known), secrets)


class ScrubFilter(logging.Filter):
    """Rewrites a log record's message (and traceback) through :func:`redact_text`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact_text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text, record.exc_info = redact_text(text), None
        return True


_SCRUB_FILTER: Final = ScrubFilter()


def install_log_scrubber() -> None:
    """Put :class:`ScrubFilter` on urllib3's and requests' loggers (idempotent).

    A logger's filters see only the records of that very logger, so the filter goes on every
    logger of those packages that exists now (their modules are imported by then).
    """
    names = [
        name
        for name in list(logging.Logger.manager.loggerDict)
        if name.split(".", 1)[0] in _HTTP_LOGGERS
    ]
    for name in {*names, *_HTTP_LOGGERS}:
        logger = logging.getLogger(name)
        if _SCRUB_FILTER not in logger.filters:
            logger.addFilter(_SCRUB_FILTER)


def redact(url: str, secrets: Iterable[str] = ()) -> str:
    """``url`` with the values of secret query parameters, user info and any of ``secrets``
    replaced by ``***``; safe to log."""
    parts = urlsplit(url)
    query = urlencode(
        [
            (k, REDACTED if k.lower() in SECRET_PARAMS else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="*",
    )
    netloc = parts.netloc.rsplit("@", 1)[-1] if "@" in parts.netloc else parts.netloc
    text = urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    return scrub(text, secrets)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every non-empty string of ``secrets`` replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` with secret values replaced; safe to log."""
    return {k: REDACTED if k.lower() in SECRET_HEADERS else v for k, v in headers.items()}


class RateLimitRetry(Retry):
    """:class:`~urllib3.util.Retry` that also waits out ``X-RateLimit-Reset`` (seconds until
    the quota resets) on a 429 without ``Retry-After``, as Pixabay answers."""

    def get_retry_after(self, response: BaseHTTPResponse) -> float | None:
        waited = super().get_retry_after(response)
        reset = response.headers.get("X-RateLimit-Reset")
        if waited is None and response.status == 429 and reset and reset.strip().isdigit():
            return self.parse_retry_after(reset)
        return waited


def retry_policy(settings: HttpSettings) -> Retry:
    """urllib3's retry policy from settings: GETs only, on :data:`RETRY_STATUSES`, timeouts and
    connection errors; ``Retry-After`` honoured up to ``retry_after_max_s``; the last answer is
    returned, not raised."""
    return RateLimitRetry(
        total=settings.retries,
        connect=settings.retries,
        read=settings.retries,
        status=settings.retries,
        backoff_factor=settings.backoff_factor,
        backoff_max=settings.backoff_max_s,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET", "HEAD"}),
        respect_retry_after_header=True,
        retry_after_max=settings.retry_after_max_s,
        raise_on_status=False,
    )


def session(settings: HttpSettings) -> requests.Session:
    """A ``requests`` session that retries per :func:`retry_policy` on http and https, with
    the HTTP stack's log records scrubbed of secrets (:func:`install_log_scrubber`).

    A session is not documented as thread-safe: give each thread its own.
    """
    install_log_scrubber()
    http = requests.Session()
    adapter = HTTPAdapter(max_retries=retry_policy(settings))
    http.mount("http://", adapter)
    http.mount("https://", adapter)
    http.headers["User-Agent"] = settings.user_agent
    return http


def get(
    http: requests.Session,
    url: str,
    settings: HttpSettings,
    *,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    max_bytes: int | None = None,
    secrets: Iterable[str] = (),
    allow_redirects: bool = True,
) -> Fetched:
    """GET ``url`` (retried per the session) and read the body, at most ``max_bytes``
    (default: ``settings.max_bytes``) within ``settings.total_timeout_s``.

    ``secrets`` (API keys) are registered for log scrubbing and removed from every message.
    Pass ``allow_redirects=False`` when ``headers`` carry a key: ``requests`` strips only
    ``Authorization`` on a redirect to another host, not headers such as ``X-RapidAPI-Key``.

    Raises:
        FetchError: a non-2xx answer after retries (``http_error``, with its status; a
            redirect not followed counts), a timeout (per read, or the whole response past
            ``total_timeout_s``), a connection failure, a body over the cap (``too_large``,
            checked from ``Content-Length`` before reading, and while reading) or shorter than
            announced (``truncated``). The message holds the redacted URL only; the original
            exception is not chained, since its text may hold the URL with its key.
    """
    secrets = tuple(s for s in secrets if s)
    for secret in secrets:
        register_secret(secret)
    cap = max_bytes if max_bytes is not None else settings.max_bytes
    safe = redact(url, secrets)
    deadline = time.monotonic() + settings.total_timeout_s
    failure: FetchError
    try:
        response = http.get(
            url,
            params=params,
            headers=headers,
            timeout=(settings.connect_timeout_s, settings.read_timeout_s),
            stream=True,
            allow_redirects=allow_redirects,
        )
        with response:
            safe = redact(response.url, secrets)
            if not 200 <= response.status_code < 300:
                raise FetchError(
                    HTTP_ERROR, f"HTTP {response.status_code} from {safe}", response.status_code
                )
            return Fetched(
                url=safe,
                status=response.status_code,
                content_type=_media_type(response.headers.get("Content-Type", "")),
                content=_read_body(response, cap, deadline, safe, settings.total_timeout_s),
                headers=dict(response.headers),
            )
    except FetchError:
        raise
    except requests.exceptions.RetryError:
        failure = FetchError(HTTP_ERROR, f"gave up after retries on {safe}")
    except (requests.exceptions.Timeout, TimeoutError):
        failure = FetchError(TIMEOUT, f"timed out on {safe}")
    except requests.exceptions.ChunkedEncodingError:
        failure = FetchError(TRUNCATED, f"connection broke while reading {safe}")
    except requests.exceptions.InvalidHeader:
        failure = FetchError(HTTP_ERROR, f"malformed header in the answer from {safe}")
    except requests.exceptions.ConnectionError as exc:
        kind = "timed out" if _is_timeout(exc) else "could not connect"
        reason = TIMEOUT if _is_timeout(exc) else CONNECTION
        failure = FetchError(reason, f"{kind} on {safe}")
    except requests.exceptions.RequestException as exc:
        failure = FetchError(CONNECTION, f"{type(exc).__name__} on {safe}")
    raise failure


def _read_body(
    response: requests.Response, cap: int, deadline: float, safe: str, total_s: float
) -> bytes:
    """The whole body, checked against the cap, the deadline and ``Content-Length``."""
    declared = response.headers.get("Content-Length", "")
    expected = int(declared) if declared.isdigit() else None
    if expected is not None and expected > cap:
        raise FetchError(TOO_LARGE, f"{expected} bytes > {cap} from {safe}")
    body = bytearray()
    for chunk in response.iter_content(_CHUNK):
        body += chunk
        if len(body) > cap:
            raise FetchError(TOO_LARGE, f"more than {cap} bytes from {safe}")
        if time.monotonic() > deadline:
            raise FetchError(TIMEOUT, f"{total_s:g} s elapsed reading {safe}")
    # Content-Length counts the encoded bytes: compare only when nothing was decoded.
    plain = response.headers.get("Content-Encoding", "identity").lower() == "identity"
    if plain and expected is not None and len(body) < expected:
        raise FetchError(TRUNCATED, f"{len(body)} of {expected} bytes from {safe}")
    return bytes(body)


def _is_timeout(exc: BaseException) -> bool:
    return "timed out" in str(exc).lower() or "timeout" in type(exc).__name__.lower()


def _media_type(content_type: str) -> str:
    """``image/jpeg`` from ``image/jpeg; charset=...``, lower case."""
    return re.split(r"[;\s]", content_type.strip(), maxsplit=1)[0].lower()
