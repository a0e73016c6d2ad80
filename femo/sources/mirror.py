"""A local, Pixabay-compatible image API over a folder: for demos and air-gapped clusters.

``python -m femo.sources.mirror ROOT [--port N]`` serves ``ROOT/<emotion>/*`` the way Pixabay's API
answers (``GET /api/?q=<emotion> face&page=..&per_page=..`` gives ``{total, totalHits, hits}``
with ``webformatURL`` pointing back at this server), so ``jobs/fetch_api_images.py --source
pixabay --set fetch.connectors.pixabay.base_url=http://127.0.0.1:N`` downloads from it exactly
as from the real API. Any key is accepted: it is a mirror, not a gate, but none is logged: the
access log shows ``key=***``. Binds 127.0.0.1 only, so the fetch job must be allowed to reach it:
``--set "http.allow_networks=[127.0.0.0/8]"``, as ``scripts/demo.sh`` does (no shipped settings
file admits loopback).
"""

from __future__ import annotations

import argparse
import json
import logging
import mimetypes
import sys
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from femo.platform.errors import EXIT_USAGE
from femo.sources.http import redact_text

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp"})


def catalogue(root: Path) -> dict[str, list[Path]]:
    """The images of each emotion folder under ``root`` (lower-case folder name), sorted."""
    return {
        folder.name.lower(): sorted(
            p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        for folder in sorted(root.iterdir())
        if folder.is_dir()
    }


def search_page(
    images: dict[str, list[Path]], root: Path, base: str, query: str, page: int, per_page: int
) -> dict[str, Any]:
    """Pixabay's answer to ``q=query`` (its first word names the emotion folder)."""
    words = query.lower().split()
    found = images.get(words[0], []) if words else []
    start = (max(page, 1) - 1) * per_page
    hits = []
    for path in found[start : start + per_page]:
        relative = path.relative_to(root).as_posix()
        url = f"{base}/img/{quote(relative)}"
        hits.append(
            {
                "id": zlib.crc32(relative.encode()),
                "pageURL": url,
                "tags": words[0],
                "webformatURL": url,
                "largeImageURL": url,
                "user": "femo-mirror",
            }
        )
    return {"total": len(found), "totalHits": len(found), "hits": hits}


def url_of(server: Any) -> str:
    """``http://host:port`` of a bound server."""
    host, port = server.server_address[:2]
    return f"http://{host}:{port}"


def make_server(root: Path, port: int = 0) -> ThreadingHTTPServer:
    """A server (not yet serving) for ``root`` on 127.0.0.1:``port`` (0: any free port)."""
    root = root.resolve()
    images = catalogue(root)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """The access log, with the values of ``key=`` and other secret query parameters
            replaced by ``***`` (the request line carries the client's API key)."""
            log.debug("%s %s", self.address_string(), redact_text(format % args))

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            base = url_of(self.server)
            if parts.path.rstrip("/") == "/api":
                query = parse_qs(parts.query)
                try:
                    page = int(query.get("page", ["1"])[0])
                    per_page = min(200, max(3, int(query.get("per_page", ["20"])[0])))
                except ValueError:
                    self._send(400, b"[ERROR 400] page and per_page are numbers", "text/plain")
                    return
                answer = search_page(images, root, base, query.get("q", [""])[0], page, per_page)
                self._send(200, json.dumps(answer).encode(), "application/json")
                return
            if parts.path.startswith("/img/"):
                target = (root / unquote(parts.path[len("/img/") :])).resolve()
                if target.is_relative_to(root) and target.is_file():
                    kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
                    self._send(200, target.read_bytes(), kind)
                    return
            self._send(404, b"not found", "text/plain")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def main(argv: list[str] | None = None) -> int:
    """``python -m femo.sources.mirror ROOT [--port N]``: serve until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="folder of <emotion>/<image> files")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        print(f"error: {args.root} is not a folder", file=sys.stderr)
        return EXIT_USAGE
    server = make_server(args.root, args.port)
    print(f"mirror: {url_of(server)} serving {args.root}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
