"""imgmirror save against real loaders: docker load + docker run, ctr import, skopeo.

The engine here is Docker 20.10 with the classic (graphdriver) store and its containerd 1.6, so
zstd layers must arrive in a form Docker < 23 reads. Every image loaded is removed again.
"""

from __future__ import annotations

import json
import os
import secrets
import tarfile
from pathlib import Path

import pytest
import zstandard

import imgmirror
from imgmirror.errors import VerificationError
from imgmirror.progress import ProgressListener
from tests.support.faults import FakeSource, truncate_once
from tests.support.images import (
    Blob,
    Image,
    Layer,
    Platform,
    host_platform,
    image_from_parts,
    make_config,
    make_index,
    make_layer,
    pause_image,
)
from tests.support.registry import Registry
from tests.support.seed import seed
from tests.support.tools import run_cli, skopeo

OPTIONS = imgmirror.ClientOptions(insecure_registries=frozenset())


def _members(path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path) as tar:
        return {m.name: m for m in tar.getmembers()}


def _read(path: Path, name: str) -> bytes:
    with tarfile.open(path) as tar:
        f = tar.extractfile(name)
        assert f is not None
        return f.read()


@pytest.fixture
def pause(pause_binary: Path) -> Image:
    return pause_image(pause_binary)


def _unique(prefix: str = "imgmirror-test/pause") -> str:
    """A docker-hub-style name nobody else uses, with tag."""
    return f"{prefix}-{secrets.token_hex(4)}:v1"


def test_pause_loads_and_runs_under_new_name(anon_registry: Registry, pause, loaded, tmp_path):
    seed(anon_registry, "pause", "3.9", pause)
    name = _unique()
    out = tmp_path / "pause.tar"
    result = imgmirror.save([f"{anon_registry.host}/pause:3.9={name}"], out, options=OPTIONS)
    assert result.images[0].name == f"docker.io/{name}"
    assert result.images[0].digest == pause.digest
    assert loaded.load(out, name) == [f"Loaded image: {name}"]
    assert loaded.engine.image_ids(name)[name] == pause.config.digest
    loaded.run(name)


def test_ctr_import_keeps_registry_digest_and_full_name(
    anon_registry: Registry, pause, loaded, tmp_path
):
    seed(anon_registry, "pause", "3.9", pause)
    source = f"{anon_registry.host}/pause:3.9"
    out = tmp_path / "pause.tar"
    imgmirror.save([source], out, options=OPTIONS)
    loaded.ctr_import(out, source)
    assert loaded.ctr_digest(source) == pause.digest


def test_skopeo_reads_docker_archive(anon_registry: Registry, pause, tmp_path):
    seed(anon_registry, "pause", "3.9", pause)
    out = tmp_path / "pause.tar"
    imgmirror.save([f"{anon_registry.host}/pause:3.9"], out, options=OPTIONS)
    info = json.loads(skopeo("inspect", f"docker-archive:{out}"))
    assert info["Digest"]  # skopeo synthesises a manifest for docker-archive
    assert info["Layers"] == [pause.layers[0].diff_id]  # skopeo reports them uncompressed
    config = json.loads(skopeo("inspect", "--config", f"docker-archive:{out}"))
    assert config["config"]["Entrypoint"] == ["/pause"]


def test_oci_format_is_read_by_skopeo_and_ctr(anon_registry: Registry, pause, loaded, tmp_path):
    seed(anon_registry, "pause", "3.9", pause)
    source = f"{anon_registry.host}/pause:3.9"
    out = tmp_path / "pause-oci.tar"
    result = imgmirror.save([source], out, format="oci", options=OPTIONS)
    assert result.format == "oci"
    assert "manifest.json" not in _members(out)
    raw = skopeo("inspect", "--raw", f"oci-archive:{out}")
    assert raw == pause.manifest
    loaded.ctr_import(out, source)
    assert loaded.ctr_digest(source) == pause.digest


