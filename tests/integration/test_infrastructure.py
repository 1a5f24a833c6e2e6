"""Checks of the test harness itself (not of imgmirror).

Each registry flavour is seeded with the independent pusher and read back with skopeo; the
token server's tokens are accepted by the real registry; the Docker engine loads and runs the
hand-made pause image; ctr imports it.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import ssl
import subprocess
import tarfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import zstandard
from benchmarks.netlab import reclaim_stale_labs

from tests.support import images
from tests.support.registry import Registry, RegistryFactory
from tests.support.seed import RegistryClient, SeedError, parse_challenge, seed
from tests.support.tokenserver import decode_jwt_claims, decode_jwt_header
from tests.support.tools import (
    SkopeoError,
    require_root,
    require_tool,
    skopeo_copy,
    skopeo_digest,
    skopeo_inspect_raw,
)

FLAVOURS = ["anon", "token", "basic", "relative", "tls", "mtls", "token-es256"]


@pytest.fixture(params=FLAVOURS)
def any_registry(request: pytest.FixtureRequest, registry_factory: RegistryFactory) -> Registry:
    flavours: dict[str, dict[str, Any]] = {
        "anon": {},
        "token": {"auth": "token"},
        "basic": {"auth": "htpasswd", "tls": True},
        "relative": {"relativeurls": True},
        "tls": {"tls": True},
        "mtls": {"tls_client_ca": True},
        "token-es256": {"auth": "token", "token_algorithm": "ES256"},
    }
    return registry_factory(name=request.param, **flavours[request.param])


ITEMS: dict[str, Callable[[], images.Image | images.Index]] = {
    "docker-image": lambda: images.make_image(marker="infra"),
    "oci-zstd-image": lambda: images.make_image(marker="infra", fmt="oci", compression="zstd"),
    "oci-uncompressed": lambda: images.make_image(marker="infra", fmt="oci", compression="none"),
    "docker-list-4": lambda: images.multiarch_docker_list(marker="infra"),
    "oci-index-attest": lambda: images.oci_index_with_attestations(marker="infra"),
}


# -- images --------------------------------------------------------------------------------


def test_images_are_deterministic():
    a, b = images.multiarch_docker_list("x"), images.multiarch_docker_list("x")
    assert a.manifest == b.manifest
    assert a.digest == b.digest
    assert [blob.digest for blob in a.blobs] == [blob.digest for blob in b.blobs]
    assert images.multiarch_docker_list("y").digest != a.digest


def test_multiarch_list_shape():
    index = images.multiarch_docker_list("shape")
    doc = index.manifest_json
    assert doc["mediaType"] == images.DOCKER_MANIFEST_LIST
    platforms = [m["platform"] for m in doc["manifests"]]
    assert platforms == [
        {"os": "linux", "architecture": "amd64"},
        {"os": "linux", "architecture": "arm64"},
        {"os": "linux", "architecture": "arm", "variant": "v7"},
        {"os": "linux", "architecture": "ppc64le"},
    ]
    for desc, image in zip(doc["manifests"], index.images, strict=True):
        assert desc["digest"] == image.digest == images.digest_of(image.manifest)
        assert desc["size"] == len(image.manifest)
        config = image.config_json
        assert config["architecture"] == desc["platform"]["architecture"]
        assert config.get("variant") == desc["platform"].get("variant")
    # every platform has its own blobs
    assert len(index.blobs) == 4 * 3


def test_oci_index_with_attestations_shape():
    index = images.oci_index_with_attestations("att")
    doc = index.manifest_json
    assert doc["mediaType"] == images.OCI_INDEX
    assert len(index.platform_images) == 2
    assert len(index.attestations) == 2
    for att, image in zip(index.attestations, index.platform_images, strict=True):
        desc = att.descriptor()
        assert desc["platform"] == {"os": "unknown", "architecture": "unknown"}
        assert desc["annotations"]["vnd.docker.reference.type"] == "attestation-manifest"
        assert desc["annotations"]["vnd.docker.reference.digest"] == image.digest
        assert att.layers[0].media_type == images.IN_TOTO
        assert json.loads(att.layers[0].data)["predicateType"] == "https://spdx.dev/Document"
    assert index.image_for("linux/arm64").platform == images.Platform("linux", "arm64")


@pytest.mark.parametrize("compression", ["gzip", "none", "zstd"])
def test_layer_diff_id_and_compression(compression):
    layer = images.make_layer(
        {"a/b/c.txt": b"hello", "bin/tool": images.Entry(b"#!", 0o755)}, compression=compression
    )
    if compression == "gzip":
        assert gzip.decompress(layer.data) == layer.uncompressed
    elif compression == "zstd":
        assert zstandard.ZstdDecompressor().decompress(layer.data) == layer.uncompressed
    else:
        assert layer.data == layer.uncompressed
    assert layer.diff_id == "sha256:" + hashlib.sha256(layer.uncompressed).hexdigest()
    with tarfile.open(fileobj=io.BytesIO(layer.uncompressed)) as tar:
        names = tar.getnames()
        assert names == ["a", "a/b", "a/b/c.txt", "bin", "bin/tool"]
        assert tar.getmember("bin/tool").mode == 0o755
        assert {m.mtime for m in tar.getmembers()} == {images.FIXED_MTIME}


def test_pause_image(pause_binary):
    image = images.pause_image(pause_binary)
    assert image.config_json["config"]["Entrypoint"] == ["/pause"]
    assert image.config_json["os"] == "linux"
    assert image.config_json["architecture"] == images.host_platform().architecture
    assert len(image.layers) == 1
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(image.layers[0].data))) as tar:
        member = tar.getmember("pause")
        assert member.mode == 0o755
        data = tar.extractfile(member)
        assert data is not None
        assert data.read(4) == b"\x7fELF"


# -- registries ---------------------------------------------------------------------------------


@pytest.mark.parametrize("item", list(ITEMS))
def test_seed_and_skopeo_read_back(any_registry, item):
    thing = ITEMS[item]()
    repo = f"infra/{item}"
    digest = seed(any_registry, repo, "v1", thing)
    assert digest == thing.digest
    assert skopeo_digest(any_registry.ref(repo, "v1"), any_registry) == thing.digest
    assert skopeo_inspect_raw(any_registry.ref(repo, thing.digest), any_registry) == thing.manifest
    with RegistryClient(any_registry) as client:
        raw, content_type = client.get_manifest(repo, "v1")
        assert raw == thing.manifest
        assert content_type == thing.media_type
        for blob in thing.blobs:
            assert client.get_blob(repo, blob.digest) == blob.data
        assert client.tags(repo) == ["v1"]


def test_registry_factory_stops_everything(tmp_path, test_pki):
    factory = RegistryFactory(tmp_path, test_pki)
    try:
        started = [factory(), factory(auth="token"), factory(auth="htpasswd", tls=True)]
        procs = [r.process for r in started]
        ports = [r.port for r in started]
        ts = started[1].token_server
        assert ts is not None
        ts_port = ts.port
    finally:
        factory.stop_all()
    for proc in procs:
        assert proc is not None
        assert proc.poll() is not None
    for port in [*ports, ts_port]:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_htpasswd_custom_users(registry_factory):
    pytest.importorskip("bcrypt")
    registry = registry_factory(auth="htpasswd", users={"bob": "hunter2", "carol": "pw"})
    for user, password in registry.users.items():
        r = httpx.get(f"{registry.url}/v2/", auth=(user, password), trust_env=False)
        assert r.status_code == 200
    assert httpx.get(f"{registry.url}/v2/", auth=("bob", "pw"), trust_env=False).status_code == 401


def test_ipv6_loopback_registry(registry_factory):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no ::1")
    registry = registry_factory(bind="::1", auth="token", tls=True)
    assert registry.host.startswith("[::1]:")
    image = images.make_image(marker="v6")
    seed(registry, "infra/v6", "v1", image)
    # skopeo 1.9's reference parser rejects "[::1]:port/..." so read back with httpx
    with RegistryClient(registry, anonymous=True) as client:
        assert client.get_manifest("infra/v6", "v1")[0] == image.manifest


def test_registry_start_is_fast(registry_factory):
    registry = registry_factory()
    # generous bound; it is ~30 ms on the dev machine
    assert registry.started_in < 5
    assert registry.running


def test_registry_failure_includes_log(registry_factory):
    with pytest.raises(RuntimeError, match="log tail"):
        registry_factory(extra_config={"storage": {"nosuchdriver": {}}})


def test_relative_registry_sends_relative_locations(relative_registry, anon_registry):
    for registry, relative in ((relative_registry, True), (anon_registry, False)):
        r = httpx.post(f"{registry.url}/v2/infra/rel/blobs/uploads/", trust_env=False)
        assert r.status_code == 202
        location = r.headers["location"]
        assert location.startswith("/v2/") is relative
        assert "_state=" in location
        httpx.delete(r.url.join(location), trust_env=False)


def test_basic_registry_requires_credentials(basic_registry):
    assert basic_registry.tls
    assert basic_registry.default_creds == ("alice", "secret")
    r = httpx.get(f"{basic_registry.url}/v2/", verify=basic_registry.ssl_context())
    assert r.status_code == 401
    scheme, params = parse_challenge(r.headers["www-authenticate"])
    assert scheme == "basic"
    assert params["realm"] == "imgmirror-test"
    bad = httpx.get(
        f"{basic_registry.url}/v2/",
        verify=basic_registry.ssl_context(),
        auth=("alice", "wrong"),
    )
    assert bad.status_code == 401
    good = httpx.get(
        f"{basic_registry.url}/v2/", verify=basic_registry.ssl_context(), auth=("alice", "secret")
    )
    assert good.status_code == 200
    with pytest.raises(SeedError):
        seed(basic_registry, "infra/x", "v1", images.make_image(), creds=("alice", "wrong"))
    with pytest.raises(SkopeoError):
        skopeo_inspect_raw(basic_registry.ref("infra/x", "v1"), basic_registry, anonymous=True)


def test_tls_registry_is_not_trusted_without_test_ca(tls_registry):
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{tls_registry.url}/v2/", trust_env=False)
    assert (
        httpx.get(f"{tls_registry.url}/v2/", verify=tls_registry.ssl_context()).status_code == 200
    )
    # server certificate is valid for all loopback names
    for host in ("localhost", "[::1]"):
        ctx = tls_registry.ssl_context()
        name = host.strip("[]")
        with (
            socket.create_connection(("127.0.0.1", tls_registry.port), timeout=5) as sock,
            ctx.wrap_socket(sock, server_hostname=name) as tls_sock,
        ):
            assert tls_sock.version() is not None


def test_mtls_registry_requires_client_cert(mtls_registry):
    without = mtls_registry.ssl_context(client_cert=False)
    with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
        httpx.get(f"{mtls_registry.url}/v2/", verify=without).raise_for_status()
    r = httpx.get(f"{mtls_registry.url}/v2/", verify=mtls_registry.ssl_context())
    assert r.status_code == 200
    assert mtls_registry.cert_dir is not None
    assert (mtls_registry.cert_dir / "client.cert").exists()


# -- token auth -------------------------------------------------------------------------------


def test_token_registry_anonymous_pull_authenticated_push(token_registry, token_server):
    image = images.make_image(marker="token")
    repo = "infra/token"
    with RegistryClient(token_registry, anonymous=True) as anon, pytest.raises(SeedError):
        anon.push_image(repo, image, "v1")
    seed(token_registry, repo, "v1", image)
    with RegistryClient(token_registry, anonymous=True) as anon:
        raw, _ = anon.get_manifest(repo, "v1")
        assert raw == image.manifest
    assert skopeo_digest(token_registry.ref(repo, "v1"), token_registry, anonymous=True) == (
        image.digest
    )
    users = {r.username for r in token_server.issued()}
    assert users == {None, "pusher"}
    anon_grants = [r.granted for r in token_server.issued() if r.username is None]
    assert all(a.actions == ("pull",) for grants in anon_grants for a in grants)


def test_token_server_rejects_bad_credentials(token_registry, token_server):
    r = httpx.get(
        token_server.realm,
        params={"service": token_server.service, "scope": "repository:a:pull"},
        auth=("pusher", "nope"),
    )
    assert r.status_code == 401
    assert token_server.requests[-1].status == 401
    with pytest.raises(SeedError, match="401"):
        seed(token_registry, "infra/bad", "v1", images.make_image(), creds=("pusher", "nope"))


def test_token_contents(token_registry, token_server):
    r = httpx.get(
        token_server.realm,
        params=[
            ("service", token_server.service),
            ("scope", "repository:infra/a:pull,push"),
            ("scope", "repository:infra/b:pull"),
        ],
        auth=("pusher", "pushpass"),
    )
    assert r.status_code == 200
    body = r.json()
    assert body["token"] == body["access_token"]
    assert body["expires_in"] == 300
    assert body["issued_at"].endswith("Z")
    header = decode_jwt_header(body["token"])
    assert header["alg"] == "RS256"
    assert base64.b64decode(header["x5c"][0]) == token_server.signing_key.cert_der
    claims = decode_jwt_claims(body["token"])
    assert claims["iss"] == token_server.issuer
    assert claims["aud"] == token_server.service
    assert claims["sub"] == "pusher"
    assert claims["nbf"] <= claims["iat"] < claims["exp"]
    assert claims["access"] == [
        {"type": "repository", "name": "infra/a", "actions": ["pull", "push"]},
        {"type": "repository", "name": "infra/b", "actions": ["pull"]},
    ]
    # the registry accepts it for a push
    start = httpx.post(
        f"{token_registry.url}/v2/infra/a/blobs/uploads/",
        headers={"Authorization": f"Bearer {body['token']}"},
    )
    assert start.status_code == 202, start.text
    # ... but not for a repository outside the token
    other = httpx.post(
        f"{token_registry.url}/v2/infra/c/blobs/uploads/",
        headers={"Authorization": f"Bearer {body['token']}"},
    )
    assert other.status_code == 401
    _, params = parse_challenge(other.headers["www-authenticate"])
    assert params["error"] == "insufficient_scope"


def test_token_oauth_password_and_refresh(token_registry, token_server):
    form = {
        "grant_type": "password",
        "username": "pusher",
        "password": "pushpass",
        "service": token_server.service,
        "client_id": "imgmirror-tests",
        "scope": "repository:infra/o:pull,push repository:infra/p:pull",
        "access_type": "offline",
    }
    r = httpx.post(token_server.realm, data=form)
    assert r.status_code == 200, r.text
    refresh = r.json()["refresh_token"]
    assert [str(a) for a in token_server.requests[-1].granted] == [
        "repository:infra/o:pull,push",
        "repository:infra/p:pull",
    ]
    r2 = httpx.post(
        token_server.realm,
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "service": token_server.service,
            "client_id": "imgmirror-tests",
            "scope": "repository:infra/o:pull,push",
        },
    )
    assert r2.status_code == 200, r2.text
    assert "refresh_token" not in r2.json()
    token = r2.json()["access_token"]
    start = httpx.post(
        f"{token_registry.url}/v2/infra/o/blobs/uploads/",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert start.status_code == 202
    bad = httpx.post(
        token_server.realm,
        data={**form, "grant_type": "refresh_token", "refresh_token": "nope"},
    )
    assert bad.status_code == 401
    wrong_pw = httpx.post(token_server.realm, data={**form, "password": "nope"})
    assert wrong_pw.status_code == 401
    no_client = httpx.post(token_server.realm, data={**form, "client_id": ""})
    assert no_client.status_code == 400
    token_server.oauth_enabled = False
    assert httpx.post(token_server.realm, data=form).status_code == 404


def test_token_expiry_knobs(registry_factory):
    registry = registry_factory(auth="token", token_expires_in=2)
    ts = registry.token_server
    assert ts is not None
    params = {"service": ts.service, "scope": "repository:infra/e:pull"}
    body = httpx.get(ts.realm, params=params).json()
    assert body["expires_in"] == 2
    claims = decode_jwt_claims(body["token"])
    assert claims["exp"] - claims["iat"] == 2
    url = f"{registry.url}/v2/infra/e/tags/list"
    ok = httpx.get(url, headers={"Authorization": f"Bearer {body['token']}"})
    assert ok.status_code == 404  # authorized; repository simply unknown
    # distribution allows 60 s leeway on exp: exp_offset makes tokens the registry rejects
    ts.exp_offset = -120
    stale = httpx.get(ts.realm, params=params).json()["token"]
    rejected = httpx.get(url, headers={"Authorization": f"Bearer {stale}"})
    assert rejected.status_code == 401


def test_token_server_unknown_service(token_server):
    r = httpx.get(token_server.realm, params={"service": "other", "scope": "repository:a:pull"})
    assert r.status_code == 400


def test_token_registry_without_anonymous_pull(registry_factory):
    registry = registry_factory(auth="token", anonymous_pull=False)
    image = images.make_image(marker="private")
    seed(registry, "infra/private", "v1", image)
    with RegistryClient(registry, anonymous=True) as anon, pytest.raises(SeedError):
        anon.get_manifest("infra/private", "v1")
    assert skopeo_digest(registry.ref("infra/private", "v1"), registry) == image.digest


def test_skopeo_copy_between_flavours(token_registry, basic_registry):
    index = images.multiarch_docker_list("copy")
    seed(token_registry, "infra/src", "v1", index)
    skopeo_copy(
        token_registry.ref("infra/src", "v1"),
        basic_registry.ref("infra/dst", "v1"),
        src_registry=token_registry,
        dst_registry=basic_registry,
    )
    assert skopeo_digest(basic_registry.ref("infra/dst", "v1"), basic_registry) == index.digest


# -- tools --------------------------------------------------------------------------------


def test_require_tool_fails_on_ci_and_skips_locally(monkeypatch):
    missing = f"imgmirror-no-such-tool-{uuid.uuid4().hex}"
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception):
        require_tool(missing)
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        require_tool(missing)
    assert require_tool("sh").endswith("/sh")


# -- docker engine ------------------------------------------------------------------------


@pytest.fixture
def pause_tag(docker_engine):
    tag = f"imgmirror-test/pause:{uuid.uuid4().hex[:12]}"
    yield tag
    docker_engine.remove_images(tag)


def test_docker_load_and_run_pause_image(docker_engine, pause_binary, tmp_path, pause_tag):
    image = images.pause_image(pause_binary, marker=pause_tag)
    archive = tmp_path / "pause.tar"
    archive.write_bytes(images.docker_archive([(image, [pause_tag])]))
    assert docker_engine.load(archive) == [f"Loaded image: {pause_tag}"]
    image_id = docker_engine.image_ids(pause_tag)[pause_tag]
    assert image_id == image.config.digest  # docker's image ID is the config digest
    container = docker_engine.run_detached(pause_tag)
    try:
        time.sleep(0.5)
        assert docker_engine.is_running(container)
        docker_engine.docker("stop", "-t", "10", container)
        state = docker_engine.docker(
            "inspect", "-f", "{{.State.Running}} {{.State.ExitCode}}", container
        )
        assert state.stdout.split() == ["false", "0"]
    finally:
        docker_engine.remove_container(container)


def test_ctr_import(docker_engine, pause_binary, tmp_path):
    ref = f"docker.io/imgmirror-test/ctr:{uuid.uuid4().hex[:12]}"
    image = images.pause_image(pause_binary, marker=ref)
    archive = tmp_path / "pause.tar"
    archive.write_bytes(images.docker_archive([(image, [ref])]))
    try:
        docker_engine.ctr_import(archive)
        assert ref in docker_engine.ctr_images()
        info = docker_engine.ctr("images", "ls", f"name=={ref}").stdout
        assert "linux/amd64" in info or images.host_platform().architecture in info
    finally:
        docker_engine.ctr("images", "rm", ref, check=False)


def test_docker_pulls_from_loopback_registry(docker_engine, anon_registry, pause_binary):
    image = images.pause_image(pause_binary, marker="pull")
    seed(anon_registry, "infra/pause", "v1", image)
    ref = anon_registry.ref("infra/pause", "v1")
    try:
        docker_engine.docker("pull", ref)
        assert docker_engine.image_ids(ref)[ref] == image.config.digest
    finally:
        docker_engine.remove_images(ref)


def test_ssl_module_sanity(test_pki):
    ctx = ssl.create_default_context(cafile=str(test_pki.ca_cert))
    assert ctx.verify_mode == ssl.CERT_REQUIRED


def test_a_lab_left_by_a_killed_run_is_reclaimed(tmp_path: Any) -> None:
    """A run killed before its clean-up leaves its namespace, veth, hosts directory and the
    processes inside; the next run removes them (its maker is gone) instead of refusing to
    start on the address they hold, and leaves alone a lab whose maker still runs."""
    require_root("the lab clean-up (ip netns add)")
    require_tool("ip")
    gone = subprocess.Popen(["true"])
    gone.wait()
    names = ("imgm-stale", "imsth")

    def make(tag: int) -> subprocess.Popen[bytes]:
        namespace = f"imgm-stale-{tag}"
        subprocess.run(["ip", "netns", "add", namespace], check=True)
        subprocess.run(
            ["ip", "link", "add", f"imsth{tag}", "type", "veth", "peer", "name", f"imstn{tag}"],
            check=True,
        )
        Path("/etc/netns", namespace).mkdir(parents=True, exist_ok=True)
        return subprocess.Popen(["ip", "netns", "exec", namespace, "sleep", "600"])

    def namespaces() -> str:
        return subprocess.run(
            ["ip", "netns", "list"], check=False, capture_output=True, text=True
        ).stdout

    left = make(gone.pid)
    mine = make(os.getpid())
    try:
        time.sleep(0.3)
        reclaim_stale_labs(names)
        assert left.wait(timeout=5) != 0, "the process inside the stale lab was not stopped"
        assert f"imgm-stale-{gone.pid}" not in namespaces()
        assert not Path("/sys/class/net", f"imsth{gone.pid}").exists()
        assert not Path("/etc/netns", f"imgm-stale-{gone.pid}").exists()
        assert f"imgm-stale-{os.getpid()}" in namespaces(), "a live run's lab was removed"
        assert mine.poll() is None
    finally:
        for proc in (left, mine):
            proc.kill()
            proc.wait()
        for tag in (gone.pid, os.getpid()):
            subprocess.run(["ip", "link", "del", f"imsth{tag}"], check=False, capture_output=True)
            subprocess.run(
                ["ip", "netns", "del", f"imgm-stale-{tag}"], check=False, capture_output=True
            )
            shutil.rmtree(f"/etc/netns/imgm-stale-{tag}", ignore_errors=True)
