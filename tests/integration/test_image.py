"""The job's image: the Containerfile built with buildah on a Debian base made here, run with
podman, used as docs/sync.md's CronJob uses it, and mirrored and signed like any other image.

The base and the image are built once per session (under a minute, most of it mmdebstrap,
whose packages are cached across runs; see tests/support/containers.py)."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imgmirror import __version__
from tests.support.containers import BASE_TAG, Store, build_context, build_image, debian_base
from tests.support.images import make_image
from tests.support.registry import Registry, RegistryFactory
from tests.support.seed import RegistryClient as Seeder
from tests.support.signing import cosign_signature, new_key, verify_signature
from tests.support.tools import require_tool, run_cli, skopeo_digest

pytestmark = [pytest.mark.registry, pytest.mark.skopeo, pytest.mark.image]

TAG = f"localhost/imgmirror:{__version__}"
ENTRYPOINT = ["/opt/imgmirror/bin/imgmirror"]
UID = 65532


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    require_tool("podman")
    require_tool("buildah")
    built = Store.at(tmp_path_factory.mktemp("containers"))
    try:
        yield built
    finally:
        built.reset()


@pytest.fixture(scope="session")
def image(store: Store, tmp_path_factory: pytest.TempPathFactory) -> str:
    base = debian_base(store, tmp_path_factory.mktemp("base"))
    context = build_context(tmp_path_factory.mktemp("context"))
    return build_image(store, context, base, TAG, __version__)


def inspect(store: Store, name: str) -> dict[str, Any]:
    (found,) = json.loads(store.podman("image", "inspect", name))
    return dict(found)


def test_the_image_is_small_non_root_with_imgmirror_as_entrypoint(store, image):
    built, base = inspect(store, image), inspect(store, BASE_TAG)
    config = built["Config"]
    assert config["User"] == f"{UID}:{UID}"
    assert config["Entrypoint"] == ENTRYPOINT
    assert config["Labels"]["org.opencontainers.image.version"] == __version__
    layers = built["RootFS"]["Layers"]
    assert layers[: len(base["RootFS"]["Layers"])] == base["RootFS"]["Layers"]
    # the virtualenv (httpx, cryptography, zstandard, RE2, rich and pygments through typer...)
    # and a user: about 70 MiB on the Debian base
    assert int(built["Size"]) - int(base["Size"]) < 96 * 1024 * 1024
    probe = "import importlib.util as u; print([u.find_spec(m) for m in ('pip', 'setuptools')])"
    python = ("--entrypoint", "/opt/imgmirror/bin/python3")
    assert store.run(image, "-c", probe, extra=python).strip() == "[None, None]"  # no installer


def test_the_image_runs_offline_as_its_own_user(store, image):
    assert store.run(image, "--version").strip() == f"imgmirror {__version__}"
    assert store.run(image, "-u", extra=("--entrypoint", "id")).strip() == str(UID)
    helped = store.run(image, "sync", "--help", extra=("--env", "COLUMNS=200"))
    assert "--check" in helped
    assert "--report" in helped


def seed_pause(registry: Registry) -> str:
    with Seeder(registry) as client:
        return client.push_image("pause", make_image(marker="image-job"), "3.9")


def test_the_image_runs_the_sync_job(store, image, registry_factory: RegistryFactory, tmp_path):
    """What the CronJob does: the sync file mounted read-only, the report written to a
    volume, the pod's process the image's own user."""
    src, dst = registry_factory(name="src"), registry_factory(name="dst")
    digest = seed_pause(src)
    config = tmp_path / "config"
    config.mkdir()
    (config / "mirror.yaml").write_text(
        f"defaults: {{to: {dst.host}/mirror}}\nimages:\n  - {src.host}/pause:3.9\n"
    )
    out = tmp_path / "out"
    out.mkdir(mode=0o777)
    out.chmod(0o777)  # the image's user writes the report
    volumes = ("-v", f"{config}:/etc/imgmirror:ro", "-v", f"{out}:/var/run/imgmirror")
    args = ["sync", "/etc/imgmirror/mirror.yaml", "--json",
            "--report", "/var/run/imgmirror/report.json"]  # fmt: skip

    done = store.run_status(image, *args, network="host", extra=volumes)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["copied"] == 1
    assert skopeo_digest(f"{dst.host}/mirror/pause:3.9", dst) == digest
    report = json.loads((out / "report.json").read_text())
    assert [r["state"] for r in report["images"]] == ["copied"]
    check = store.run_status(image, *args[:2], "--check", network="host", extra=volumes)
    assert check.returncode == 0, check.stderr


def archive_digest(path: Path) -> str:
    with tarfile.open(path) as tar:
        handle = tar.extractfile("index.json")
        assert handle is not None
        (entry,) = json.load(handle)["manifests"]
    return str(entry["digest"])


def test_the_image_is_mirrored_and_signed_like_any_other(
    store, image, registry_factory: RegistryFactory, tmp_path
):
    """The built image, saved by podman, pushed with imgmirror (byte for byte), signed
    cosign-style at the first registry, then synced with its signature to the next."""
    inner, outer = registry_factory(name="tools"), registry_factory(name="mirror")
    archive = tmp_path / "imgmirror.tar"
    store.podman("save", "--format", "oci-archive", "-o", str(archive), image)
    digest = archive_digest(archive)

    pushed = run_cli("push", str(archive), "--to", f"{inner.host}/tools", "--json")

    assert pushed.returncode == 0, pushed.stderr
    name = f"{inner.host}/tools/imgmirror:{__version__}"
    assert skopeo_digest(name, inner) == digest
    key = new_key()
    signature = cosign_signature(digest, name, key)
    sig_tag = digest.replace(":", "-") + ".sig"
    with Seeder(inner) as client:
        client.push_image("tools/imgmirror", signature, sig_tag)
    sync_file = tmp_path / "tools.yaml"
    sync_file.write_text(f"defaults: {{to: {outer.host}, referrers: sig}}\nimages:\n  - {name}\n")
    synced = run_cli("sync", str(sync_file), "--json")
    assert synced.returncode == 0, synced.stderr
    assert skopeo_digest(f"{outer.host}/tools/imgmirror:{__version__}", outer) == digest
    with Seeder(outer) as client:
        raw, _ = client.get_manifest("tools/imgmirror", sig_tag)
        payload = client.get_blob("tools/imgmirror", json.loads(raw)["layers"][0]["digest"])
    claims = verify_signature(raw, payload, key.public_key())
    assert claims["critical"]["image"]["docker-manifest-digest"] == digest
