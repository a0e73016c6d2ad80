"""femo.sources.http against a scripted server on 127.0.0.1: retries, Retry-After, caps,
redaction."""

from __future__ import annotations

import gzip
import itertools
import logging
import os
import socket
import time
from collections.abc import Iterator

import pytest

from femo.platform.settings import HttpSettings
from femo.sources import http

from .httpserver import HTML_PAGE, Reply, ScriptedServer, astronaut_jpeg, image_reply

SECRET = "sk-test-4f1e9c2d7b"

#: Small timeouts and tiny backoffs: a wait of a second or more can only be Retry-After.
FAST = HttpSettings(
    connect_timeout_s=1.0,
    read_timeout_s=0.4,
    retries=2,
    backoff_factor=0.01,
    backoff_max_s=0.05,
    retry_after_max_s=5,
    total_timeout_s=5.0,
    max_bytes=100_000,
    allow_networks=("127.0.0.0/8",),  # the scripted server's loopback, explicitly
)


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as s:
        yield s


def get(url: str, settings: HttpSettings = FAST, **kw: object) -> http.Fetched:
    with http.session(settings) as session:
        return http.get(session, url, settings, secrets=[SECRET], **kw)  # type: ignore[arg-type]


def fails(url: str, settings: HttpSettings = FAST, **kw: object) -> http.FetchError:
    with pytest.raises(http.FetchError) as info:
        get(url, settings, **kw)
    return info.value


def gaps(server: ScriptedServer, path: str) -> list[float]:
    times = [r.at for r in server.requests if r.path == path]
    return [b - a for a, b in itertools.pairwise(times)]


def test_an_image_is_read_whole(server: ScriptedServer) -> None:
    photo = astronaut_jpeg()
    url = server.route("/a.jpg", image_reply(photo, "image/jpeg; charset=binary"))
    got = get(url)
    assert (got.status, got.content_type, got.content) == (200, "image/jpeg", photo)
    assert server.hits("/a.jpg") == 1


def test_retry_after_is_honoured(server: ScriptedServer) -> None:
    url = server.route(
        "/limited",
        Reply(429, b"slow down", "text/plain", {"Retry-After": "1"}),
        Reply(200, b"ok", "text/plain"),
    )
    assert get(url).content == b"ok"
    assert server.hits("/limited") == 2
    assert gaps(server, "/limited")[0] >= 0.95


def test_without_retry_after_the_backoff_is_used(server: ScriptedServer) -> None:
    url = server.route("/busy", Reply(429, b""), Reply(200, b"ok"))
    assert get(url).content == b"ok"
    assert server.hits("/busy") == 2
    assert gaps(server, "/busy")[0] < 0.5


def test_pixabay_rate_limit_reset_is_waited_out(server: ScriptedServer) -> None:
    url = server.route(
        "/api/",
        Reply(429, b"", headers={"X-RateLimit-Limit": "100", "X-RateLimit-Reset": "1"}),
        Reply(200, b"{}", "application/json"),
    )
    assert get(url).content == b"{}"
    assert gaps(server, "/api/")[0] >= 0.95


def test_a_long_retry_after_is_capped(server: ScriptedServer) -> None:
    capped = FAST.model_copy(update={"retry_after_max_s": 1})
    url = server.route(
        "/later", Reply(503, b"", headers={"Retry-After": "3600"}), Reply(200, b"ok")
    )
    started = time.monotonic()
    assert get(url, capped).content == b"ok"
    assert 0.95 <= time.monotonic() - started < 3


def test_server_errors_then_success(server: ScriptedServer) -> None:
    url = server.route("/flaky", Reply(500, b"oops"), Reply(503, b"oops"), Reply(200, b"fine"))
    assert get(url).content == b"fine"
    assert server.hits("/flaky") == 3


def test_gives_up_after_the_retries(server: ScriptedServer) -> None:
    url = server.route("/down", Reply(500, b"oops"))
    error = fails(url)
    assert (error.reason, error.status) == (http.HTTP_ERROR, 500)
    assert server.hits("/down") == FAST.retries + 1


def test_client_errors_are_not_retried(server: ScriptedServer) -> None:
    error = fails(server.url + "/missing")
    assert (error.reason, error.status) == (http.HTTP_ERROR, 404)
    assert server.hits("/missing") == 1


def test_a_slow_answer_times_out_after_the_retries(server: ScriptedServer) -> None:
    url = server.route("/slow", Reply(200, b"late", delay_s=1.5))
    error = fails(url)
    assert error.reason == http.TIMEOUT
    assert server.hits("/slow") == FAST.retries + 1


def test_a_trickle_past_the_total_timeout_is_cut(server: ScriptedServer) -> None:
    url = server.route("/drip", Reply(200, b"x" * 5000, pieces=5, drip_s=0.3))
    error = fails(url, FAST.model_copy(update={"total_timeout_s": 0.5}))
    assert error.reason == http.TIMEOUT
    assert "0.5 s elapsed" in str(error)


