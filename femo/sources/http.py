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

Addresses (no server-side request forgery): image URLs come from third-party search results, so
a URL, or any redirect on its way, could point at the cloud's metadata service (169.254.169.254),
a private network or the machine itself. :func:`get` follows redirects itself, hop by hop (at
most ``max_redirects``), and before each hop resolves the host and refuses it when any of its
addresses is loopback, private, link-local, unspecified, multicast, reserved or otherwise not
public (IPv4 and IPv6, an IPv6 address standing for an IPv4 one judged as that one), unless
``http.allow_networks`` lists it: a :class:`FetchError` ``refused_address`` naming the host and
the address. A session from :func:`session` then connects only to addresses it checked at
connect time, so a second DNS answer (DNS rebinding) cannot slip in between check and connect.
Limit: through a proxy (``HTTPS_PROXY``...) the proxy resolves the name, and only the check
before the request applies (the proxy's answer may differ from ours).
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeAlias
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.response import BaseHTTPResponse
from urllib3.util.connection import allowed_gai_family
from urllib3.util.retry import Retry

from femo.platform.errors import FemoError, RunFailedError
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
#: The host (of the URL or of a redirect hop) resolves to an address that may not be fetched.
REFUSED_ADDRESS: Final = "refused_address"

Address: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
#: NAT64's well-known prefix (RFC 6052): its last 32 bits are an IPv4 address.
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}

_CHUNK = 64 * 1024

#: ``name=value`` of a secret query parameter anywhere in free text (a log line, a message).
_SECRET_PARAM_TEXT: Final = re.compile(
    r"(?i)\b(" + "|".join(sorted(SECRET_PARAMS)) + r")=([^&\s#'\"]+)"
)
#: Loggers of the HTTP stack whose records may hold a URL with its query string.
_HTTP_LOGGERS: Final = ("urllib3", "requests")

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


class FetchError(RunFailedError):
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


# Addresses ---------------------------------------------------------------------------------


class AddressRefused(FemoError):
    """A host resolves to an address that ``http.allow_networks`` does not admit."""

    def __init__(self, host: str, address: Address, kind: str) -> None:
        named = f"{address}" if host == str(address) else f"{host} resolves to {address}"
        embedded = embedded_ipv4(address)
        meaning = f"= {embedded}, {kind}" if embedded else kind
        super().__init__(f"{named} ({meaning}), not in http.allow_networks")
        self.host = host
        self.address = address
        self.kind = kind


def allowed_networks(settings: HttpSettings) -> tuple[Network, ...]:
    """The networks of ``http.allow_networks`` (checked when the settings were loaded)."""
    return tuple(ipaddress.ip_network(network) for network in settings.allow_networks)


def embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for: IPv4-mapped (``::ffff:a.b.c.d``), 6to4
    (``2002::/16``) or NAT64 (``64:ff9b::/96``); None for any other address."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return None


def address_kind(address: Address) -> str | None:
    """Why ``address`` is not a public unicast address (``unspecified``, ``loopback``,
    ``link-local``, ``multicast``, ``site-local``, ``private``, ``reserved``, ``not global``
    such as 100.64.0.0/10); None when it is one. An IPv6 address that stands for an IPv4 one
    (:func:`embedded_ipv4`) is judged as that one."""
    embedded = embedded_ipv4(address)
    if embedded is not None:
        return address_kind(embedded)
    site_local = isinstance(address, ipaddress.IPv6Address) and address.is_site_local
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("site-local", site_local),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("not global", not address.is_global),
    )
    return next((kind for kind, hit in checks if hit), None)


def refusal(address: Address, allowed: Sequence[Network]) -> str | None:
    """The :func:`address_kind` of ``address`` unless a network of ``allowed`` holds it (or
    the IPv4 address it stands for); None when it may be fetched from."""
    kind = address_kind(address)
    if kind is None:
        return None
    embedded = embedded_ipv4(address)
    if any(one in net for one in (address, embedded) if one is not None for net in allowed):
        return None
    return kind


def resolve(host: str, port: int, family: int = socket.AF_UNSPEC) -> list[Address]:
    """The addresses ``host`` resolves to for TCP (``socket.getaddrinfo``), in the resolver's
    order, each once.

    Raises:
        OSError: the name does not resolve (``socket.gaierror``).
    """
    found: dict[Address, None] = {}
    for *_, sockaddr in socket.getaddrinfo(host, port, family, socket.SOCK_STREAM):
        found.setdefault(ipaddress.ip_address(sockaddr[0]), None)
    return list(found)