def test_oci_format_keeps_whole_index(anon_registry: Registry, pause_binary, tmp_path):
    index = make_index(
        [
            pause_image(pause_binary, platform=Platform.parse(p))
            for p in ("linux/amd64", "linux/arm64")
        ],
        fmt="oci",
    )
    seed(anon_registry, "multi", "1", index)
    out = tmp_path / "multi.tar"
    result = imgmirror.save([f"{anon_registry.host}/multi:1"], out, format="oci", options=OPTIONS)
    assert result.images[0].digest == index.digest
    names = _members(out)
    for blob in index.blobs:
        assert f"blobs/sha256/{blob.hex}" in names
    assert skopeo("inspect", "--raw", f"oci-archive:{out}") == index.manifest


def test_platform_from_four_platform_list(anon_registry: Registry, pause_binary, loaded, tmp_path):
    host = host_platform()
    others = ("linux/arm64", "linux/arm/v7", "linux/ppc64le")
    images = [pause_image(pause_binary, platform=Platform.parse(p), marker=p) for p in others]
    mine = pause_image(pause_binary, platform=host, marker="host")
    index = make_index([images[0], mine, *images[1:]])
    seed(anon_registry, "pause", "multi", index)
    source = f"{anon_registry.host}/pause:multi"
    out = tmp_path / "pause.tar"
    result = imgmirror.save([source], out, options=OPTIONS)
    assert result.images[0].digest == mine.digest
    assert result.images[0].platforms == (str(host),)
    names = _members(out)
    for other in images:  # nothing of the other platforms is carried or referenced
        assert f"blobs/sha256/{other.layers[0].hex}" not in names
    assert f"blobs/sha256/{index.digest[7:]}" not in names
    loaded.load(out, source)
    loaded.run(source)
    loaded.ctr_import(out, source)
    assert loaded.ctr_digest(source) == mine.digest


def test_several_platforms(anon_registry: Registry, pause_binary, loaded, tmp_path):
    mine = pause_image(pause_binary, marker="host")
    arm = pause_image(pause_binary, platform=Platform.parse("linux/arm64"), marker="arm")
    ppc = pause_image(pause_binary, platform=Platform.parse("linux/ppc64le"), marker="ppc")
    index = make_index([arm, ppc, mine], fmt="oci")
    seed(anon_registry, "pause", "multi", index)
    source = f"{anon_registry.host}/pause:multi"
    out = tmp_path / "two.tar"
    result = imgmirror.save(
        [source], out, platforms=[str(host_platform()), "linux/arm64"], options=OPTIONS
    )
    assert set(result.images[0].platforms) == {str(host_platform()), "linux/arm64"}
    names = _members(out)
    assert f"blobs/sha256/{ppc.layers[0].hex}" not in names
    entry, pinned = json.loads(_read(out, "index.json"))["manifests"]
    assert entry["annotations"]["io.containerd.image.name"] == source
    # the narrowed index under the registry's index digest, as a CRI pull records it
    assert pinned["digest"] == entry["digest"]
    assert pinned["annotations"] == {
        "io.containerd.image.name": f"{anon_registry.host}/pause@{index.digest}"
    }
    listed = json.loads(_read(out, f"blobs/sha256/{entry['digest'][7:]}"))["manifests"]
    assert {m["digest"] for m in listed} == {mine.digest, arm.digest}
    manifest = json.loads(_read(out, "manifest.json"))
    assert manifest[0]["Config"] == f"blobs/sha256/{mine.config.hex}"  # the first platform
    loaded.load(out, source)
    loaded.run(source)
    loaded.ctr_import(out, source)
    assert loaded.ctr_digest(source) == entry["digest"]


