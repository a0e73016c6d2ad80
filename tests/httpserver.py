"""A scripted HTTP server on 127.0.0.1 for tests that talk HTTP, and real photos to serve.

``ScriptedServer`` is the standard library's ``ThreadingHTTPServer`` in a thread. Each route
(a path, optionally a subset of query parameters) answers a list of :class:`Reply` in turn,
the last one repeating. Replies can be late (past a read timeout), lie about their length
(truncated bodies), omit it, or be anything a misbehaving API or image host sends. Every request
is recorded, so tests can count hits and read the headers sent.

Use it as a context manager, or through a fixture in the test module::

    @pytest.fixture
    def server() -> Iterator[ScriptedServer]:
        with ScriptedServer() as s:
            yield s
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import cv2
import numpy as np
from skimage import data


@dataclass(frozen=True)
class Reply:
    """One scripted answer."""

    status: int = 200
    body: bytes = b""
    content_type: str | None = "application/octet-stream"
    headers: Mapping[str, str] = field(default_factory=dict)
    #: Seconds to wait before the status line (past the client's read timeout: a timeout).
    delay_s: float = 0.0
    #: Content-Length to announce; None: the true length. Larger than the body: truncated.
    announce: int | None = None
    #: Send no Content-Length at all (the body ends when the connection closes).
    omit_length: bool = False
    #: Send the body in this many pieces, ``drip_s`` apart.
    pieces: int = 1
    drip_s: float = 0.0


def json_reply(payload: Any, status: int = 200, **kw: Any) -> Reply:
    """A JSON answer."""
    return Reply(status, json.dumps(payload).encode(), "application/json", **kw)


def image_reply(content: bytes, content_type: str = "image/jpeg", **kw: Any) -> Reply:
    """An image answer."""
    return Reply(200, content, content_type, **kw)


HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>Access denied</title></head>"
    b"<body><h1>Please enable cookies</h1></body></html>"
)


@dataclass(frozen=True)
class Recorded:
    """A request the server received."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    at: float


@dataclass
class _Route:
    path: str
    query: dict[str, str]
    replies: list[Reply]
    served: int = 0

    def matches(self, path: str, query: Mapping[str, str]) -> bool:
        return path == self.path and all(query.get(k) == v for k, v in self.query.items())

    def next(self) -> Reply:
        reply = self.replies[min(self.served, len(self.replies) - 1)]
        self.served += 1
        return reply


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"  # one request per connection: the body ends at close

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        reply = self.server.owner.answer(parts.path, query, dict(self.headers.items()))
        # The client may have given up (a timeout test): nothing to do then.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, TimeoutError):
            self._send(reply)

    def _send(self, reply: Reply) -> None:
        if reply.delay_s:
            time.sleep(reply.delay_s)
        self.send_response(reply.status)
        if reply.content_type:
            self.send_header("Content-Type", reply.content_type)
        if not reply.omit_length:
            length = reply.announce if reply.announce is not None else len(reply.body)
            self.send_header("Content-Length", str(length))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        step = max(1, -(-len(reply.body) // max(1, reply.pieces)))
        for start in range(0, len(reply.body), step):
            if start and reply.drip_s:
                time.sleep(reply.drip_s)
            self.wfile.write(reply.body[start : start + step])
            self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: ScriptedServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.owner = owner

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up mid-answer is part of the script


class ScriptedServer:
    """Scripted answers on ``http://127.0.0.1:<port>``; unknown paths get 404."""

    def __init__(self) -> None:
        self._routes: list[_Route] = []
        self._lock = threading.Lock()
        self.requests: list[Recorded] = []
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """Base URL, without a trailing slash."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, path: str, *replies: Reply, query: Mapping[str, str] | None = None) -> str:
        """Answer GETs of ``path`` (whose query holds ``query``) with ``replies`` in turn, the
        last one repeating; a later route for the same request wins. Returns the full URL."""
        with self._lock:
            self._routes.insert(0, _Route(path, dict(query or {}), list(replies)))
        return self.url + path

    def answer(self, path: str, query: Mapping[str, str], headers: dict[str, str]) -> Reply:
        with self._lock:
            self.requests.append(Recorded(path, dict(query), headers, time.monotonic()))
            for route in self._routes:
                if route.matches(path, query):
                    return route.next()
        return Reply(404, b"not found", "text/plain")

    def hits(self, path: str, **query: str) -> int:
        """Requests received for ``path`` (whose query holds ``query``)."""
        with self._lock:
            return sum(
                1
                for r in self.requests
                if r.path == path and all(r.query.get(k) == v for k, v in query.items())
            )

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ScriptedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# Real photos ---------------------------------------------------------------------------------


def _encode(pixels: np.ndarray, ext: str, quality: int = 90) -> bytes:
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext == ".jpg" else []
    ok, buf = cv2.imencode(ext, pixels, params)
    assert ok
    return buf.tobytes()


@cache
def astronaut_jpeg(quality: int = 90) -> bytes:
    """scikit-image's astronaut (Eileen Collins, a frontal face), 512x512 JPEG."""
    return _encode(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), ".jpg", quality)


@cache
def _lfw() -> np.ndarray:
    return data.lfw_subset()


def lfw_face(index: int, side: int = 150, ext: str = ".jpg") -> bytes:
    """Face ``index`` (0-99 are faces) of scikit-image's LFW subset, 25 px scaled to ``side``."""
    gray = (_lfw()[index] * 255).astype(np.uint8)
    big = cv2.resize(gray, (side, side), interpolation=cv2.INTER_CUBIC)
    return _encode(big, ext)