def vetted(
    host: str, port: int, allowed: Sequence[Network], family: int = socket.AF_UNSPEC
) -> list[Address]:
    """Every address ``host`` resolves to, when each may be fetched from (:func:`refusal`).

    Raises:
        AddressRefused: one address may not; the name is refused whole, since a name that
            answers public and private addresses at once is how DNS rebinding starts.
        OSError: the name does not resolve.
    """
    addresses = resolve(host, port, family)
    for address in addresses:
        kind = refusal(address, allowed)
        if kind is not None:
            raise AddressRefused(host, address, kind)
    return addresses


def check_url(url: str, allowed: Sequence[Network]) -> None:
    """Refuse ``url`` when its host resolves to an address that ``allowed`` does not admit.

    A URL without a host or with a malformed port, and a host that does not resolve here,
    pass: the request then fails on them itself, or a proxy resolves the name.

    Raises:
        AddressRefused: see :func:`vetted`.
    """
    parts = urlsplit(url)
    try:
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower(), 80)
    except ValueError:
        return
    if parts.hostname:
        try:
            vetted(parts.hostname, port, allowed)
        except (OSError, UnicodeError):
            return


def _connect_vetted(
    conn: HTTPConnection, allowed: Sequence[Network], connect: Callable[[], socket.socket]
) -> socket.socket:
    """``conn``'s socket, opened to an address of its host resolved and checked just now
    (:func:`vetted`), never to what a second lookup might answer. ``connect`` (urllib3's own
    ``_new_conn``) is pointed at each checked address in turn through ``conn.host``, which is
    restored before TLS: the Host header, SNI and the certificate check keep the name.

    Raises:
        AddressRefused: see :func:`vetted` (not retried: urllib3 passes it through).
        NameResolutionError, NewConnectionError, ConnectTimeoutError: as urllib3's own.
    """
    host = conn.host
    try:
        addresses = vetted(host, conn.port, allowed, allowed_gai_family())
    except socket.gaierror as exc:
        raise NameResolutionError(host, conn, exc) from exc
    failure: Exception = NewConnectionError(conn, f"{host} resolves to no address")
    for address in addresses:
        conn.host = str(address)
        try:
            return connect()
        except (NewConnectionError, ConnectTimeoutError) as exc:
            failure = exc
        finally:
            conn.host = host
    raise failure


