"""HTTP for the jobs that read the web: one retrying session, size-capped reads, redaction.

Retries are urllib3's :class:`~urllib3.util.Retry` mounted on a ``requests`` adapter (429 and
5xx answers, timeouts and lost connections; ``Retry-After`` honoured; exponential backoff), not a
hand-written loop. Every failure becomes a :class:`FetchError` whose message holds only the
*redacted* URL: API keys travel in query strings and headers, and must never reach a log line,
an exception message, a table or a file.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from femo.errors import FemoError
from femo.settings import HttpSettings

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


def retry_policy(settings: HttpSettings) -> Retry:
    """urllib3's retry policy from settings: GETs only, on :data:`RETRY_STATUSES`, timeouts and
    connection errors; ``Retry-After`` honoured; the last answer is returned, not raised."""
    return Retry(
        total=settings.retries,
        connect=settings.retries,
        read=settings.retries,
        status=settings.retries,
        backoff_factor=settings.backoff_factor,
        backoff_max=settings.backoff_max_s,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET", "HEAD"}),
        respect_retry_after_header=True,
        raise_on_status=False,
    )


def session(settings: HttpSettings) -> requests.Session:
    """A ``requests`` session that retries per :func:`retry_policy` on http and https."""
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
) -> Fetched:
    """GET ``url`` (retried per the session) and read the body, at most ``max_bytes``
    (default: ``settings.max_bytes``).

    Raises:
        FetchError: a non-2xx answer after retries (``http_error``, with its status), a timeout,
            a connection failure, a body over the cap (``too_large``, checked from
            ``Content-Length`` before reading, and while reading) or shorter than announced
            (``truncated``). The message holds the redacted URL only; the original exception is
            not chained, since its text may hold the URL with its key.
    """
    secrets = tuple(secrets)
    cap = max_bytes if max_bytes is not None else settings.max_bytes
    safe = redact(url, secrets)
    failure: FetchError
    try:
        response = http.get(
            url,
            params=params,
            headers=headers,
            timeout=(settings.connect_timeout_s, settings.read_timeout_s),
            stream=True,
        )
        with response:
            safe = redact(response.url, secrets)
            if not 200 <= response.status_code < 300:
                raise FetchError(
                    HTTP_ERROR, f"HTTP {response.status_code} from {safe}", response.status_code
                )
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > cap:
                raise FetchError(TOO_LARGE, f"{declared} bytes > {cap} from {safe}")
            body = bytearray()
            for chunk in response.iter_content(_CHUNK):
                body += chunk
                if len(body) > cap:
                    raise FetchError(TOO_LARGE, f"more than {cap} bytes from {safe}")
            if declared and declared.isdigit() and len(body) < int(declared):
                raise FetchError(TRUNCATED, f"{len(body)} of {declared} bytes from {safe}")
            return Fetched(
                url=safe,
                status=response.status_code,
                content_type=_media_type(response.headers.get("Content-Type", "")),
                content=bytes(body),
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
    except requests.exceptions.ConnectionError as exc:
        kind = "timed out" if _is_timeout(exc) else "could not connect"
        reason = TIMEOUT if _is_timeout(exc) else CONNECTION
        failure = FetchError(reason, f"{kind} on {safe}")
    except requests.exceptions.RequestException as exc:
        failure = FetchError(CONNECTION, f"{type(exc).__name__} on {safe}")
    raise failure


def _is_timeout(exc: BaseException) -> bool:
    return "timed out" in str(exc).lower() or "timeout" in type(exc).__name__.lower()


def _media_type(content_type: str) -> str:
    """``image/jpeg`` from ``image/jpeg; charset=...``, lower case."""
    return re.split(r"[;\s]", content_type.strip(), maxsplit=1)[0].lower()
