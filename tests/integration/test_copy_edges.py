"""Source registries misbehaving in ways the real one won't on demand: a small server per case.

Each case is a :class:`~tests.support.faults.FakeSource` serving one image with the one fault
under test; the destination is the real registry, checked with skopeo.
"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler

import pytest

import imgmirror
from imgmirror import ClientOptions, RetryPolicy
from tests.support.faults import FakeSource, truncate_once
from tests.support.images import Image, make_image
from tests.support.registry import Registry
from tests.support.tools import SkopeoError, skopeo_digest, skopeo_inspect_raw

pytestmark = [pytest.mark.registry, pytest.mark.skopeo]


@pytest.fixture
def image() -> Image:
    return make_image(marker="edges")


FAST_RETRY = ClientOptions(retry=RetryPolicy(attempts=3, backoff=0.01))


def test_truncated_blob_is_fetched_again(image: Image, anon_registry: Registry):
    layer = image.layers[-1]

    with FakeSource(image, truncate_once(layer.digest, layer.data)) as source:
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
