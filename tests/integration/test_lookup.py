"""``ls``, ``digest``, ``inspect`` and ``catalog`` against the real registry (skopeo as oracle)."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

import imgmirror
from tests.support.images import docker_archive, make_image, make_index
from tests.support.registry import Registry
from tests.support.seed import RegistryClient, seed
from tests.support.tools import one_line_error, run_cli, skopeo, skopeo_inspect_raw

pytestmark = [pytest.mark.registry]


def _last_json(proc: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


class _TagPages(BaseHTTPRequestHandler):
    """Serves 7 tags 3 per page with ``Link`` headers, as distribution v3 and Docker Hub do
    (the distribution 2.8 registry of the fixtures ignores ``n`` for tags, so it cannot)."""

    protocol_version = "HTTP/1.1"
    tags: ClassVar[list[str]] = [f"t{i}" for i in range(7)]
    requests: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        type(self).requests.append(self.path)
        body, headers = b"{}", {"Content-Type": "application/json"}
        if url.path == "/v2/app/tags/list":
            query = parse_qs(url.query)
            start = int(query.get("last", ["-1"])[0].lstrip("t") or -1) + 1
            size = int(query["n"][0])
            page = self.tags[start : start + size]
            body = json.dumps({"name": "app", "tags": page}).encode()
            if start + size < len(self.tags):
                headers["Link"] = f'</v2/app/tags/list?n={size}&last={page[-1]}>; rel="next"'
        self.send_response(200)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def tag_pages() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TagPages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _TagPages.requests = []
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_ls_follows_link_pagination(tag_pages: str):
    proc = run_cli("ls", f"{tag_pages}/app", "--page-size", "3")

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == _TagPages.tags
    pages = [r for r in _TagPages.requests if r.startswith("/v2/app/tags/list")]
    assert len(pages) == 3
    assert _last_json(run_cli("ls", f"{tag_pages}/app", "--json"))["tags"] == _TagPages.tags
    assert imgmirror.list_tags(f"{tag_pages}/app", page_size=2) == _TagPages.tags


@pytest.mark.skopeo
def test_ls_against_the_registry(anon_registry: Registry):
    image = make_image(marker="ls")
    seed(anon_registry, "app", "t0", image)
    tags = [f"t{i}" for i in range(4)]
    with RegistryClient(anon_registry, None) as client:
        for tag in tags[1:]:
            client.push_manifest("app", tag, image.manifest, image.media_type)

    proc = run_cli("ls", f"{anon_registry.host}/app")

    assert proc.returncode == 0, proc.stderr
    oracle = json.loads(
        skopeo("list-tags", "--tls-verify=false", f"docker://{anon_registry.host}/app")
    )
    assert sorted(proc.stdout.split()) == sorted(oracle["Tags"]) == tags
    missing = run_cli("ls", f"{anon_registry.host}/nothing")
    assert "nothing" in one_line_error(missing)


def test_catalog_follows_link_pagination(anon_registry: Registry):
    image = make_image(marker="cat")
    repos = [f"r{i}/app" for i in range(5)]
    for repo in repos:
        seed(anon_registry, repo, "1", image)
    assert "next" in httpx.get(f"{anon_registry.url}/v2/_catalog?n=2").links

    proc = run_cli("catalog", anon_registry.host, "--page-size", "2")

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == repos
    assert imgmirror.list_repositories(anon_registry.host, page_size=2) == repos


def test_digest_is_one_head_and_missing_exits_1(anon_registry: Registry):
    image = make_image(marker="digest")
    seed(anon_registry, "app", "1", image)
    before = anon_registry.log_path.read_text()

    proc = run_cli("digest", anon_registry.ref("app", "1"))

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == image.digest
    requests = anon_registry.log_path.read_text()[len(before) :]
    assert '"HEAD /v2/app/manifests/1 ' in requests
    assert '"GET /v2/app/manifests/' not in requests
    missing = run_cli("digest", anon_registry.ref("app", "nope"))
    assert "not found" in one_line_error(missing)


def test_inspect_index_platform_raw_and_config(anon_registry: Registry):
    amd64 = make_image(platform="linux/amd64", marker="i", entrypoint=["/pause"], cmd=None)
    arm64 = make_image(platform="linux/arm64", marker="i", entrypoint=["/pause"], cmd=None)
    index = make_index([amd64, arm64], fmt="docker")
    digest = seed(anon_registry, "pause", "3.9", index)
    ref = anon_registry.ref("pause", "3.9")

    top = _last_json(run_cli("inspect", ref, "--json"))
    assert top["digest"] == digest
    assert top["size"] == len(index.manifest)
    assert top["media_type"] == index.media_type
    platforms = {m["platform"]: m["digest"] for m in top["manifests"]}  # type: ignore[attr-defined]
    assert platforms == {"linux/amd64": amd64.digest, "linux/arm64": arm64.digest}

    text = run_cli("inspect", ref, "--platform", "linux/arm64")
    assert text.returncode == 0, text.stderr
    assert arm64.digest in text.stdout
    assert 'entrypoint  ["/pause"]' in text.stdout
    assert "created     2024-01-01T00:00:00Z" in text.stdout
    for layer in arm64.layers:
        assert layer.digest in text.stdout
    child = _last_json(run_cli("inspect", ref, "--platform", "linux/arm64", "--json"))
    assert [(x["digest"], x["size"]) for x in child["layers"]] == [  # type: ignore[attr-defined]
        (layer.digest, layer.size) for layer in arm64.layers
    ]
    assert child["platform"] == "linux/arm64"

    raw = subprocess.run(
        [*_cli(), "inspect", ref, "--raw"], capture_output=True, check=True, timeout=60
    ).stdout
    assert raw == index.manifest
    assert raw == skopeo_inspect_raw(ref, anon_registry)
    config = subprocess.run(
        [*_cli(), "inspect", ref, "--platform", "linux/arm64", "--config"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    assert config == arm64.config.data
    no_config = run_cli("inspect", ref, "--config")
    assert "has no image config" in no_config.stderr
    assert no_config.returncode == 1


def _cli() -> list[str]:
    import sys

    return [sys.executable, "-m", "imgmirror"]


def test_inspect_unknown_media_type_shows_what_it_can(anon_registry: Registry):
    """An artifact manifest whose top-level type imgmirror does not know as an image."""
    image = make_image(marker="artifact")
    seed(anon_registry, "art", "1", image)
    doc = json.loads(image.manifest)
    doc["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
    doc["config"]["mediaType"] = "application/vnd.example.thing.config+json"
    odd = json.dumps(doc).encode()
    with RegistryClient(anon_registry, None) as client:
        client.push_blob("art", image.config)
        client.push_manifest("art", "odd", odd, "application/vnd.oci.image.manifest.v1+json")
    proc = run_cli("inspect", anon_registry.ref("art", "odd"), "--json")
    result = _last_json(proc)
    assert result["config"]["media_type"] == "application/vnd.example.thing.config+json"  # type: ignore[index]
    assert len(result["layers"]) == len(image.layers)  # type: ignore[arg-type]


def test_catalog_and_credentials_tls_like_copy(basic_registry: Registry, tmp_path: Path):
    image = make_image(marker="catalog")
    seed(basic_registry, "one/app", "1", image)
    seed(basic_registry, "two/app", "1", image)
    tls = ["--ca-file", str(basic_registry.ca_file)]

    proc = run_cli("catalog", basic_registry.host, "--creds", "alice:secret", *tls)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["one/app", "two/app"]
    refused = run_cli("catalog", basic_registry.host, *tls, env=_no_creds_env(tmp_path))
    assert "--creds" in one_line_error(refused)
    via_stdin = run_cli(
        "ls", f"{basic_registry.host}/one/app", "--creds", "alice:-", *tls, stdin="secret\n"
    )
    assert via_stdin.stdout.split() == ["1"], via_stdin.stderr
    untrusted = run_cli("digest", basic_registry.ref("one/app", "1"), "--creds", "alice:secret")
    assert "certificate" in one_line_error(untrusted).lower()


def _no_creds_env(tmp_path: Path) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("IMGMIRROR_")}
    env.update(HOME=str(tmp_path), DOCKER_CONFIG=str(tmp_path), XDG_RUNTIME_DIR=str(tmp_path))
    env.pop("REGISTRY_AUTH_FILE", None)
    return env


def test_token_registry_lookups(token_registry: Registry):
    image = make_image(marker="token")
    seed(token_registry, "app", "1", image)
    assert run_cli("digest", token_registry.ref("app", "1")).stdout.strip() == image.digest
    assert run_cli("ls", f"{token_registry.host}/app").stdout.split() == ["1"]


def test_archive_digest_and_inspect(tmp_path: Path):
    first, second = make_image(marker="a1"), make_image(marker="a2", entrypoint=["/x"])
    bundle = tmp_path / "bundle.tar"
    bundle.write_bytes(
        docker_archive([(first, ["reg.corp/a:1"]), (second, ["reg.corp/b:2", "reg.corp/b:3"])])
    )
    proc = run_cli("inspect", str(bundle))
    assert proc.returncode == 0, proc.stderr
    assert "2 images" in proc.stdout
    assert "reg.corp/b:2, reg.corp/b:3" in proc.stdout
    assert 'entrypoint  ["/x"]' in proc.stdout
    digests = run_cli("digest", str(bundle))
    lines = digests.stdout.strip().splitlines()
    assert lines == [
        f"{first.config.digest} reg.corp/a:1",
        f"{second.config.digest} reg.corp/b:2, reg.corp/b:3",
    ]
    missing = run_cli("inspect", str(tmp_path / "nope.tar"))
    assert "nope.tar" in one_line_error(missing)


def test_archive_from_save_keeps_the_registry_digest(anon_registry: Registry, tmp_path: Path):
    """A pre-loading job checks the bundle it is about to ship: names and registry digests."""
    image = make_image(marker="saved")
    seed(anon_registry, "k8s/pause", "3.9", image)
    bundle = tmp_path / "node-images.tar"
    imgmirror.save([anon_registry.ref("k8s/pause", "3.9")], str(bundle), platforms="linux/amd64")

    digests = run_cli("digest", str(bundle))
    assert digests.stdout.split() == [image.digest, anon_registry.ref("k8s/pause", "3.9")]
    shown = _last_json(run_cli("inspect", str(bundle), "--json"))
    images = shown["images"]
    assert isinstance(images, list)
    assert len(images) == 1
    only = images[0]
    assert only["digest"] == image.digest
    assert [x["digest"] for x in only["layers"]] == [layer.digest for layer in image.layers]


_SCHEMA1 = json.dumps(
    {
        "schemaVersion": 1,
        "name": "old",
        "tag": "1",
        "architecture": "amd64",
        "fsLayers": [{"blobSum": "sha256:" + "a" * 64}],
        "history": [{"v1Compatibility": "{}"}],
        "signatures": [],
    },
    indent=3,
).encode()


class _Schema1(BaseHTTPRequestHandler):
    """Serves a signed schema 1 manifest, which the fixtures' registry cannot be made to."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = _SCHEMA1 if self.path.startswith("/v2/old/manifests/") else b"{}"
        kind = "application/vnd.docker.distribution.manifest.v1+prettyjws"
        self.send_response(200)
        self.send_header("Content-Type", kind if body is _SCHEMA1 else "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_inspect_schema1_shows_what_it_can():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Schema1)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ref = f"127.0.0.1:{server.server_address[1]}/old:1"
    try:
        proc = run_cli("inspect", ref)
        raw = subprocess.run(
            [*_cli(), "inspect", ref, "--raw"], capture_output=True, check=True, timeout=60
        ).stdout
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode == 0, proc.stderr
    assert "manifest.v1+prettyjws" in proc.stdout
    assert "sha256:" + "a" * 64 in proc.stdout
    assert "platform    linux/amd64" in proc.stdout
    assert "could not read: could not parse the manifest: Docker schema 1" in proc.stdout
    assert raw == _SCHEMA1