def _vetting_pools(allowed: tuple[Network, ...]) -> dict[str, type[HTTPConnectionPool]]:
    """urllib3 pool classes for http and https whose connections open through
    :func:`_connect_vetted` with ``allowed``."""

    class VettingHTTPConnection(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            return _connect_vetted(self, allowed, super()._new_conn)

    class VettingHTTPSConnection(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            return _connect_vetted(self, allowed, super()._new_conn)

    class VettingHTTPPool(HTTPConnectionPool):
        ConnectionCls = VettingHTTPConnection

    class VettingHTTPSPool(HTTPSConnectionPool):
        ConnectionCls = VettingHTTPSConnection

    return {"http": VettingHTTPPool, "https": VettingHTTPSPool}


class VettingAdapter(HTTPAdapter):
    """``requests``' adapter whose direct connections go only to checked addresses
    (:func:`_connect_vetted`). Connections through a proxy are the proxy manager's: the proxy
    resolves the target, and only :func:`check_url` before the request applies."""

    #: What requests pickles of an adapter, and ``allowed``.
    __attrs__ = [*HTTPAdapter.__attrs__, "allowed"]  # noqa: RUF012 (requests' own name)

    def __init__(self, allowed: tuple[Network, ...], max_retries: Retry) -> None:
        self.allowed = allowed  # before HTTPAdapter.__init__, which builds the pool manager
        super().__init__(max_retries=max_retries)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        """requests' pool manager, with pools of vetting connections."""
        super().init_poolmanager(  # type: ignore[no-untyped-call]  # untyped in the stubs
            connections, maxsize, block, **pool_kwargs
        )
        self.poolmanager.pool_classes_by_scheme = _vetting_pools(self.allowed)


class HopSession(requests.Session):
    """A ``requests`` session that follows no redirect by itself: :func:`get` follows them
    hop by hop, checking each hop's address first. (``requests`` would follow them blindly,
    read each redirect's body whole, and forward every header but ``Authorization`` to the
    next host.)"""

    def resolve_redirects(
        self, resp: requests.Response, req: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> Iterator[Any]:
        """No redirect to resolve here: :func:`get` does it."""
        return iter(())


def session(settings: HttpSettings) -> requests.Session:
    """A ``requests`` session that retries per :func:`retry_policy` on http and https,
    connects only to addresses that ``http.allow_networks`` admits (:class:`VettingAdapter`),
    leaves redirects to :func:`get` (:class:`HopSession`), with the HTTP stack's log records
    scrubbed of secrets (:func:`install_log_scrubber`).

    A session is not documented as thread-safe: give each thread its own.
    """
    install_log_scrubber()
    http = HopSession()
    adapter = VettingAdapter(allowed_networks(settings), retry_policy(settings))
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
    """GET ``url`` (retried per the session), following at most ``settings.max_redirects``
    redirects hop by hop (none when ``allow_redirects`` is false), and read the body, at most
    ``max_bytes`` (default: ``settings.max_bytes``) within ``settings.total_timeout_s``.

    Before each hop the host is resolved and refused when an address is not public and not in
    ``http.allow_networks`` (:func:`check_url`); a session from :func:`session` also connects
    only to addresses it checked at connect time. Through a proxy, only the check before the
    request applies (the proxy resolves the name itself: its answer may differ from ours).

    ``params`` and ``headers`` go with the first request only: no redirect carries them to the
    next host (a header may hold a key). ``secrets`` (API keys) are registered for log
    scrubbing and removed from every message.

    Raises:
        FetchError: an address refused (``refused_address``: the URL, the redirects that led
            there, the host and its address), a non-2xx answer after retries (``http_error``,
            with its status; a redirect not followed, one past ``max_redirects`` or to a scheme
            other than http(s) counts), a timeout (per read, or the whole response past
            ``total_timeout_s``), a connection failure, a body over the cap (``too_large``,
            checked from ``Content-Length`` before reading, and while reading) or shorter than
            announced (``truncated``). The message holds redacted URLs only; the original
            exception is not chained, since its text may hold the URL with its key.
    """
    secrets = tuple(s for s in secrets if s)
    for secret in secrets:
        register_secret(secret)
    cap = max_bytes if max_bytes is not None else settings.max_bytes
    # the redacted URL of each hop; the last one is where the request stands
    trail = [redact(url, secrets)]
    deadline = time.monotonic() + settings.total_timeout_s
    failure: FetchError
    try:
        response = _follow(http, url, settings, trail, params, headers, allow_redirects, secrets)
        with response:
            safe = trail[-1]
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
    except AddressRefused as exc:
        via = f" (redirected from {trail[0]})" if len(trail) > 1 else ""
        message = f"refused {trail[-1]}{via}: {exc}"
        failure = FetchError(REFUSED_ADDRESS, scrub(message, secrets))
    except FetchError:
        raise
    except requests.exceptions.RetryError:
        failure = FetchError(HTTP_ERROR, f"gave up after retries on {trail[-1]}")
    except (requests.exceptions.Timeout, TimeoutError):
        failure = FetchError(TIMEOUT, f"timed out on {trail[-1]}")
    except requests.exceptions.ChunkedEncodingError:
        failure = FetchError(TRUNCATED, f"connection broke while reading {trail[-1]}")
    except requests.exceptions.InvalidHeader:
        failure = FetchError(HTTP_ERROR, f"malformed header in the answer from {trail[-1]}")
    except requests.exceptions.ConnectionError as exc:
        kind = "timed out" if _is_timeout(exc) else "could not connect"
        reason = TIMEOUT if _is_timeout(exc) else CONNECTION
        failure = FetchError(reason, f"{kind} on {trail[-1]}")
    except requests.exceptions.RequestException as exc:
        failure = FetchError(CONNECTION, f"{type(exc).__name__} on {trail[-1]}")
    raise failure


def _follow(
    http: requests.Session,
    url: str,
    settings: HttpSettings,
    trail: list[str],
    params: Mapping[str, Any] | None,
    headers: Mapping[str, str] | None,
    allow_redirects: bool,
    secrets: Sequence[str],
) -> requests.Response:
    """The (streamed) answer at the end of ``url``'s redirects, each hop checked first
    (:func:`check_url`); ``trail`` gets the redacted URL of every hop.

    Raises:
        AddressRefused: a hop's host resolves to an address that may not be fetched.
        FetchError: more than ``max_redirects`` redirects, or one to a scheme other than
            http(s) (``http_error``, with the redirect's status).
        requests.exceptions.RequestException: a request failed.
    """
    allowed = allowed_networks(settings)
    target = url
    for hop in range(settings.max_redirects + 1):
        check_url(target, allowed)
        response = http.get(
            target,
            params=params if hop == 0 else None,
            headers=headers if hop == 0 else None,
            timeout=(settings.connect_timeout_s, settings.read_timeout_s),
            stream=True,
            allow_redirects=False,
        )
        trail[-1] = redact(response.url, secrets)
        location = http.get_redirect_target(response) if allow_redirects else None
        if location is None:
            return response
        response.close()
        target = urljoin(response.url, location)
        trail.append(redact(target, secrets))
        if urlsplit(target).scheme.lower() not in _DEFAULT_PORTS:
            raise FetchError(
                HTTP_ERROR,
                f"redirect from {trail[-2]} to {trail[-1]}: not http(s)",
                response.status_code,
            )
    raise FetchError(
        HTTP_ERROR,
        f"more than {settings.max_redirects} redirects from {trail[0]} (next: {trail[-1]})",
        response.status_code,
    )


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
