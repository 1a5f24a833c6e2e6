"""Transport hardening (issue 8): no cleartext credentials, bounded replies, registry error
bodies shown, stalls detected, bad trust files reported in one line.

The real registry where it can show the behaviour; a tiny loopback handler where it cannot.
"""

from __future__ import annotations

import base64
import json
import os
import time
from typing import ClassVar

import attrs
import httpx
import pytest

from imgmirror.auth.credentials import Credential
from imgmirror.errors import (
    InsecureLocation,
    NetworkError,
    RegistryError,
    ReplyTooLarge,
)
from imgmirror.model.digest import Digest
from imgmirror.model.manifest import Descriptor
from imgmirror.transport.client import RegistryClient
from imgmirror.transport.options import ClientOptions
from imgmirror.transport.retry import RetryPolicy
from tests.support.certs import TestPKI
from tests.support.handlers import Quiet, serving, silent_server
from tests.support.images import make_image
from tests.support.registry import Registry
from tests.support.seed import seed
from tests.support.tools import run_cli

pytestmark = [pytest.mark.registry]

NO_RETRY = RetryPolicy(attempts=1)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
BASIC = "Basic " + base64.b64encode(b"alice:secret").decode()


def _layer(data: bytes) -> Descriptor:
    return Descriptor(
        media_type="application/vnd.oci.image.layer.v1.tar+gzip",
        digest=Digest.of(data),
        size=len(data),
    )


# -- 1. never Authorization over plain HTTP after HTTPS ----------------------------------


class _Downgrading(Quiet):
    """An HTTPS registry (Basic auth) whose upload and blob locations say http://itself."""

    seen_plain: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        if self.headers.get("Authorization") != BASIC:
            self.reply(401, b"{}", {"WWW-Authenticate": 'Basic realm="r"'})
        elif self.path == "/v2/":
            self.reply(200, b"{}")
        else:
            host = self.headers["Host"]
            self.reply(307, headers={"Location": f"http://{host}/storage/blob"})

    def do_POST(self) -> None:
        self.drain()
        if self.headers.get("Authorization") != BASIC:
            self.reply(401, b"{}", {"WWW-Authenticate": 'Basic realm="r"'})
            return
        host = self.headers["Host"]
        self.reply(202, headers={"Location": f"http://{host}/v2/app/blobs/uploads/u1"})


def test_https_registry_cannot_downgrade_uploads_or_redirects_to_http(test_pki: TestPKI):
    options = ClientOptions(ca_file=str(test_pki.ca_cert), retry=NO_RETRY)
    with (
        serving(_Downgrading, cert=(test_pki.server_cert, test_pki.server_key)) as host,
        RegistryClient(host, credential=Credential("alice", "secret"), options=options) as client,
    ):
        with pytest.raises(InsecureLocation) as upload:
            client.start_upload("app")
        with pytest.raises(InsecureLocation) as redirect, client.open_blob("app", _layer(b"x")):
            pass

    assert client.base_url.startswith("https://")
    for caught in (upload, redirect):
        line = str(caught.value)
        assert "plain HTTP" in line
        assert "\n" not in line
        assert "u1" in line or "storage" in line


def test_authorization_goes_to_the_own_host_and_scheme_only():
    client = RegistryClient("registry.test", options=ClientOptions())
    client._base = "https://registry.test"
    assert client._may_authorize("https://registry.test/v2/x")
    assert not client._may_authorize("http://registry.test/v2/x")
    assert not client._may_authorize("https://storage.test/v2/x")


@pytest.mark.parametrize("location", ["http://registry.test/up", "http://registry.test:8080/up"])
def test_a_plain_http_location_for_the_own_host_is_refused_on_any_port(location: str):
    client = RegistryClient("registry.test", options=ClientOptions())
    client._base = "https://registry.test"
    url = "https://registry.test/v2/app/blobs/uploads/"
    reply = httpx.Response(202, request=httpx.Request("POST", url))
    with pytest.raises(InsecureLocation):
        client.location(url, location, reply)
    assert client.location(url, "https://registry.test/up", reply) == "https://registry.test/up"
    assert client.location(url, "http://storage.test/b", reply) == "http://storage.test/b"


# -- 2. every body capped, never truncated; registry errors shown --------------------------


def _big_manifest(size: int) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "size": 2,
            "digest": str(Digest.of(b"{}")),
        },
        "layers": [],
        "annotations": {"pad": ""},
    }
    base = len(json.dumps(doc, separators=(",", ":")))
    doc["annotations"] = {"pad": "x" * (size - base)}
    raw = json.dumps(doc, separators=(",", ":")).encode()
    assert len(raw) == size
    return raw


@pytest.mark.parametrize("size", [1000, 1001])
def test_manifest_over_the_cap_fails_and_is_never_truncated(anon_registry: Registry, size: int):
    with RegistryClient(anon_registry.host) as client:
        config = b"{}"
        client.upload_blob("app", _layer(config), [config])
        raw = _big_manifest(size)
        client.put_manifest("app", "big", raw, OCI_MANIFEST)

    options = ClientOptions(max_manifest_bytes=1000)
    with RegistryClient(anon_registry.host, options=options) as client:
        if size <= 1000:
            assert client.get_manifest("app", "big").raw == raw
            return
        with pytest.raises(ReplyTooLarge) as caught:
            client.get_manifest("app", "big")
    assert "larger than 1000 bytes" in str(caught.value)


class _HugeManifest(Quiet):
    """Serves a manifest one byte over containerd's 4 MiB cap (the registry refuses to store
    one that large)."""

    def do_GET(self) -> None:
        if self.path == "/v2/":
            self.reply(200, b"{}")
        else:
            self.reply(200, _big_manifest(4 * 1024 * 1024 + 1), {"Content-Type": OCI_MANIFEST})


