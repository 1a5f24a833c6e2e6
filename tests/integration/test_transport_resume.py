"""Resume, not restart (issue 8): a broken download continues with Range from the last
verified byte; a broken chunked upload continues from the registry's offset. Against the real
registry through a proxy that cuts one connection once; a handler for a registry that ignores
Range."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import ClassVar

import pytest

from imgmirror.errors import NetworkError, is_transient
from imgmirror.model.digest import Digest
from imgmirror.model.manifest import Descriptor
from imgmirror.transport.client import RegistryClient
from imgmirror.transport.options import ClientOptions
from imgmirror.transport.retry import RetryPolicy
from tests.support.cutproxy import cut_proxy
from tests.support.faults import FakeSource, drop_once, truncate_once
from tests.support.handlers import Quiet, serving
from tests.support.images import make_image
from tests.support.registry import Registry

pytestmark = [pytest.mark.registry]

FAST = ClientOptions(retry=RetryPolicy(attempts=3, backoff=0.01))
SIZE = 3 * 1024 * 1024
CUT = 1_500_000


def _blob() -> tuple[bytes, Descriptor]:
    data = os.urandom(SIZE)
    descriptor = Descriptor(
        media_type="application/octet-stream", digest=Digest.of(data), size=len(data)
    )
    return data, descriptor


def _pieces(data: bytes, size: int = 256 * 1024) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_broken_download_resumes_from_the_last_verified_byte(anon_registry: Registry):
    data, descriptor = _blob()
    with RegistryClient(anon_registry.host) as direct:
        direct.upload_blob("app", descriptor, _pieces(data))

    match = str(descriptor.digest).encode()
    with (
        cut_proxy(anon_registry.host, "down", CUT, match) as proxy,
        RegistryClient(proxy.host, options=FAST) as client,
        client.open_blob("app", descriptor) as chunks,
    ):
        received = b"".join(chunks)

    assert received == data
    assert proxy.cuts == 1
    assert proxy.relayed < SIZE + 64 * 1024  # resumed: the first part was not sent again


def test_registry_ignoring_range_skips_what_was_already_verified():
    image = make_image(marker="norange")
    blob = max(image.blobs, key=lambda b: len(b.data))
    descriptor = Descriptor(
        media_type="application/octet-stream", digest=Digest.parse(blob.digest), size=len(blob.data)
    )
    with (
        FakeSource(image, truncate_once(blob.digest, blob.data)) as source,
        RegistryClient(source.host, options=FAST) as client,
        client.open_blob("app", descriptor) as chunks,
    ):
        received = b"".join(chunks)

    assert received == blob.data
    assert source.attempts[blob.digest] == 2


def test_broken_upload_the_registry_cannot_resume_is_a_transient_error(anon_registry: Registry):
    """distribution 2.8 refuses a session after a broken PATCH (BLOB_UPLOAD_INVALID): the
    upload fails with a transient error and the caller's restart succeeds."""
    data, descriptor = _blob()
    with (
        cut_proxy(anon_registry.host, "up", CUT, b"PATCH ") as proxy,
        RegistryClient(proxy.host, options=FAST) as client,
    ):
        with pytest.raises(NetworkError) as caught:
            client.upload_blob("app", descriptor, iter(_pieces(data)))
        assert is_transient(caught.value)
        client.upload_blob("app", descriptor, iter(_pieces(data)))

    assert proxy.cuts == 1
    with RegistryClient(anon_registry.host) as direct, direct.open_blob("app", descriptor) as got:
        assert b"".join(got) == data


