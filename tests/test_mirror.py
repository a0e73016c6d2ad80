"""The local Pixabay-compatible mirror, read through femo's own HTTP client and connector."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from femo.ingest.sample import encode, face_like
from femo.platform.settings import HttpSettings, load_settings
from femo.sources.connectors import from_settings
from femo.sources.http import FetchError, get, session
from femo.sources.mirror import make_server


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[str]:
    rng = np.random.default_rng(1)
    for emotion, count in (("happy", 5), ("sad", 2)):
        (tmp_path / emotion).mkdir()
        for i in range(count):
            (tmp_path / emotion / f"{i}.png").write_bytes(encode(face_like(rng, 64, True), ".png"))
    (tmp_path / "happy" / "notes.txt").write_text("not an image")
    server = make_server(tmp_path)
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
        None, [f"fetch.connectors.pixabay.base_url={mirror}", "fetch.connectors.pixabay.per_page=3"]
    )
    connector = from_settings(
        "pixabay", settings.fetch, {"PIXABAY_API_KEY": "mirror-TEST-KEY-0b7d"}
    )
    http = session(HttpSettings())
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


def test_mirror_refuses_paths_outside_its_root(mirror: str) -> None:
    http = session(HttpSettings(retries=0))
    with pytest.raises(FetchError, match="HTTP 404"):
        get(http, f"{mirror}/img/..%2F..%2Fetc%2Fpasswd", HttpSettings(retries=0))
    sad = get(http, f"{mirror}/api/?q=sad+face&page=1&per_page=20", HttpSettings())
    assert json.loads(sad.content)["totalHits"] == 2