def test_multi_image_archive_stores_shared_layer_once(
    anon_registry: Registry, pause_binary, loaded, tmp_path
):
    a = pause_image(pause_binary)
    (base,) = a.layers
    assert isinstance(base, Layer)
    layers_b = [base, make_layer({"etc/b": b"second image\n"})]  # shares a's layer
    config_b = Blob(
        make_config(layers_b, entrypoint=["/pause"], cmd=None, env=()), a.config.media_type
    )
    b = image_from_parts(config_b, layers_b)
    seed(anon_registry, "a", "1", a)
    seed(anon_registry, "b", "1", b)
    name_a, name_b = _unique("imgmirror-test/a"), _unique("imgmirror-test/b")
    out = tmp_path / "two.tar"
    result = imgmirror.save(
        [f"{anon_registry.host}/a:1={name_a}", (f"{anon_registry.host}/b:1", name_b)],
        out,
        options=OPTIONS,
    )
    assert [i.name for i in result.images] == [f"docker.io/{name_a}", f"docker.io/{name_b}"]
    with tarfile.open(out) as tar:
        all_names = [m.name for m in tar.getmembers()]
    assert all_names.count(f"blobs/sha256/{a.layers[0].hex}") == 1
    manifest = json.loads(_read(out, "manifest.json"))
    assert [m["RepoTags"] for m in manifest] == [[name_a], [name_b]]
    assert manifest[0]["Layers"][0] == manifest[1]["Layers"][0]
    assert sorted(loaded.load(out, name_a, name_b)) == sorted(
        [f"Loaded image: {name_a}", f"Loaded image: {name_b}"]
    )
    loaded.run(name_a)
    loaded.run(name_b)


def test_zstd_oci_image_loads_on_old_docker_and_ctr_keeps_digest(
    anon_registry: Registry, pause_binary, loaded, tmp_path
):
    image = pause_image(pause_binary, fmt="oci", compression="zstd")
    seed(anon_registry, "zpause", "1", image)
    source = f"{anon_registry.host}/zpause:1"
    out = tmp_path / "zpause.tar"
    imgmirror.save([source], out, options=OPTIONS)
    manifest = json.loads(_read(out, "manifest.json"))
    (layer,) = image.layers
    assert isinstance(layer, Layer)
    assert manifest[0]["Layers"] == [f"blobs/sha256/{layer.diff_id[7:]}"]
    assert _read(out, manifest[0]["Layers"][0]) == layer.uncompressed
    assert f"blobs/sha256/{layer.hex}" in _members(out)  # the registry's blob, for index.json
    loaded.load(out, source)
    loaded.run(source)
    loaded.ctr_import(out, source)
    assert loaded.ctr_digest(source) == image.digest


def test_legacy_format_loads(anon_registry: Registry, pause, loaded, tmp_path):
    seed(anon_registry, "pause", "3.9", pause)
    name = _unique()
    out = tmp_path / "legacy.tar"
    imgmirror.save(
        [f"{anon_registry.host}/pause:3.9={name}"], out, format="legacy", options=OPTIONS
    )
    members = _members(out)
    assert "oci-layout" not in members
    assert "repositories" in members
    manifest = json.loads(_read(out, "manifest.json"))
    (layer_path,) = manifest[0]["Layers"]
    assert layer_path.endswith("/layer.tar")
    assert _read(out, layer_path) == pause.layers[0].uncompressed
    assert f"{pause.config.hex}.json" == manifest[0]["Config"]
    loaded.load(out, name)
    loaded.run(name)
    loaded.ctr_import(out, f"docker.io/{name}")
    assert loaded.ctr_digest(f"docker.io/{name}")  # containerd synthesises a manifest
    info = json.loads(skopeo("inspect", f"docker-archive:{out}"))
    assert info["Layers"] == [pause.layers[0].diff_id]


@pytest.mark.parametrize("suffix", [".tar.gz", ".tar.zst"])
def test_compressed_archive(anon_registry: Registry, pause, loaded, tmp_path, suffix):
    seed(anon_registry, "pause", "3.9", pause)
    name = _unique()
    out = tmp_path / f"pause{suffix}"
    result = imgmirror.save([f"{anon_registry.host}/pause:3.9={name}"], out, options=OPTIONS)
    assert result.compression == ("gzip" if suffix == ".tar.gz" else "zstd")
    data = out.read_bytes()
    assert data[:2] == b"\x1f\x8b" if suffix == ".tar.gz" else data[:4] == b"\x28\xb5\x2f\xfd"
    if suffix == ".tar.zst":  # Docker < 23 cannot read a zstd archive: decompress first
        plain = tmp_path / "pause.tar"
        with out.open("rb") as src, plain.open("wb") as dst:
            zstandard.ZstdDecompressor().copy_stream(src, dst)
        loaded.load(plain, name)
    else:
        loaded.load(out, name)
    loaded.run(name)