class _ResumableUploads(Quiet):
    """A registry's upload endpoints that keep what a broken PATCH delivered and say how much
    (``GET`` on the session: 204 with ``Range: 0-N``), as the distribution spec describes.
    The first PATCH is cut off after half its body."""

    stored = bytearray()
    patches: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        if self.path == "/v2/":
            self.reply(200, b"{}")
        else:
            end = max(len(self.stored) - 1, 0)
            self.reply(204, headers={"Range": f"0-{end}", "Location": "/v2/app/blobs/uploads/s"})

    def do_POST(self) -> None:
        self.drain()
        self.reply(202, headers={"Location": "/v2/app/blobs/uploads/s"})

    def do_PATCH(self) -> None:
        self.patches.append(self.headers.get("Content-Range", ""))
        length = int(self.headers["Content-Length"])
        if len(self.patches) == 1:
            self.stored += self.rfile.read(length // 2)
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.stored += self.rfile.read(length)
        self.reply(202, headers={"Location": "/v2/app/blobs/uploads/s", "Range": "0-1"})

    def do_PUT(self) -> None:
        self.drain()
        digest = self.path.split("digest=", 1)[1].replace("%3A", ":")
        ok = digest == str(Digest.of(bytes(self.stored)))
        self.reply(201 if ok else 400)


def test_broken_chunked_upload_resumes_at_the_registry_offset():
    data, descriptor = _blob()
    with serving(_ResumableUploads) as host, RegistryClient(host, options=FAST) as client:
        client.upload_blob("app", descriptor, iter(_pieces(data)))

    assert bytes(_ResumableUploads.stored) == data
    first, second = _ResumableUploads.patches
    assert first == ""
    assert second.startswith(f"{len(data) // 2}-")


def test_a_source_that_breaks_is_not_mistaken_for_a_broken_upload(anon_registry: Registry):
    data, descriptor = _blob()
    boom = NetworkError("the source registry broke off")

    def source() -> Iterator[bytes]:
        yield data[: 2 * 1024 * 1024]
        raise boom

    with (
        RegistryClient(anon_registry.host, options=FAST) as client,
        pytest.raises(NetworkError) as caught,
    ):
        client.upload_blob("app", descriptor, source())
    assert caught.value is boom


def test_closing_put_whose_reply_is_lost_is_not_taken_for_a_failure(anon_registry: Registry):
    """The registry commits the blob but the reply to the closing PUT is cut off: the PUT sent
    again finds no session (404 BLOB_UPLOAD_UNKNOWN), and the blob, being there, counts as
    uploaded (found by the fault soak: copy and push failed with that 404)."""
    data, descriptor = _blob()
    with (
        cut_proxy(anon_registry.host, "down", 12, b"201 Created") as proxy,
        RegistryClient(proxy.host, options=FAST) as client,
    ):
        client.upload_blob("app", descriptor, iter(_pieces(data)))

    assert proxy.cuts == 1
    with RegistryClient(anon_registry.host) as direct, direct.open_blob("app", descriptor) as got:
        assert b"".join(got) == data


def test_manifest_reply_cut_off_is_fetched_again():
    """A manifest GET whose body breaks off is sent again under the retry policy (found by the
    fault soak: copy failed with 'peer closed connection without sending complete body')."""
    image = make_image(marker="cutmanifest")
    with (
        FakeSource(image, truncate_once("manifests/v1", image.manifest)) as source,
        RegistryClient(source.host, options=FAST) as client,
    ):
        manifest = client.get_manifest("app", "v1")

    assert manifest.raw == image.manifest
    assert source.attempts["manifests/v1"] == 2


def test_loopback_ping_dropped_once_is_probed_again_over_http():
    """A plain-HTTP loopback registry whose first ``GET /v2/`` breaks off: the TLS probe that
    follows finds a plain-HTTP server, so the HTTP probe is sent again (found by the fault soak:
    copy failed with 'WRONG_VERSION_NUMBER')."""
    image = make_image(marker="dropping")
    with (
        FakeSource(image, drop_once("ping")) as source,
        RegistryClient(source.host, options=FAST) as client,
    ):
        manifest = client.get_manifest("app", "v1")

    assert manifest.raw == image.manifest
    assert source.attempts["ping"] == 2
    assert client.base_url.startswith("http://")
