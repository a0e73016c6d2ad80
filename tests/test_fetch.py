"""Image downloads: connectors (pure), the fetch job against a scripted API on 127.0.0.1, and
one end-to-end run fetch -> ingest -> faces through spark-submit. No test touches the internet.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlencode

import pytest

from femo.ingest.images import Limits, Rejection
from femo.platform.errors import FemoError
from femo.platform.files import remove_partials, write_atomic
from femo.platform.settings import (
    ConnectorSettings,
    DdgSettings,
    PixabaySettings,
    Settings,
    load_settings,
)
from femo.sources import fetch as fetch_module
from femo.sources.connectors import (
    BAD_JSON,
    REGISTRY,
    UNEXPECTED_JSON,
    Connector,
    DuckDuckGo,
    MissingKeyError,
    Page,
    PageError,
    PageRequest,
    Pixabay,
    from_settings,
    url_id,
)
from femo.sources.fetch import (
    DOWNLOADED,
    DUPLICATE,
    Accepted,
    FetchRun,
    FetchSummary,
    Known,
    Target,
    decode_json,
    journal_read,
    journal_write,
    judge,
    landing_path,
    manifest_row,
    resolve_emotions,
)
from jobs.fetch_api_images import FetchApiImages

from .conftest import SubmittedHome, make_settings
from .httpserver import (
    HTML_PAGE,
    Reply,
    ScriptedServer,
    astronaut_jpeg,
    image_reply,
    json_reply,
    lfw_face,
)
from .submit import job_lines, submit

SECRET = "pxb-TEST-KEY-7c1d0e55aa"
DDG_SECRET = "rapid-TEST-KEY-99f3b2"
SECRETS = (SECRET, DDG_SECRET)
LICENCE = "Pixabay Content License"

#: Small, fast HTTP for the tests: a 0.5 s read timeout, two retries, tiny backoffs.
FAST_HTTP = (
    "http.read_timeout_s=0.5",
    "http.connect_timeout_s=1",
    "http.retries=2",
    "http.backoff_factor=0.01",
    "http.backoff_max_s=0.05",
    "http.retry_after_max_s=5",
    "http.max_bytes=200000",
    "http.allow_networks=[127.0.0.0/8]",  # the scripted server's loopback, explicitly
    "fetch.threads=3",
    "fetch.connectors.pixabay.per_page=4",
    "fetch.connectors.ddg.host=ddg.test.host",
)

#: Everything the jobs printed or logged in this module, for the leak check.
OUTPUT: list[str] = []


# Pure parts: connectors ----------------------------------------------------------------------


def pixabay(base_url: str = "https://pixabay.test", per_page: int = 4) -> Pixabay:
    return Pixabay(PixabaySettings(base_url=base_url, per_page=per_page), SECRET)


def ddg(base_url: str = "https://ddg.test", host: str | None = "ddg.test.host") -> DuckDuckGo:
    return DuckDuckGo(DdgSettings(base_url=base_url, host=host), DDG_SECRET)


def hit(base: str, image_id: int, path: str | None = None, **extra: Any) -> dict[str, Any]:
    """A Pixabay hit as the API documents it."""
    return {
        "id": image_id,
        "pageURL": f"https://pixabay.com/photos/face-{image_id}/",
        "type": "photo",
        "tags": "face, portrait, woman",
        "previewURL": f"{base}/preview/{image_id}.jpg",
        "webformatURL": f"{base}{path or f'/img/{image_id}.jpg'}",
        "largeImageURL": f"{base}/large/{image_id}.jpg",
        "imageWidth": 1920,
        "imageHeight": 1280,
        "user": f"user{image_id}",
        "user_id": image_id * 10,
        **extra,
    }


def hits_page(hits: list[dict[str, Any]], total: int) -> dict[str, Any]:
    return {"total": total + 100, "totalHits": total, "hits": hits}


def test_pixabay_request() -> None:
    request = pixabay(per_page=50).request("happy face", 2)
    assert request.headers == {}
    assert request.url == "https://pixabay.test/api/?" + urlencode(
        {
            "key": SECRET,
            "q": "happy face",
            "lang": "en",
            "image_type": "photo",
            "category": "people",
            "safesearch": "true",
            "per_page": "50",
            "page": "2",
        }
    )
    assert pixabay().query("Happy") == "happy face"
    assert SECRET not in pixabay().describe(request)
    assert "key=***" in pixabay().describe(request)


def test_pixabay_parse_and_paging() -> None:
    connector = pixabay(per_page=4)
    payload = hits_page(
        [
            hit("https://cdn.test", 7, imageWidth="640"),
            {"id": 8, "pageURL": "https://pixabay.com/x"},  # no image URL
            hit("https://cdn.test", 9, webformatURL="ftp://nope"),
            "not a hit",
        ],
        total=10,
    )
    page = connector.parse(payload)
    assert (page.total, page.skipped) == (10, 3)
    (first,) = page.candidates
    assert first.source_image_id == "7"
    assert first.image_url == "https://cdn.test/img/7.jpg"
    assert first.page_url == "https://pixabay.com/photos/face-7/"
    assert (first.title, first.author, first.licence) == ("face, portrait, woman", "user7", LICENCE)
    assert (first.width, first.height) == (640, 1280)
    full = Page(page.candidates, 10, 3)
    assert [connector.has_more(n, full) for n in (1, 2, 3)] == [True, True, False]
    assert not connector.has_more(1, Page(page.candidates, 10, 0))  # a short page: the last
    assert not connector.has_more(1, Page((), 10, 0))


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "answer is not a JSON object"),
        ({"totalHits": 3}, "answer is not shaped as {hits: [...]}"),
        ({"hits": [], "total": 3}, "answer is not shaped as {totalHits: <int>}"),
    ],
)
def test_pixabay_wrong_shapes(payload: Any, message: str) -> None:
    with pytest.raises(PageError, match=message.replace("[", r"\[").replace("{", r"\{")) as info:
        pixabay().parse(payload)
    assert info.value.reason == UNEXPECTED_JSON


def test_an_echoed_key_is_scrubbed_and_odd_ids_are_hashed() -> None:
    payload = hits_page(
        [hit("https://cdn.test", 1, tags=f"face, {SECRET}", pageURL=f"https://p.test/?k={SECRET}")],
        total=1,
    )
    (candidate,) = pixabay().parse(payload).candidates
    assert candidate.title == "face, ***"
    assert candidate.page_url == "https://p.test/?k=***"
    odd = pixabay().candidate("../../etc/passwd", "https://cdn.test/a.jpg")
    assert odd.source_image_id == url_id("../../etc/passwd")


def test_ddg_request_and_parse() -> None:
    connector = ddg()
    request = connector.request(connector.query("sad"), 1)
    assert request.url == (
        "https://ddg.test/search/images?term=sad+human+face&region=us-en&safeSearch=strict"
    )
    assert request.headers == {"X-RapidAPI-Key": DDG_SECRET, "X-RapidAPI-Host": "ddg.test.host"}
    assert ddg(host=None).request("x", 1).headers == {"X-RapidAPI-Key": DDG_SECRET}
    image = "https://img.example.org/people/sad.jpg"
    payload = {
        "status": "success",
        "message": "",
        "data": [
            {
                "image": image,
                "thumbnail": "https://tse.test/th?id=1",
                "url": "https://example.org/sad-people",
                "title": "Sad man",
                "width": "800",
                "height": 600,
                "source": "Bing",
            },
            {"thumbnail": "https://tse.test/th?id=2"},
        ],
    }
    page = connector.parse(payload)
    (candidate,) = page.candidates
    assert (
        candidate.source_image_id
        == url_id(image)
        == hashlib.sha256(image.encode()).hexdigest()[:20]
    )
    assert (candidate.width, candidate.height, candidate.author) == (800, 600, "Bing")
    assert candidate.licence == DuckDuckGo.licence
    assert (page.total, page.skipped) == (2, 1)
    assert not connector.has_more(1, page)


def test_ddg_error_answer_names_the_status_without_the_key() -> None:
    with pytest.raises(PageError) as info:
        ddg().parse({"status": "error", "message": f"invalid key {DDG_SECRET}"})
    assert info.value.reason == UNEXPECTED_JSON
    assert str(info.value) == (
        "answer is not shaped as {data: [...]} (status 'error': 'invalid key ***')"
    )


def test_registry_and_keys_from_the_environment_only() -> None:
    assert {"pixabay", "ddg"} <= set(REGISTRY)
    fetch_settings = load_settings(None, environ={}).fetch
    made = from_settings("pixabay", fetch_settings, {"PIXABAY_API_KEY": SECRET})
    assert isinstance(made, Pixabay)
    assert made.secrets == (SECRET,)
    with pytest.raises(MissingKeyError) as info:
        from_settings("ddg", fetch_settings, {"RAPIDAPI_KEY": "  "})
    assert "set the environment variable RAPIDAPI_KEY" in str(info.value)
    with pytest.raises(FemoError, match="unknown source 'flickr': known are .*ddg.*pixabay"):
        from_settings("flickr", fetch_settings, {})


class Openverse(Connector):
    """A third source is a small class: request building and parsing, nothing else."""

    name = "openverse"
    kind = "image_api"
    home_url = "https://api.openverse.org/v1/"
    query_template = "{emotion} face"

    def request(self, query: str, page: int) -> PageRequest:
        params = {"q": query, "page": page, "page_size": self.settings.per_page}
        return PageRequest(
            f"{self.base_url}/v1/images/?{urlencode(params)}",
            {"Authorization": f"Bearer {self._key}"},
        )

    def parse(self, payload: Any) -> Page:
        found = [
            self.candidate(r["id"], r["url"], title=r["title"], licence=f"cc-{r['license']}")
            for r in payload["results"]
        ]
        return Page(tuple(found), payload["result_count"])


# Pure parts: landing, judging, rows, journal ---------------------------------------------------


def test_resolve_emotions() -> None:
    labels = {"happy": 3, "joy": 3, "sad": 4, "sadness": 4}
    names = {3: "happy", 4: "sad"}
    got = resolve_emotions(["Happy", " joy", "sad", "happy", ""], labels, names)
    assert got == [Target("happy", "happy", 3), Target("joy", "happy", 3), Target("sad", "sad", 4)]
    with pytest.raises(FemoError, match=r"unknown emotion\(s\) grumpy, Bored: .*\(happy, sad\)"):
        resolve_emotions(["happy", "grumpy", "Bored"], labels, names)
    with pytest.raises(FemoError, match="no emotion given"):
        resolve_emotions([" "], labels, names)


def test_landing_path() -> None:
    assert landing_path("/h/landing", "pixabay", "happy", "101", "jpeg") == Path(
        "/h/landing/pixabay/happy/101.jpg"
    )
    assert landing_path("/h/landing", "ddg", "sad", "ab12", "png").name == "ab12.png"
    with pytest.raises(FemoError, match="local landing zone"):
        landing_path("s3a://bucket/femo/landing", "pixabay", "happy", "1", "jpeg")


def test_judge() -> None:
    limits = Limits(min_side=1)
    photo = astronaut_jpeg()
    accepted = judge(photo, "image/jpeg", limits)
    assert accepted == Accepted(photo, "jpeg", hashlib.sha256(photo).hexdigest())
    png = lfw_face(1, ext=".png")
    assert isinstance(judge(png, "application/octet-stream", limits), Accepted)
    html = judge(HTML_PAGE, "text/html", limits)
    assert html == Rejection(
        "wrong_content_type",
        f"Content-Type text/html, {len(HTML_PAGE)} bytes starting "
        "'<!DOCTYPE html><html><head><title>Access denied<'",
    )
    lying = judge(HTML_PAGE, "image/jpeg", limits)
    assert isinstance(lying, Rejection) and lying.reason == "not_an_image"
    cut = judge(photo[: len(photo) // 2], "image/jpeg", limits)
    assert isinstance(cut, Rejection) and cut.reason == "truncated"


def test_decode_json() -> None:
    assert decode_json(b'{"a": 1}', "application/json") == {"a": 1}
    with pytest.raises(PageError) as info:
        decode_json(b"<html>Bad gateway</html>", "text/html")
    assert (info.value.reason, str(info.value)) == (
        BAD_JSON,
        "answer is not JSON (text/html, 24 bytes starting '<html>Bad gateway</html>')",
    )


def test_manifest_row_redacts_urls() -> None:
    connector = pixabay()
    candidate = connector.candidate(
        "5",
        f"https://cdn.test/a.jpg?key={SECRET}&w=640",
        page_url="https://pixabay.com/photos/5/?token=abc",
        author="ann",
        width=10,
        height=20,
    )
    at = datetime(2024, 5, 1, tzinfo=UTC)
    row = manifest_row(
        connector,
        Target("joy", "happy", 3),
        candidate,
        status=DOWNLOADED,
        sha256="ab" * 32,
        fmt="jpeg",
        size=123,
        path=Path("/l/pixabay/happy/5.jpg"),
        fetched_at=at,
        run_id="r1",
    )
    assert row == {
        "source": "pixabay",
        "source_image_id": "5",
        "emotion_id": 3,
        "emotion": "happy",
        "query": "joy face",
        "page_url": "https://pixabay.com/photos/5/?token=***",
        "image_url": "https://cdn.test/a.jpg?key=***&w=640",
        "title": None,
        "licence": LICENCE,
        "author": "ann",
        "width": 10,
        "height": 20,
        "status": DOWNLOADED,
        "duplicate_of": None,
        "sha256": "ab" * 32,
        "format": "jpeg",
        "size_bytes": 123,
        "landing_path": "/l/pixabay/happy/5.jpg",
        "fetched_at": at,
        "run_id": "r1",
    }


def test_atomic_writes_and_journal(tmp_path: Path) -> None:
    target = tmp_path / "happy" / "1.jpg"
    write_atomic(target, b"bytes")
    assert target.read_bytes() == b"bytes"
    assert [p.name for p in target.parent.iterdir()] == ["1.jpg"]
    (target.parent / ".2.jpg.part").write_bytes(b"half")
    assert remove_partials(tmp_path) == 1
    assert [p.name for p in target.parent.iterdir()] == ["1.jpg"]
    at = datetime(2024, 5, 1, 12, tzinfo=UTC)
    journal_write(tmp_path / "j", {"source_image_id": "1", "fetched_at": at, "width": None})
    (tmp_path / "j" / "junk.json").write_text("{not json")
    assert journal_read(tmp_path / "j") == [
        {"source_image_id": "1", "fetched_at": at, "width": None}
    ]
    assert not (tmp_path / "j" / "junk.json").exists()


def test_summary_line_and_exit_code() -> None:
    summary = FetchSummary("pixabay", queries=2, downloaded=3, duplicates=1)
    summary.quarantined.update({"timeout": 1, "bad_json": 1})
    summary.failed.append("sad face (bad_json)")
    assert summary.line() == (
        "pixabay: downloaded 3, recovered 0, duplicates 1, quarantined 2 (bad_json 1, "
        "timeout 1), skipped 0 already known; queries 2, 0 already complete; "
        "failed queries: sad face (bad_json)"
    )
    assert summary.exit_code() == 0
    assert FetchSummary("ddg", queries=1, failed=["x (http_error)"]).exit_code() == 1
    assert FetchSummary("ddg", queries=1, complete=1, already=5).exit_code() == 0


def test_a_third_connector_runs_without_spark(tmp_path: Path) -> None:
    """FetchRun against the scripted server with the Openverse class above: no Spark."""
    settings = make_settings(tmp_path, *FAST_HTTP)
    with ScriptedServer() as server:
        results = [
            {"id": "ov-1", "url": server.url + "/o/1.jpg", "title": "smile", "license": "by"},
            {"id": "ov-2", "url": server.url + "/o/2.png", "title": "grin", "license": "by-sa"},
        ]
        server.route("/v1/images/", json_reply({"result_count": 2, "results": results}))
        server.route("/o/1.jpg", image_reply(lfw_face(40)))
        server.route("/o/2.png", image_reply(lfw_face(41, ext=".png"), "image/png"))
        connector = Openverse(
            ConnectorSettings(base_url=server.url, key_env="OV", per_page=20), "ov-TEST-KEY-5e2a91"
        )
        run = FetchRun(connector, settings, Known(), "run-1")
        run.fetch(Target("happy", "happy", 3), per_emotion=5)
        run.downloader.close()
        assert server.requests[0].headers["Authorization"] == "Bearer ov-TEST-KEY-5e2a91"
    landed = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert landed == [
        "landing/.journal/openverse/ov-1.json",
        "landing/.journal/openverse/ov-2.json",
        "landing/openverse/happy/ov-1.jpg",
        "landing/openverse/happy/ov-2.png",
    ]
    assert {r["source_image_id"]: r["licence"] for r in run.rows.values()} == {
        "ov-1": "cc-by",
        "ov-2": "cc-by-sa",
    }
    assert run.summary.line().startswith("openverse: downloaded 2, recovered 0, duplicates 0")


def test_refused_addresses_are_quarantined_and_not_tried_again(tmp_path: Path) -> None:
    """Results that point at the metadata service, directly or through a redirect from an
    allowed host, become ``refused_address`` rows naming the host and the address; the next
    run does not ask for them again. No Spark."""
    settings = make_settings(tmp_path, *FAST_HTTP)
    metadata = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
    refused = "169.254.169.254 (link-local), not in http.allow_networks"
    with ScriptedServer() as server:
        bounce = server.url + "/o/bounce.jpg"
        results = [
            {"id": "ov-1", "url": metadata, "title": "smile", "license": "by"},
            {"id": "ov-2", "url": bounce, "title": "grin", "license": "by"},
            {"id": "ov-3", "url": server.url + "/o/3.jpg", "title": "joy", "license": "by"},
        ]
        server.route("/v1/images/", json_reply({"result_count": 3, "results": results}))
        server.route("/o/bounce.jpg", Reply(302, headers={"Location": metadata}))
        server.route("/o/3.jpg", image_reply(lfw_face(42)))
        connector = Openverse(
            ConnectorSettings(base_url=server.url, key_env="OV", per_page=20), "ov-TEST-KEY-5e2a91"
        )
        first = FetchRun(connector, settings, Known(), "run-1")
        first.fetch(Target("happy", "happy", 3), per_emotion=5)
        first.downloader.close()
        assert {url: (r["reason"], r["detail"]) for url, r in first.rejected.items()} == {
            metadata: ("refused_address", f"refused {metadata}: {refused}"),
            bounce: (
                "refused_address",
                f"refused {metadata} (redirected from {bounce}): {refused}",
            ),
        }
        assert (first.summary.downloaded, dict(first.summary.quarantined)) == (
            1,
            {"refused_address": 2},
        )
        known = Known(
            ids={"ov-3"},
            quarantined={url: (r["reason"], r["detail"]) for url, r in first.rejected.items()},
        )
        second = FetchRun(connector, settings, known, "run-2")
        second.fetch(Target("happy", "happy", 3), per_emotion=5)
        second.downloader.close()
        assert (second.summary.skipped, second.rejected) == (3, {})
        assert server.hits("/o/bounce.jpg") == 1


# The job against a scripted API -----------------------------------------------------------


@contextmanager
def captured_logs() -> Iterator[list[str]]:
    """Every record of femo, urllib3 and requests, DEBUG and up, as formatted lines."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Keep(logging.DEBUG)
    loggers = [logging.getLogger(name) for name in ("femo", "urllib3", "requests")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    try:
        yield lines
    finally:
        logging.getLogger().removeHandler(handler)
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def run_fetch(
    spark: Any,
    settings: Settings,
    server: ScriptedServer,
    *argv: str,
    env: dict[str, str] | None = None,
) -> tuple[int, str]:
    """Run the job in this process, with the scripted server as both APIs' base URL."""
    parser = argparse.ArgumentParser()
    FetchApiImages.add_arguments(parser)
    job_settings = make_settings(
        Path(settings.home),
        *FAST_HTTP,
        f"fetch.connectors.pixabay.base_url={server.url}",
        f"fetch.connectors.ddg.base_url={server.url}",
    )
    out = io.StringIO()
    keys = {"PIXABAY_API_KEY": SECRET, "RAPIDAPI_KEY": DDG_SECRET, **(env or {})}
    with mock.patch.dict(os.environ, keys), captured_logs() as logs:
        try:
            code = FetchApiImages(job_settings, spark, out=out).run(parser.parse_args(list(argv)))
        finally:
            OUTPUT.extend([out.getvalue(), *logs])
    return code, out.getvalue().strip()


def rows(spark: Any, sql: str, **args: object) -> list[Any]:
    return spark.sql(sql, args=args).collect()


def versions(spark: Any, table: str) -> int:
    return spark.sql(f"DESCRIBE HISTORY femo.{table}").count()


def files_under(root: Path) -> dict[str, tuple[int, int]]:
    return {
        p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


def page_url(server: ScriptedServer, query: str, page: int = 1) -> str:
    params = {
        "key": "***",
        "q": query,
        "lang": "en",
        "image_type": "photo",
        "category": "people",
        "safesearch": "true",
        "per_page": "4",
        "page": str(page),
    }
    return f"{server.url}/api/?{urlencode(params, safe='*')}"


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as s:
        yield s


@pytest.fixture(scope="module")
def api(server: ScriptedServer) -> ScriptedServer:
    """Pixabay's answers for four queries, and the image hosts' answers for happy's hits."""
    base = server.url
    pages = [
        [hit(base, 101), hit(base, 102), hit(base, 103, "/img/103"), hit(base, 104)],
        [hit(base, 105), hit(base, 106), hit(base, 107), hit(base, 108)],
        [
            hit(base, 109),
            hit(
                base, 110, tags=f"face, {SECRET}", pageURL=f"https://pixabay.com/p/110?key={SECRET}"
            ),
            {"id": 111, "tags": "no image URL"},
        ],
    ]
    for number, page in enumerate(pages, 1):
        server.route(
            "/api/", json_reply(hits_page(page, 11)), query={"q": "happy face", "page": str(number)}
        )
    server.route(
        "/api/", Reply(200, b'{"total": 3, "hits": [', "application/json"), query={"q": "sad face"}
    )
    server.route("/api/", json_reply({"error": "unknown parameter"}), query={"q": "surprise face"})
    server.route("/api/", Reply(500, b"oops", "text/plain"), query={"q": "fear face"})
    truncated = lfw_face(3)
    server.route("/img/101.jpg", image_reply(astronaut_jpeg()))
    server.route(
        "/img/102.jpg", Reply(429, b"", headers={"Retry-After": "1"}), image_reply(lfw_face(0))
    )
    server.route(
        "/img/103",
        Reply(500, b"oops"),
        Reply(502, b"oops"),
        image_reply(lfw_face(1, ext=".png"), "application/octet-stream"),
    )
    server.route("/img/104.jpg", Reply(200, HTML_PAGE, "text/html; charset=utf-8"))
    server.route("/img/105.jpg", image_reply(astronaut_jpeg()))  # 101's bytes, another URL
    server.route("/img/106.jpg", image_reply(HTML_PAGE))  # HTML sent as image/jpeg
    server.route("/img/107.jpg", image_reply(b"\xff\xd8\xff" + b"\0" * 250_000))  # over the cap
    server.route("/img/108.jpg", image_reply(truncated[:1000], announce=len(truncated)))
    server.route("/img/109.jpg", image_reply(lfw_face(4), delay_s=2.0))  # past the read timeout
    server.route("/img/110.jpg", image_reply(lfw_face(2)))
    return server


FIRST_LINE = (
    "pixabay: downloaded 4, recovered 0, duplicates 1, quarantined 8 (bad_json 1, http_error 1, "
    "not_an_image 1, timeout 1, too_large 1, truncated 1, unexpected_json 1, "
    "wrong_content_type 1), skipped 0 already known; queries 4, 0 already complete; failed "
    "queries: sad face (bad_json), surprise face (unexpected_json), fear face (http_error)"
)
EMOTIONS = ("--source", "pixabay", "--emotions", "happy,sad,surprise,fear", "--per-emotion", "10")


@pytest.fixture(scope="module")
def first_run(spark: Any, catalog: Settings, api: ScriptedServer) -> tuple[int, str]:
    return run_fetch(spark, catalog, api, *EMOTIONS)


def test_first_run_summary(first_run: tuple[int, str]) -> None:
    assert first_run == (0, FIRST_LINE)


def test_requests_follow_the_pixabay_contract(
    first_run: tuple[int, str], api: ScriptedServer
) -> None:
    searches = [r.query for r in api.requests if r.path == "/api/" and r.query["q"] == "happy face"]
    assert [q["page"] for q in searches] == ["1", "2", "3"]  # 11 hits, 4 a page: 3 pages
    assert searches[0] == {
        "key": SECRET,
        "q": "happy face",
        "lang": "en",
        "image_type": "photo",
        "category": "people",
        "safesearch": "true",
        "per_page": "4",
        "page": "1",
    }
    assert api.hits("/img/102.jpg") == 2  # 429, then the photo
    assert api.hits("/img/103") == 3  # 500, 502, then the photo
    assert api.hits("/img/109.jpg") == 3  # timed out, twice retried
    assert api.hits("/api/", q="fear face") == 3
    gap = [r.at for r in api.requests if r.path == "/img/102.jpg"]
    assert gap[1] - gap[0] >= 0.95  # Retry-After: 1 honoured


def test_landing_zone(first_run: tuple[int, str], catalog: Settings) -> None:
    root = Path(catalog.landing_dir) / "pixabay"
    assert sorted(files_under(root)) == [
        "happy/101.jpg",
        "happy/102.jpg",
        "happy/103.png",
        "happy/110.jpg",
    ]
    assert (root / "happy" / "101.jpg").read_bytes() == astronaut_jpeg()
    assert (root / "happy" / "103.png").read_bytes() == lfw_face(1, ext=".png")
    assert not any((Path(catalog.landing_dir) / ".journal" / "pixabay").iterdir())


def test_manifest_rows(
    spark: Any, first_run: tuple[int, str], catalog: Settings, api: ScriptedServer
) -> None:
    got = {
        r.source_image_id: r
        for r in rows(spark, "SELECT * FROM femo.downloads WHERE source = 'pixabay'")
    }
    assert sorted(got) == ["101", "102", "103", "105", "110"]
    happy = Path(catalog.landing_dir) / "pixabay" / "happy"
    first = got["101"]
    assert first.asDict() | {"fetched_at": None, "run_id": None} == {
        "source": "pixabay",
        "source_image_id": "101",
        "emotion_id": 3,
        "emotion": "happy",
        "query": "happy face",
        "page_url": "https://pixabay.com/photos/face-101/",
        "image_url": f"{api.url}/img/101.jpg",
        "title": "face, portrait, woman",
        "licence": LICENCE,
        "author": "user101",
        "width": 1920,
        "height": 1280,
        "status": DOWNLOADED,
        "duplicate_of": None,
        "sha256": hashlib.sha256(astronaut_jpeg()).hexdigest(),
        "format": "jpeg",
        "size_bytes": len(astronaut_jpeg()),
        "landing_path": str(happy / "101.jpg"),
        "fetched_at": None,
        "run_id": None,
    }
    twin = got["105"]
    assert (twin.status, twin.duplicate_of, twin.sha256, twin.landing_path) == (
        DUPLICATE,
        "101",
        first.sha256,
        first.landing_path,
    )
    assert (got["103"].format, got["103"].landing_path) == ("png", str(happy / "103.png"))
    assert got["110"].title == "face, ***"
    assert got["110"].page_url == "https://pixabay.com/p/110?key=***"
    assert len({r.run_id for r in got.values()}) == 1


def test_quarantine_reasons(spark: Any, first_run: tuple[int, str], api: ScriptedServer) -> None:
    got = {
        r.path: (r.reason, r.label)
        for r in rows(
            spark, "SELECT path, reason, label FROM femo.quarantine WHERE source = 'pixabay'"
        )
    }
    img = f"{api.url}/img"
    assert got == {
        f"{img}/104.jpg": ("wrong_content_type", "happy"),
        f"{img}/106.jpg": ("not_an_image", "happy"),
        f"{img}/107.jpg": ("too_large", "happy"),
        f"{img}/108.jpg": ("truncated", "happy"),
        f"{img}/109.jpg": ("timeout", "happy"),
        page_url(api, "sad face"): ("bad_json", "sad"),
        page_url(api, "surprise face"): ("unexpected_json", "surprise"),
        page_url(api, "fear face"): ("http_error", "fear"),
    }
    details = {
        r.reason: r.detail
        for r in rows(spark, "SELECT reason, detail FROM femo.quarantine WHERE source = 'pixabay'")
    }
    assert details["too_large"] == f"250003 bytes > 200000 from {img}/107.jpg"
    assert details["http_error"] == f"HTTP 500 from {page_url(api, 'fear face')}"
    assert details["bad_json"].startswith("answer is not JSON (application/json, 22 bytes")
    assert details["unexpected_json"] == "answer is not shaped as {hits: [...]}"
    # Built as ingest builds its rows (femo.ingest.run.quarantine_rows): the URL is the origin.
    stored = rows(
        spark,
        "SELECT path, origin, origin_size, origin_modified_at, split, run_id, seen_at "
        "FROM femo.quarantine WHERE source = 'pixabay'",
    )
    assert all(
        r.origin == r.path and r.split is None and r.origin_modified_at is None for r in stored
    )
    assert len({(r.run_id, r.seen_at) for r in stored}) == 1 and stored[0].seen_at is not None
    sizes = {r.path: r.origin_size for r in stored}
    assert sizes[f"{img}/106.jpg"] == len(HTML_PAGE)  # judged on its bytes: their size
    assert sizes[page_url(api, "fear face")] is None  # a search page: no bytes kept


def test_failed_queries_are_error_lines(first_run: tuple[int, str]) -> None:
    errors = [line for line in OUTPUT if "search failed" in line]
    assert len(errors) == 3
    assert any("'sad face': search failed (bad_json): answer is not JSON" in e for e in errors)


def test_rerun_fetches_and_writes_nothing_new(
    spark: Any, first_run: tuple[int, str], catalog: Settings, api: ScriptedServer
) -> None:
    root = Path(catalog.landing_dir)
    before_files = files_under(root)
    before = (versions(spark, "downloads"), versions(spark, "quarantine"))
    image_hits = {n: api.hits(f"/img/{n}.jpg") for n in (101, 102, 104, 105, 106, 107, 110)}
    code, line = run_fetch(spark, catalog, api, *EMOTIONS)
    assert (code, line) == (
        0,
        "pixabay: downloaded 0, recovered 0, duplicates 0, quarantined 5 (bad_json 1, "
        "http_error 1, timeout 1, truncated 1, unexpected_json 1), skipped 8 already known; "
        "queries 4, 0 already complete; failed queries: sad face (bad_json), surprise face "
        "(unexpected_json), fear face (http_error)",
    )
    assert files_under(root) == before_files
    assert (versions(spark, "downloads"), versions(spark, "quarantine")) == before
    # Stored and known-bad URLs are not asked again; network failures are.
    assert {n: api.hits(f"/img/{n}.jpg") for n in image_hits} == image_hits
    assert api.hits("/img/108.jpg") == 2


def test_complete_queries_are_not_searched_again(
    spark: Any, first_run: tuple[int, str], catalog: Settings, api: ScriptedServer
) -> None:
    requests = len(api.requests)
    args = ("--source", "pixabay", "--emotions", "happy", "--per-emotion", "4")
    code, line = run_fetch(spark, catalog, api, *args)
    assert (code, line) == (
        0,
        "pixabay: downloaded 0, recovered 0, duplicates 0, quarantined 0, skipped 0 already "
        "known; queries 1, 1 already complete",
    )
    assert len(api.requests) == requests  # 'happy face' has its 4 images: no request at all


def test_a_killed_run_loses_nothing_and_duplicates_nothing(
    spark: Any, catalog: Settings, api: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = api.url
    api.route(
        "/api/",
        json_reply(hits_page([hit(base, 301), hit(base, 302)], 2)),
        query={"q": "disgust face"},
    )
    api.route("/img/301.jpg", image_reply(lfw_face(10)))
    api.route("/img/302.jpg", image_reply(lfw_face(11)))
    args = ("--source", "pixabay", "--emotions", "disgust", "--per-emotion", "5")
    folder = Path(catalog.landing_dir) / "pixabay" / "disgust"
    journal = Path(catalog.landing_dir) / ".journal" / "pixabay"

    def killed(*_: object) -> None:
        raise KeyboardInterrupt("killed before the commit")

    with monkeypatch.context() as patch:
        patch.setattr(fetch_module, "commit", killed)
        with pytest.raises(KeyboardInterrupt):
            run_fetch(spark, catalog, api, *args)
    assert sorted(p.name for p in folder.iterdir()) == ["301.jpg", "302.jpg"]
    assert sorted(p.name for p in journal.iterdir()) == ["301.json", "302.json"]
    (folder / ".303.jpg.part").write_bytes(b"half a file")  # killed mid-write, too
    where = "FROM femo.downloads WHERE emotion = 'disgust'"
    assert rows(spark, f"SELECT count(*) n {where}")[0].n == 0

    code, line = run_fetch(spark, catalog, api, *args)
    assert line.startswith("pixabay: downloaded 0, recovered 2, duplicates 0, quarantined 0")
    assert (api.hits("/img/301.jpg"), api.hits("/img/302.jpg")) == (1, 1)
    assert sorted(p.name for p in folder.iterdir()) == ["301.jpg", "302.jpg"]
    assert not any(journal.iterdir())
    counts = rows(spark, f"SELECT count(*) n, count(DISTINCT source_image_id) ids {where}")[0]
    assert (counts.n, counts.ids) == (2, 2)

    # A landed file with neither a row nor a journal entry is adopted when its hit comes back.
    spark.sql("DELETE FROM femo.downloads WHERE source = 'pixabay' AND source_image_id = '301'")
    code, line = run_fetch(spark, catalog, api, *args)
    assert line.startswith(
        "pixabay: downloaded 0, recovered 1, duplicates 0, quarantined 0, skipped 1"
    )
    assert api.hits("/img/301.jpg") == 1
    counts = rows(spark, f"SELECT count(*) n, count(DISTINCT source_image_id) ids {where}")[0]
    assert (counts.n, counts.ids) == (2, 2)


def test_ddg_search(spark: Any, catalog: Settings, api: ScriptedServer) -> None:
    images = [f"{api.url}/web/a.jpg?w=800", f"{api.url}/web/b"]
    data = [
        {
            "image": images[0],
            "thumbnail": f"{api.url}/th/a",
            "url": "https://example.org/neutral-faces",
            "title": "A calm face",
            "width": "800",
            "height": "600",
            "source": "Bing",
        },
        {
            "image": images[1],
            "url": "https://example.org/b",
            "title": "B",
            "width": 150,
            "height": 150,
        },
        {"thumbnail": "no image"},
    ]
    api.route(
        "/search/images",
        json_reply({"status": "success", "message": "", "data": data}),
        query={"term": "neutral human face"},
    )
    api.route("/web/a.jpg", image_reply(lfw_face(20)))
    api.route("/web/b", image_reply(lfw_face(21, ext=".png"), "image/png"))
    code, line = run_fetch(spark, catalog, api, "--source", "ddg", "--emotions", "neutral")
    assert (code, line) == (
        0,
        "ddg: downloaded 2, recovered 0, duplicates 0, quarantined 0, skipped 0 already known; "
        "queries 1, 0 already complete",
    )
    (search,) = [r for r in api.requests if r.path == "/search/images"]
    assert search.query == {"term": "neutral human face", "region": "us-en", "safeSearch": "strict"}
    assert search.headers["X-RapidAPI-Key"] == DDG_SECRET
    assert search.headers["X-RapidAPI-Host"] == "ddg.test.host"
    got = {
        r.source_image_id: r
        for r in rows(spark, "SELECT * FROM femo.downloads WHERE source = 'ddg'")
    }
    ids = [url_id(u) for u in images]
    assert sorted(got) == sorted(ids)
    first = got[ids[0]]
    assert (first.width, first.height, first.author, first.title, first.emotion_id) == (
        800,
        600,
        "Bing",
        "A calm face",
        6,
    )
    assert first.licence == DuckDuckGo.licence
    folder = Path(catalog.landing_dir) / "ddg" / "neutral"
    assert sorted(p.name for p in folder.iterdir()) == sorted([f"{ids[0]}.jpg", f"{ids[1]}.png"])
    kind = rows(spark, "SELECT kind FROM femo.sources WHERE source_id = 'ddg'")[0].kind
    assert kind == "web_search"


def test_nothing_fetched_is_a_failure(spark: Any, catalog: Settings, api: ScriptedServer) -> None:
    api.route(
        "/search/images",
        json_reply({"message": f"You are not subscribed to this API. ({DDG_SECRET})"}, 403),
        query={"term": "contempt human face"},
    )
    code, line = run_fetch(spark, catalog, api, "--source", "ddg", "--emotions", "contempt")
    assert code == 1
    assert line.endswith("failed queries: contempt human face (http_error)")
    assert api.hits("/search/images", term="contempt human face") == 1  # a 403 is not retried


def test_bad_arguments(spark: Any, catalog: Settings, api: ScriptedServer, tmp_path: Path) -> None:
    with pytest.raises(FemoError, match=r"unknown emotion\(s\) grumpy"):
        run_fetch(spark, catalog, api, "--source", "pixabay", "--emotions", "happy,grumpy")
    env = {k: v for k, v in os.environ.items() if k != "PIXABAY_API_KEY"}
    with mock.patch.dict(os.environ, env, clear=True):
        code = FetchApiImages.main(
            ["--source", "pixabay", "--emotions", "happy", "--set", f"home={tmp_path}"]
        )
    assert code == 2
    assert not any(tmp_path.iterdir())  # failed before building anything


def test_the_keys_never_leak(spark: Any, catalog: Settings, first_run: tuple[int, str]) -> None:
    """Job output and logs, every table's rows and every file under home hold no key."""
    assert OUTPUT
    text = "\n".join(OUTPUT)
    assert "key=***" in text  # the searches were logged, redacted
    for secret in SECRETS:
        assert secret not in text
    tables = [t.name for t in spark.catalog.listTables("femo") if t.tableType != "VIEW"]
    assert {"downloads", "quarantine", "sources"} <= set(tables)
    for table in tables:
        df = spark.table(f"femo.{table}")
        texts = [f.name for f in df.schema.fields if f.dataType.typeName() != "binary"]
        dump = json.dumps([r.asDict() for r in df.select(*texts).collect()], default=str)
        for secret in SECRETS:
            assert secret not in dump, table
    home = Path(catalog.home)
    checked = 0
    for path in home.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            checked += 1
            for secret in SECRETS:
                assert secret.encode() not in content, path
    assert checked > 20


# End to end through spark-submit -----------------------------------------------------------


@pytest.mark.submit
def test_end_to_end_fetch_ingest_detect(spark: Any, submitted_home: SubmittedHome) -> None:
    # On the session's home that jobs built through spark-submit (its catalog in place, the
    # generated sample ingested): the pixabay source is this test's alone.
    home = submitted_home.home
    with ScriptedServer() as api:
        base = api.url
        first = json_reply(hits_page([hit(base, 201), hit(base, 202)], 2))
        api.route(
            "/api/",
            Reply(200, b"{}", "application/json", delay_s=2.5),
            first,
            query={"q": "happy face"},
        )
        api.route("/api/", json_reply(hits_page([hit(base, 203)], 1)), query={"q": "sad face"})
        api.route("/img/201.jpg", image_reply(astronaut_jpeg()))
        api.route("/img/202.jpg", image_reply(lfw_face(30, side=200)))
        api.route("/img/203.jpg", image_reply(lfw_face(31, side=200)))
        sets = [
            f"fetch.connectors.pixabay.base_url={base}",
            "http.allow_networks=[127.0.0.0/8]",
            "http.read_timeout_s=1",
            "http.retries=2",
            "http.backoff_factor=0.01",
        ]
        fetched = submit(
            "jobs/fetch_api_images.py",
            "--source",
            "pixabay",
            "--emotions",
            "happy,sad",
            "--per-emotion",
            "5",
            *[a for s in sets for a in ("--set", s)],
            home=home,
            PIXABAY_API_KEY=SECRET,
        )
    output = fetched.stdout + fetched.stderr
    assert fetched.returncode == 0, output[-3000:]
    assert job_lines(fetched)[-1] == (
        "pixabay: downloaded 3, recovered 0, duplicates 0, quarantined 0, skipped 0 already "
        "known; queries 2, 0 already complete"
    )
    assert "Retrying" in output and "key=***" in output  # urllib3's warning, scrubbed
    assert SECRET not in output

    landing = home / "landing" / "pixabay"
    (landing / "happy" / ".204.jpg.part").write_bytes(b"half")  # hidden: not ingested
    # ingest and detect in one submitted driver, one JVM start for both (about 30 s less): the
    # shared home's ingest proves ingest's own submit; spark-submit.sh runs every job alike
    data = submit(
        "tests/jobs_in_one_driver.py",
        *("jobs/ingest_images.py", "--source", "pixabay", "--path", str(landing)),
        *("+", "jobs/detect_faces.py", "--source", "pixabay"),
        home=home,
    )
    assert data.returncode == 0, data.stderr[-3000:]
    assert "pixabay: accepted 3, quarantined 0, skipped 0 already ingested" in job_lines(data)

    warehouse = home / "warehouse" / "femo.db"
    images = spark.read.format("delta").load(str(warehouse / "images")).where("source = 'pixabay'")
    by_file = {
        r.path.rsplit("/", 1)[1]: (r.source, r.label, r.label_id, r.image_id)
        for r in images.select("path", "source", "label", "label_id", "image_id").collect()
    }
    astronaut = hashlib.sha256(astronaut_jpeg()).hexdigest()
    assert by_file == {
        "201.jpg": ("pixabay", "happy", 3, astronaut),
        "202.jpg": ("pixabay", "happy", 3, hashlib.sha256(lfw_face(30, side=200)).hexdigest()),
        "203.jpg": ("pixabay", "sad", 4, hashlib.sha256(lfw_face(31, side=200)).hexdigest()),
    }
    manifest = spark.read.format("delta").load(str(warehouse / "downloads"))
    assert {r.sha256 for r in manifest.collect()} == {v[3] for v in by_file.values()}
    faces = spark.read.format("delta").load(str(warehouse / "faces"))
    found = faces.where(f"image_id = '{astronaut}' AND status = 'face'").count()
    assert found >= 1
    for path in home.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
