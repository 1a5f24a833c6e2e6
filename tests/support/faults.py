"""A fake source registry that serves one image like a registry would, except for one fault.

For behaviour the real registry will not show on demand (a truncated body, wrong bytes, a 429
with ``Retry-After``): each test passes a ``fault`` that may answer a blob request itself.
Loopback only; the server stops when the context manager exits.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .images import Image

__all__ = ["FakeSource", "Fault", "drop_once", "truncate_once"]

Fault = Callable[[BaseHTTPRequestHandler, str, int], bool]
"""``fault(handler, what, attempt)``: answer the request itself and return True, or False.
``what`` is a blob's digest, ``manifests/<tag or digest>`` for a manifest, ``ping`` for
``GET /v2/``."""


class FakeSource:
    def __init__(self, image: Image, fault: Fault) -> None:
        self.image = image
        self.fault = fault
        self.attempts: dict[str, int] = {}
        blobs = {b.digest: b.data for b in image.blobs}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def send_body(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                path = self.path
                if path == "/v2/":
                    attempt = outer.attempts.get("ping", 0) + 1
                    outer.attempts["ping"] = attempt
                    if not outer.fault(self, "ping", attempt):
                        self.send_body(200, b"{}", "application/json")
                elif "/manifests/" in path:
                    key = "manifests/" + path.rsplit("/", 1)[1]
                    attempt = outer.attempts.get(key, 0) + 1
                    outer.attempts[key] = attempt
                    if not outer.fault(self, key, attempt):
                        self.send_body(200, image.manifest, image.media_type)
                elif "/blobs/" in path:
                    digest = path.rsplit("/", 1)[1]
                    attempt = outer.attempts.get(digest, 0) + 1
                    outer.attempts[digest] = attempt
                    if not outer.fault(self, digest, attempt):
                        self.send_body(200, blobs[digest], "application/octet-stream")
                else:
                    self.send_body(404, b"{}", "application/json")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeSource:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def truncate_once(digest: str, data: bytes) -> Fault:
    """A fault that cuts the first response for ``digest`` off halfway, then behaves."""

    def fault(handler: BaseHTTPRequestHandler, asked: str, attempt: int) -> bool:
        if asked != digest or attempt > 1:
            return False
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data[: len(data) // 2])
        handler.wfile.flush()
        handler.close_connection = True
        return True

    return fault


def drop_once(what: str) -> Fault:
    """A fault that closes the connection on the first request for ``what`` without a reply."""

    def fault(handler: BaseHTTPRequestHandler, asked: str, attempt: int) -> bool:
        if asked != what or attempt > 1:
            return False
        handler.close_connection = True
        return True

    return fault
