"""imgmirror push against a real registry, with archives made by docker, skopeo and imgmirror,
pulled back and run by the Docker engine; malicious archives refused, nothing tagged."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard

import imgmirror
from imgmirror.errors import ArchiveError, ImgmirrorError, VerificationError
from tests.support import images
from tests.support.docker import DockerEngine
from tests.support.registry import Registry
from tests.support.seed import RegistryClient, seed
from tests.support.tarballs import tar_bytes
from tests.support.tools import SkopeoError, run_cli, skopeo, skopeo_digest, skopeo_inspect_raw


@pytest.fixture
def docker_refs(docker_engine: DockerEngine) -> Iterator[list[str]]:
    """Image references the test puts into docker; removed at the end."""
    refs: list[str] = []
    yield refs
    docker_engine.remove_images(*refs)


def _pull_and_run(engine: DockerEngine, ref: str, refs: list[str]) -> None:
    """docker pull REF, run it (pause keeps running), clean up the container."""
    refs.append(ref)
    engine.docker("pull", ref)
    container = engine.run_detached(ref)
    try:
        time.sleep(0.5)
        assert engine.is_running(container)
    finally:
        engine.remove_container(container)


def _docker_saved_pause(
    engine: DockerEngine, registry: Registry, pause_binary: Path, tmp_path: Path, refs: list[str]
) -> tuple[Path, str, images.Image]:
    """An archive written by ``docker save`` of a pause image named docker.io/imgmirror-test/..."""
    marker = uuid.uuid4().hex[:12]
    image = images.pause_image(pause_binary, marker=marker)
    seed(registry, "seed/pause", "v1", image)
    src = registry.ref("seed/pause", "v1")
    name = f"imgmirror-test/pause:{marker}"
    refs.extend([src, name])
    engine.docker("pull", src)
    engine.docker("tag", src, name)
    archive = tmp_path / "saved.tar"
    engine.docker("save", "-o", str(archive), name)
    engine.remove_images(src, name)
    return archive, name, image


def _compress(path: Path, kind: str) -> Path:
    if kind == "none":
        return path
    data = path.read_bytes()
    if kind == "gzip":
        out = path.with_suffix(".tar.gz")
        out.write_bytes(gzip.compress(data))
    else:
        out = path.with_suffix(".tar.zst")
        out.write_bytes(zstandard.ZstdCompressor().compress(data))
    return out


@pytest.mark.parametrize("outer", ["none", "gzip", "zstd"])
def test_docker_save_archive_pushes_pulls_and_runs(
    docker_engine, anon_registry, pause_binary, tmp_path, *, docker_refs, outer
):
    archive, name, image = _docker_saved_pause(
        docker_engine, anon_registry, pause_binary, tmp_path, docker_refs
    )
    archive = _compress(archive, outer)
    result = imgmirror.push(archive, f"{anon_registry.host}/mirror")
    repo_tag = name  # imgmirror-test/pause:<marker> on Docker Hub
    dest = f"{anon_registry.host}/mirror/{repo_tag}"
    assert [i.name for i in result.images] == [dest]
    assert result.blobs_uploaded == 2  # config + the layer, gzipped on the way
    pushed = json.loads(skopeo_inspect_raw(dest, anon_registry))
    assert pushed["mediaType"] == images.DOCKER_MANIFEST
    assert pushed["config"]["digest"] == image.config.digest  # same image ID
    assert pushed["layers"][0]["mediaType"] == images.DOCKER_LAYER_GZIP
    _pull_and_run(docker_engine, dest, docker_refs)
    assert docker_engine.image_ids(dest)[dest] == image.config.digest


def test_skopeo_docker_archive_pushes_pulls_and_runs(
    docker_engine, anon_registry, pause_binary, tmp_path, docker_refs
):
    image = images.pause_image(pause_binary, marker="skopeo-archive")
    seed(anon_registry, "seed/pause", "v1", image)
    archive = tmp_path / "skopeo.tar"
    skopeo(
        "copy",
        "--src-tls-verify=false",
        f"docker://{anon_registry.ref('seed/pause', 'v1')}",
        f"docker-archive:{archive}:example.com/team/pause:v7",
    )
    dest = f"{anon_registry.host}/from-skopeo/pause:v1"
    result = imgmirror.push(archive, dest)
    assert [i.name for i in result.images] == [dest]
    _pull_and_run(docker_engine, dest, docker_refs)
    assert docker_engine.image_ids(dest)[dest] == image.config.digest
    # and under a prefix the archive's own name is kept
    result = imgmirror.push(archive, f"{anon_registry.host}/mirror")
    assert result.images[0].name == f"{anon_registry.host}/mirror/team/pause:v7"


def test_skopeo_oci_archive_keeps_its_digest(anon_registry, tmp_path):
    image = images.make_image(marker="oci-archive", fmt="oci")
    seed(anon_registry, "seed/oci", "v1", image)
    archive = tmp_path / "oci.tar"
    skopeo(
        "copy",
        "--src-tls-verify=false",
        f"docker://{anon_registry.ref('seed/oci', 'v1')}",
        f"oci-archive:{archive}:example.com/oci/thing:v1",
    )
    dest = f"{anon_registry.host}/pushed/oci:v1"
    result = imgmirror.push(archive, dest)
    assert result.layout == "oci"
    assert result.images == (imgmirror.PushedImage(dest, image.digest),)
    assert skopeo_digest(dest, anon_registry) == image.digest


@pytest.mark.parametrize("fmt", ["docker", "oci", "legacy"])
def test_save_then_push(anon_registry, tmp_path, fmt):
    index = images.multiarch_docker_list(marker=f"save-push-{fmt}")
    seed(anon_registry, "seed/multi", "v1", index)
    archive = tmp_path / f"saved-{fmt}.tar"
    imgmirror.save([anon_registry.ref("seed/multi", "v1")], archive, format=fmt)
    result = imgmirror.push(archive, f"{anon_registry.host}/again")
    dest = f"{anon_registry.host}/again/seed/multi:v1"
    assert [i.name for i in result.images] == [dest]
    host_image = index.image_for(images.host_platform())
    if fmt == "oci":  # the whole index was saved: same digest as the original
        assert result.images[0].digest == index.digest
        assert skopeo_digest(dest, anon_registry) == index.digest
    elif fmt == "docker":  # one platform saved: its manifest, byte for byte
        assert skopeo_digest(dest, anon_registry) == host_image.digest
    else:  # legacy stores no manifest: a new one, same config (image ID)
        pushed = json.loads(skopeo_inspect_raw(dest, anon_registry))
        assert pushed["config"]["digest"] == host_image.config.digest


# -- refused archives ---------------------------------------------------------------------------


def _archive_files(image: images.Image, tag: str) -> dict[str, bytes | tuple[str, str]]:
    buf = io.BytesIO(images.docker_archive([(image, [tag])]))
    out: dict[str, bytes | tuple[str, str]] = {}
    with tarfile.open(fileobj=buf) as tar:
        for member in tar:
            f = tar.extractfile(member)
            if f is not None:
                out[member.name] = f.read()
    return out


def _malicious(kind: str, image: images.Image, tag: str) -> dict[str, bytes | tuple[str, str]]:
    files = _archive_files(image, tag)
    manifest = json.loads(files["manifest.json"])  # type: ignore[arg-type]
    layer = manifest[0]["Layers"][0]
    if kind == "dotdot":
        files["../evil"] = b"x"
    elif kind == "absolute":
        files["/etc/evil"] = b"x"
    elif kind == "symlink-escape":
        files[layer] = ("sym", "../../../etc/passwd")
    elif kind == "missing-layer":
        del files[layer]
    elif kind == "wrong-digest":
        files[layer] = gzip.compress(b"not the layer" * 100, mtime=0)
    elif kind == "layer-count":
        manifest[0]["Layers"].append(layer)
        files["manifest.json"] = json.dumps(manifest).encode()
    elif kind == "manifest-path-escape":
        manifest[0]["Config"] = "../config.json"
        files["manifest.json"] = json.dumps(manifest).encode()
    return files


@pytest.mark.parametrize(
    ("kind", "error", "words"),
    [
        ("dotdot", ArchiveError, "escapes"),
        ("absolute", ArchiveError, "absolute"),
        ("symlink-escape", ArchiveError, "outside the archive"),
        ("missing-layer", ArchiveError, "missing"),
        ("wrong-digest", VerificationError, "diff_id"),
        ("layer-count", ArchiveError, "not what it claims"),
        ("manifest-path-escape", ArchiveError, "escapes"),
    ],
)
def test_malicious_archive_is_refused_and_nothing_tagged(
    anon_registry, tmp_path, kind, error, words
):
    image = images.make_image(marker=f"evil-{kind}")
    archive = tmp_path / "evil.tar"
    archive.write_bytes(tar_bytes(_malicious(kind, image, "evil/image:v1")))
    dest = f"{anon_registry.host}/evil/image:v1"
    with pytest.raises(error) as caught:
        imgmirror.push(archive, dest)
    assert words in str(caught.value)
    with pytest.raises(SkopeoError):
        skopeo_inspect_raw(dest, anon_registry)


def test_oci_blob_that_does_not_match_its_name_is_refused(anon_registry, tmp_path):
    image = images.make_image(marker="oci-evil", fmt="oci")
    index = {
        "schemaVersion": 2,
        "mediaType": images.OCI_INDEX,
        "manifests": [
            {**image.descriptor(), "annotations": {"io.containerd.image.name": "x.io/a/b:v1"}}
        ],
    }
    files: dict[str, bytes | tuple[str, str]] = {
        "oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
        "index.json": json.dumps(index).encode(),
        f"blobs/sha256/{image.digest[7:]}": image.manifest,
    }
    for blob in image.blobs:
        files[f"blobs/sha256/{blob.hex}"] = blob.data
    layer = image.layers[1]
    files[f"blobs/sha256/{layer.hex}"] = bytes(len(layer.data))  # right size, wrong bytes
    archive = tmp_path / "evil-oci.tar"
    archive.write_bytes(tar_bytes(files))
    dest = f"{anon_registry.host}/evil/oci:v1"
    with pytest.raises(VerificationError, match="digest of blob"):
        imgmirror.push(archive, dest)
    with pytest.raises(SkopeoError):
        skopeo_inspect_raw(dest, anon_registry)
    with RegistryClient(anon_registry) as client:
        assert not client.blob_exists("evil/oci", layer.digest)


def test_push_needs_credentials_for_token_registry(token_registry, tmp_path):
    image = images.make_image(marker="creds")
    archive = tmp_path / "a.tar"
    archive.write_bytes(images.docker_archive([(image, ["creds/image:v1"])]))
    with pytest.raises(ImgmirrorError):
        imgmirror.push(archive, f"{token_registry.host}/mirror")
    result = imgmirror.push(archive, f"{token_registry.host}/mirror", dest_creds="pusher:pushpass")
    dest = f"{token_registry.host}/mirror/creds/image:v1"
    assert result.images[0].name == dest
    digest = skopeo_digest(dest, token_registry, anonymous=True)
    assert digest == result.images[0].digest
    assert (
        digest == "sha256:" + hashlib.sha256(skopeo_inspect_raw(dest, token_registry)).hexdigest()
    )


# -- command line -------------------------------------------------------------------------------


def test_cli_push_json_and_refusal(anon_registry, tmp_path):
    image = images.make_image(marker="cli")
    archive = tmp_path / "a.tar"
    archive.write_bytes(images.docker_archive([(image, ["cli/image:v1", "cli/image:v2"])]))
    proc = run_cli("push", "--json", str(archive), f"{anon_registry.host}/m")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    names = [i["name"] for i in result["images"]]
    assert names == [f"{anon_registry.host}/m/cli/image:v1", f"{anon_registry.host}/m/cli/image:v2"]
    assert skopeo_digest(names[1], anon_registry) == result["images"][1]["digest"]
    evil = tmp_path / "evil.tar"
    evil.write_bytes(tar_bytes({"../x": b"x", "manifest.json": b"[]"}))
    proc = run_cli("push", str(evil), f"{anon_registry.host}/m")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "imgmirror: error: archive entry '../x' has a path that escapes the archive ('..')"
    ]
