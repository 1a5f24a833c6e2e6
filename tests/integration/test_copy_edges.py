"""Source registries misbehaving in ways the real one won't on demand: a small server per case.

Each case is a loopback HTTP server that serves one image like a registry would, except for
the one fault under test; the destination is the real registry, checked with skopeo.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import imgmirror
from imgmirror import ClientOptions, RetryPolicy
from tests.support.images import Image, make_image
from tests.support.registry import Registry
from tests.support.tools import SkopeoError, skopeo_digest, skopeo_inspect_raw

pytestmark = [pytest.mark.registry, pytest.mark.skopeo]

Fault = Callable[[BaseHTTPRequestHandler, str, int], bool]
"""``fault(handler, digest, attempt)``: answer the request itself and return True, or False."""


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
                    self.send_body(200, b"{}", "application/json")
                elif "/manifests/" in path:
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


@pytest.fixture
def image() -> Image:
    return make_image(marker="edges")


FAST_RETRY = ClientOptions(retry=RetryPolicy(attempts=3, backoff=0.01))


def test_truncated_blob_is_fetched_again(image: Image, anon_registry: Registry):
    layer = image.layers[-1]

    def truncate_once(handler: BaseHTTPRequestHandler, digest: str, attempt: int) -> bool:
        if digest != layer.digest or attempt > 1:
            return False
        handler.send_response(200)
        handler.send_header("Content-Length", str(layer.size))
        handler.end_headers()
        handler.wfile.write(layer.data[: layer.size // 2])
        handler.wfile.flush()
        handler.close_connection = True
        return True

    with FakeSource(image, truncate_once) as source:
        result = imgmirror.copy(
            f"{source.host}/app:1", anon_registry.ref("app", "1"), options=FAST_RETRY
        )
        assert source.attempts[layer.digest] == 2

    assert result.digest == image.digest
    assert skopeo_digest(anon_registry.ref("app", "1"), anon_registry) == image.digest


def test_blob_with_wrong_bytes_is_refused_and_nothing_tagged(image: Image, anon_registry):
    layer = image.layers[0]

    def lie(handler: BaseHTTPRequestHandler, digest: str, attempt: int) -> bool:
        if digest != layer.digest:
            return False
        body = bytes(reversed(layer.data))
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        return True

    with FakeSource(image, lie) as source, pytest.raises(imgmirror.VerificationError):
        imgmirror.copy(f"{source.host}/app:1", anon_registry.ref("app", "1"), options=FAST_RETRY)

    with pytest.raises(SkopeoError):
        skopeo_inspect_raw(anon_registry.ref("app", "1"), anon_registry)


def test_rate_limited_blob_waits_and_succeeds(image: Image, anon_registry: Registry):
    layer = image.layers[0]

    def limit_once(handler: BaseHTTPRequestHandler, digest: str, attempt: int) -> bool:
        if digest != layer.digest or attempt > 1:
            return False
        body = b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}'
        handler.send_response(429)
        handler.send_header("Retry-After", "1")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        return True

    with FakeSource(image, limit_once) as source:
        result = imgmirror.copy(f"{source.host}/app:1", anon_registry.ref("app", "1"))
        assert source.attempts[layer.digest] == 2

    assert result.digest == image.digest