def test_digest_only_reference_gets_a_loadable_name(
    anon_registry: Registry, pause, loaded, tmp_path
):
    seed(anon_registry, "pause", None, pause)
    out = tmp_path / "pause.tar"
    result = imgmirror.save([f"{anon_registry.host}/pause@{pause.digest}"], out, options=OPTIONS)
    name = f"{anon_registry.host}/pause:sha256-{pause.digest[7:19]}"
    assert result.images[0].name == name
    assert result.images[0].renamed_from_digest
    loaded.load(out, name)
    loaded.ctr_import(out, name)
    assert loaded.ctr_digest(name) == pause.digest


def test_corrupt_blob_leaves_nothing(anon_registry: Registry, pause, tmp_path):
    seed(anon_registry, "pause", "3.9", pause)
    hexd = pause.layers[0].hex
    data = anon_registry.storage_dir / "docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data"
    blob = bytearray(data.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    data.write_bytes(bytes(blob))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(VerificationError):
        imgmirror.save([f"{anon_registry.host}/pause:3.9"], out_dir / "pause.tar", options=OPTIONS)
    assert os.listdir(out_dir) == []


@pytest.mark.parametrize("fmt", ["docker", "legacy"])
def test_a_transfer_that_breaks_off_is_written_again(pause, tmp_path, fmt):
    layer = pause.layers[0]
    out = tmp_path / "pause.tar"
    with FakeSource(pause, truncate_once(layer.digest, layer.data)) as source:
        imgmirror.save([f"{source.host}/pause:3.9"], out, format=fmt, options=OPTIONS)
        assert source.attempts[layer.digest] == 2  # broke off once, then written again

    info = json.loads(skopeo("inspect", f"docker-archive:{out}"))
    assert info["Layers"] == [layer.diff_id]
    with tarfile.open(out) as tar:
        names = tar.getnames()
    assert len(names) == len(set(names))  # the broken attempt was cut away, not left behind


def test_cli_prints_load_commands(anon_registry: Registry, pause, tmp_path):
    seed(anon_registry, "pause", "3.9", pause)
    out = tmp_path / "pause.tar"
    proc = run_cli("save", f"{anon_registry.host}/pause:3.9=k8s/pause:3.9", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"-> docker.io/k8s/pause:3.9 [linux/amd64] {pause.digest}" in proc.stdout
    assert f"  docker load -i {out}\n" in proc.stdout
    assert f"  ctr -n k8s.io images import {out}\n" in proc.stdout


def test_cli_digest_only_says_which_name_json(anon_registry: Registry, pause, tmp_path):
    seed(anon_registry, "pause", None, pause)
    out = tmp_path / "pause.tar.gz"
    proc = run_cli("save", f"{anon_registry.host}/pause@{pause.digest}", "-o", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    name = f"{anon_registry.host}/pause:sha256-{pause.digest[7:19]}"
    assert f"saved as {name}" in proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["images"][0]["name"] == name
    assert result["load_commands"] == [
        f"docker load -i {out}",
        f"gunzip -c {out} | ctr -n k8s.io images import -",
    ]


def test_cli_usage_and_errors(anon_registry: Registry, tmp_path):
    out = tmp_path / "x.tar"
    proc = run_cli("save", "alpine", "-o", str(out), "--format", "zip")
    assert proc.returncode == 2
    proc = run_cli("save", f"{anon_registry.host}/missing:1", "-o", str(out))
    assert proc.returncode == 1
    assert proc.stderr.startswith("imgmirror: error: ")
    assert not out.exists()


class _Interrupt(ProgressListener):
    """A progress listener that presses Ctrl-C in the middle of the first blob."""

    def blob_started(self, digest: object, size: int) -> None:
        pass

    def blob_advanced(self, digest: object, nbytes: int) -> None:
        raise KeyboardInterrupt

    def blob_finished(self, digest: object, outcome: str) -> None:
        pass


def test_interrupt_leaves_nothing(anon_registry: Registry, pause, tmp_path):
    seed(anon_registry, "pause", "3.9", pause)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(KeyboardInterrupt):
        imgmirror.save(
            [f"{anon_registry.host}/pause:3.9"],
            out_dir / "pause.tar.zst",
            options=OPTIONS,
            progress=_Interrupt(),
        )
    assert os.listdir(out_dir) == []
