"""The local Pixabay-compatible mirror, read through femo's own HTTP client and connector."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from femo.ingest.sample import encode, face_like
from femo.platform.settings import HttpSettings, load_settings
from femo.sources.connectors import from_settings
from femo.sources.http import REFUSED_ADDRESS, FetchError, get, session
from femo.sources.mirror import make_server

#: The mirror binds 127.0.0.1: femo reaches it only where the settings allow loopback.
LOOPBACK = HttpSettings(allow_networks=("127.0.0.0/8",))
KEY = "mirror-TEST-KEY-0b7d"


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[str]:
    rng = np.random.default_rng(1)
    root = tmp_path / "root"  # beside it, tests may put files the mirror must not serve
    for emotion, count in (("happy", 5), ("sad", 2)):
        (root / emotion).mkdir(parents=True)
        for i in range(count):
            (root / emotion / f"{i}.png").write_bytes(encode(face_like(rng, 64, True), ".png"))
    (root / "happy" / "notes.txt").write_text("not an image")
    server = make_server(root)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host}:{port}"
    finally:
        server.shutdown()
        server.server_close()


def test_pixabay_connector_pages_through_the_mirror(mirror: str) -> None:
    settings = load_settings(
        None,
        [
            f"fetch.connectors.pixabay.base_url={mirror}",
            "fetch.connectors.pixabay.per_page=3",
            "http.allow_networks=[127.0.0.0/8]",
        ],
    )
    connector = from_settings("pixabay", settings.fetch, {"PIXABAY_API_KEY": KEY})
    http = session(settings.http)
    pages = []
    for page_no in (1, 2):
        request = connector.request(connector.query("happy"), page_no)
        answer = get(http, request.url, settings.http)
        pages.append(connector.parse(json.loads(answer.content)))
    assert [len(p.candidates) for p in pages] == [3, 2]  # 5 images, notes.txt left out
    assert pages[0].total == 5
    assert connector.has_more(1, pages[0]) and not connector.has_more(2, pages[1])
    first = pages[0].candidates[0]
    image = get(http, first.image_url, settings.http)
    assert (image.content_type, image.content[:4]) == ("image/png", b"\x89PNG")


def test_mirror_refuses_paths_outside_its_root(mirror: str, tmp_path: Path) -> None:
    once = LOOPBACK.model_copy(update={"retries": 0})
    http = session(once)
    outside = tmp_path / "outside.png"  # a file that exists, one level above the root
    outside.write_bytes(encode(face_like(np.random.default_rng(2), 64, True), ".png"))
    assert get(http, f"{mirror}/img/happy%2F0.png", once).content[:4] == b"\x89PNG"
    for path in ("..%2Foutside.png", "happy%2F..%2F..%2Foutside.png", f"{outside}"):
        with pytest.raises(FetchError, match="HTTP 404"):
            get(http, f"{mirror}/img/{path}", once)
    sad = get(http, f"{mirror}/api/?q=sad+face&page=1&per_page=20", LOOPBACK)
    assert json.loads(sad.content)["totalHits"] == 2


def test_the_mirror_is_reached_only_where_loopback_is_allowed(mirror: str) -> None:
    strict = HttpSettings(retries=0)  # the default: public addresses only
    with pytest.raises(FetchError) as info, session(strict) as http:
        get(http, f"{mirror}/api/?q=happy+face", strict)
    assert info.value.reason == REFUSED_ADDRESS
    assert "127.0.0.1 (loopback), not in http.allow_networks" in str(info.value)


def test_the_access_log_shows_no_key(mirror: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="femo.sources.mirror")
    with session(LOOPBACK) as http:
        get(http, f"{mirror}/api/?key={KEY}&q=happy+face&page=1&per_page=3", LOOPBACK)
        with pytest.raises(FetchError, match="HTTP 404"):
            get(http, f"{mirror}/nowhere?q=x&key={KEY}", LOOPBACK.model_copy(update={"retries": 0}))
    lines = [r.getMessage() for r in caplog.records if r.name == "femo.sources.mirror"]
    assert lines == [
        '127.0.0.1 "GET /api/?key=***&q=happy+face&page=1&per_page=3 HTTP/1.1" 200 -',
        '127.0.0.1 "GET /nowhere?q=x&key=*** HTTP/1.1" 404 -',
    ]
    assert KEY not in caplog.text