def test_default_manifest_cap_is_4_mib():
    with (
        serving(_HugeManifest) as host,
        RegistryClient(host) as client,
        pytest.raises(ReplyTooLarge) as caught,
    ):
        client.get_manifest("app", "huge")
    assert caught.value.limit == 4 * 1024 * 1024


class _Endless(Quiet):
    """Answers the ping with an endless (chunked) body."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b"x" * 65536
        try:
            for _ in range(100_000):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:
            pass


def test_endless_ping_body_is_reply_too_large():
    with (
        serving(_Endless) as host,
        RegistryClient(host) as client,
        pytest.raises(ReplyTooLarge) as caught,
    ):
        client.ping()
    assert caught.value.limit == ClientOptions().max_reply_bytes
    assert "too large" in str(caught.value)


def test_registry_error_codes_reach_the_user(anon_registry: Registry):
    missing = Digest.of(b"no such config")
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "size": 14,
                "digest": str(missing),
            },
            "layers": [],
        }
    ).encode()
    with RegistryClient(anon_registry.host) as client:
        with pytest.raises(RegistryError) as unknown:
            client.put_manifest("app", "1", manifest, "application/vnd.oci.image.manifest.v1+json")
        wrong = attrs.evolve(_layer(b"payload"), digest=Digest.of(b"other"))
        with pytest.raises(RegistryError) as invalid:
            client.upload_blob("app", wrong, [b"payload"])

    assert unknown.value.code == "MANIFEST_BLOB_UNKNOWN"
    assert "MANIFEST_BLOB_UNKNOWN" in str(unknown.value)
    assert invalid.value.code == "DIGEST_INVALID"
    assert "DIGEST_INVALID" in str(invalid.value)


# -- 3. stalls and silent hosts -----------------------------------------------------------


class _Drip(Quiet):
    """A registry whose manifest arrives one byte at a time, 20 a second."""

    def do_GET(self) -> None:
        if self.path == "/v2/":
            self.reply(200, b"{}")
            return
        body = b"{" + b" " * 10_000 + b"}"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        self.end_headers()
        try:
            for byte in body:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass


STALL = ClientOptions(timeout=0.6, min_rate=100, retry=NO_RETRY)


def test_a_dripping_reply_is_a_stall_naming_host_and_request():
    with serving(_Drip) as host, RegistryClient(host, options=STALL) as client:
        started = time.monotonic()
        with pytest.raises(NetworkError) as caught:
            client.get_manifest("app", "1")
    assert time.monotonic() - started < 10
    line = str(caught.value)
    assert host in line
    assert "stalled" in line
    assert "GET /v2/app/manifests/1" in line


def test_a_host_that_never_answers_times_out_naming_it():
    with silent_server() as host, RegistryClient(host, options=STALL) as client:
        started = time.monotonic()
        with pytest.raises(NetworkError) as caught:
            client.ping()
    assert time.monotonic() - started < 10
    assert host in str(caught.value)
    assert "0.6 s" in str(caught.value)


class _NeverReads(Quiet):
    """Takes the request line and headers of an upload, then never reads the body."""

    def do_GET(self) -> None:
        self.reply(200, b"{}")

    def do_POST(self) -> None:
        self.reply(202, headers={"Location": "/v2/app/blobs/uploads/u1"})

    def do_PATCH(self) -> None:
        time.sleep(5)


def test_an_upload_nobody_reads_is_a_stall():
    data = b"\0" * (1 << 20)
    size = 64 * len(data)
    descriptor = Descriptor(
        media_type="application/octet-stream", digest=Digest.of(b"whatever"), size=size
    )
    with serving(_NeverReads) as host, RegistryClient(host, options=STALL) as client:
        started = time.monotonic()
        with pytest.raises(NetworkError) as caught:
            client.upload_blob("app", descriptor, (data for _ in range(64)))
    assert time.monotonic() - started < 10
    assert host in str(caught.value)
    assert "PATCH /v2/app/blobs/uploads/u1" in str(caught.value)


def test_cli_timeout_option_bounds_a_silent_registry():
    with silent_server() as host:
        started = time.monotonic()
        proc = run_cli("copy", f"{host}/app:1", f"{host}/other:1", "--timeout", "0.5")
    assert time.monotonic() - started < 60
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert host in lines[0]
    assert "Traceback" not in proc.stderr


# -- 8. bad trust files -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["missing", "not-pem"])
def test_bad_ca_file_is_one_line(tls_registry: Registry, anon_registry: Registry, tmp_path, kind):
    seed(tls_registry, "app", "1", make_image(marker="cafile"))
    ca_file = tmp_path / "ca.pem"
    if kind == "not-pem":
        ca_file.write_text("this is not a certificate\n")
    proc = run_cli(
        "copy",
        tls_registry.ref("app", "1"),
        anon_registry.ref("app", "1"),
        "--ca-file",
        str(ca_file),
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert str(ca_file) in lines[0]
    assert "PEM" in lines[0]


# -- 7. roles, not flags ------------------------------------------------------------------


def test_same_registry_copy_failing_on_push_names_the_destination_option(
    token_registry: Registry, tmp_path
):
    seed(token_registry, "src/app", "1", make_image(marker="roles"))
    hidden = ("REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "DOCKER_AUTH_CONFIG")
    env = {k: v for k, v in os.environ.items() if k not in hidden}
    env |= {"DOCKER_CONFIG": str(tmp_path), "HOME": str(tmp_path)}  # no stored credentials
    proc = run_cli(
        "copy", token_registry.ref("src/app", "1"), token_registry.ref("dst/app", "1"), env=env
    )
    assert proc.returncode == 1, proc.stderr
    assert "--dest-creds" in proc.stderr
    assert "--src-creds" not in proc.stderr
