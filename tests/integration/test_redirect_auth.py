"""Credentials never follow a blob redirect to another host (object storage, CDN).

A loopback "registry" that wants Basic auth answers every blob GET with a 307 to a second
loopback server (another port, so another host for the check), which records any
``Authorization`` header and, like S3 with a presigned URL, refuses requests that carry one.
The copy must succeed, with the blobs verified, and the storage server must see no credentials.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest

import imgmirror
from imgmirror.auth.challenge import validate_realm
from imgmirror.errors import CredentialsError
from tests.support.handlers import Quiet
from tests.support.images import Image, make_image
from tests.support.registry import Registry
from tests.support.tools import skopeo_digest

pytestmark = [pytest.mark.registry, pytest.mark.skopeo]

USER, PASSWORD = "alice", "Redirect-Secret-123"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


class Storage:
    """The object store: serves blobs by digest, records Authorization headers."""

    def __init__(self, image: Image) -> None:
        self.blobs = {b.digest: b.data for b in image.blobs}
        self.authorizations: list[str] = []
        self.served: list[str] = []
        storage = self

        class Handler(Quiet):
            def do_GET(self) -> None:
                if "Authorization" in self.headers:
                    storage.authorizations.append(self.headers["Authorization"])
                    self.reply(400, b"Only one auth mechanism allowed")
                    return
                digest = self.path.split("?", 1)[0].rsplit("/", 1)[-1]
                data = storage.blobs.get(digest)
                if data is None:
                    self.reply(404)
                    return
                storage.served.append(digest)
                self.reply(200, data, {"Content-Type": "application/octet-stream"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


class FakeRegistry:
    """Basic-auth registry whose blob GETs redirect to :class:`Storage`."""

    def __init__(self, image: Image, storage: Storage) -> None:
        self.requests_without_auth = 0
        registry = self

        class Handler(Quiet):
            def _authorized(self) -> bool:
                if self.headers.get("Authorization") == BASIC:
                    return True
                registry.requests_without_auth += 1
                self.reply(401, b"{}", {"WWW-Authenticate": 'Basic realm="fake"'})
                return False

            def do_GET(self) -> None:
                if not self._authorized():
                    return
                path = self.path.split("?", 1)[0]
                if path == "/v2/":
                    self.reply(200, b"{}")
                elif path in ("/v2/app/manifests/1", f"/v2/app/manifests/{image.digest}"):
                    self.reply(
                        200,
                        image.manifest,
                        {"Content-Type": image.media_type, "Docker-Content-Digest": image.digest},
                    )
                elif path.startswith("/v2/app/blobs/"):
                    digest = path.rsplit("/", 1)[-1]
                    location = f"{storage.url}/bucket/{digest}?X-Amz-Signature=abc"
                    self.reply(307, b"", {"Location": location})
                else:
                    self.reply(404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}')

            do_HEAD = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"


def _serve(*servers: ThreadingHTTPServer) -> list[threading.Thread]:
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    return threads


@pytest.fixture
def redirecting() -> Iterator[tuple[FakeRegistry, Storage, Image]]:
    image = make_image(marker="redirect")
    storage = Storage(image)
    registry = FakeRegistry(image, storage)
    threads = _serve(storage.server, registry.server)
    try:
        yield registry, storage, image
    finally:
        for server in (registry.server, storage.server):
            server.shutdown()
            server.server_close()
        for thread in threads:
            thread.join(timeout=5)


def test_blob_redirect_carries_no_credentials(redirecting, anon_registry: Registry):
    fake, storage, image = redirecting

    result = imgmirror.copy(
        f"{fake.host}/app:1", anon_registry.ref("mirror/app", "1"), src_creds=(USER, PASSWORD)
    )

    assert result.digest == image.digest
    assert storage.authorizations == []
    assert sorted(storage.served) == sorted(b.digest for b in image.blobs)
    assert skopeo_digest(anon_registry.ref("mirror/app", "1"), anon_registry) == image.digest


@pytest.mark.parametrize(
    ("realm", "registry"),
    [
        ("http://auth.example.com/token", "registry.example.com"),
        ("http://127.0.0.1:5001/token", "registry.example.com"),
        ("https://127.0.0.1:5001/token", "registry.example.com"),
        ("ftp://auth.example.com/token", "registry.example.com"),
    ],
)
def test_token_realm_must_be_https(realm: str, registry: str) -> None:
    with pytest.raises(CredentialsError):
        validate_realm(realm, registry)


@pytest.mark.parametrize(
    ("realm", "registry"),
    [
        ("https://auth.example.com/token", "registry.example.com"),
        ("http://127.0.0.1:5001/token", "127.0.0.1:5000"),
    ],
)
def test_token_realm_allowed(realm: str, registry: str) -> None:
    validate_realm(realm, registry)