def test_too_large_by_content_length_is_not_read(server: ScriptedServer) -> None:
    url = server.route("/big", Reply(200, b"x" * 150_000))
    error = fails(url)
    assert error.reason == http.TOO_LARGE
    assert str(error).startswith("150000 bytes > 100000 from")


def test_too_large_without_content_length_is_cut_while_reading(server: ScriptedServer) -> None:
    url = server.route("/stream", Reply(200, b"x" * 150_000, omit_length=True))
    error = fails(url)
    assert error.reason == http.TOO_LARGE
    assert str(error).startswith("more than 100000 bytes from")


def test_a_truncated_body_is_an_error(server: ScriptedServer) -> None:
    photo = astronaut_jpeg()
    url = server.route("/cut.jpg", image_reply(photo[:5000], announce=len(photo)))
    assert fails(url).reason == http.TRUNCATED


def test_a_compressed_body_is_not_mistaken_for_a_truncated_one(server: ScriptedServer) -> None:
    raw = os.urandom(2000)  # incompressible: gzip makes it longer than it decodes to
    packed = gzip.compress(raw)
    assert len(packed) > len(raw)
    url = server.route("/gz", Reply(200, packed, headers={"Content-Encoding": "gzip"}))
    assert get(url).content == raw


def test_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = fails(f"http://127.0.0.1:{port}/x?key={SECRET}")
    assert error.reason == http.CONNECTION
    assert str(error) == f"could not connect on http://127.0.0.1:{port}/x?key=***"


def test_redirects_can_be_refused(server: ScriptedServer) -> None:
    target = server.route("/elsewhere", Reply(200, b"stolen"))
    url = server.route("/api/", Reply(302, b"", headers={"Location": target}))
    error = fails(url, headers={"X-RapidAPI-Key": SECRET}, allow_redirects=False)
    assert (error.reason, error.status) == (http.HTTP_ERROR, 302)
    assert server.hits("/elsewhere") == 0
    assert get(url).content == b"stolen"  # followed by default (image hosts redirect)


def test_redact() -> None:
    assert http.redact(f"https://user:pw@pixabay.com/api/?key={SECRET}&q=happy+face&page=2") == (
        "https://pixabay.com/api/?key=***&q=happy+face&page=2"
    )
    assert http.redact(f"http://h/img/{SECRET}/a.jpg?API_KEY=1", [SECRET]) == (
        "http://h/img/***/a.jpg?API_KEY=***"
    )
    assert http.redact("http://h/a.jpg?monkey=banana") == "http://h/a.jpg?monkey=banana"
    assert http.redact_headers({"X-RapidAPI-Key": SECRET, "X-RapidAPI-Host": "h"}) == {
        "X-RapidAPI-Key": "***",
        "X-RapidAPI-Host": "h",
    }
    assert (
        http.redact_text(f"GET /api/?q=x&key={SECRET} HTTP/1.1") == "GET /api/?q=x&key=*** HTTP/1.1"
    )


@pytest.mark.parametrize(
    "reply",
    [
        Reply(500, b"oops"),
        Reply(404, b"no"),
        Reply(200, b"late", delay_s=1.5),
        Reply(200, b"x" * 150_000),
        Reply(200, b"x" * 150_000, omit_length=True),
        Reply(200, HTML_PAGE, announce=len(HTML_PAGE) + 100),
        Reply(302, b"", headers={"Location": "/elsewhere"}),
    ],
    ids=["500", "404", "slow", "too_large", "too_large_stream", "truncated", "redirect"],
)
def test_no_error_message_holds_the_key(
    server: ScriptedServer, reply: Reply, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.route(f"/u/{SECRET}/a.jpg", reply)
    error = fails(
        f"{server.url}/u/{SECRET}/a.jpg?key={SECRET}&token={SECRET}",
        headers={"X-RapidAPI-Key": SECRET},
        allow_redirects=False,
    )
    for text in (str(error), repr(error), caplog.text):
        assert SECRET not in text
    assert "/u/***/a.jpg?key=***&token=***" in str(error)
    assert error.__cause__ is None
    assert error.__context__ is None


def test_the_http_stack_logs_no_key(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    """urllib3 logs the URL it retries, query string and all: the scrubber must catch it."""
    caplog.set_level(logging.DEBUG)
    server.route("/api/", Reply(200, b"late", delay_s=1.5))
    fails(f"{server.url}/api/?q=happy&key={SECRET}")
    retried = [r for r in caplog.records if r.name.startswith("urllib3") and "Retrying" in r.msg]
    assert len(retried) == FAST.retries
    assert all("key=***" in r.getMessage() for r in retried)
    assert SECRET not in caplog.text
