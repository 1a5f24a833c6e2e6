"""Pure parts of push: tar path safety, archive layouts and manifest.json checks, layer
measurement, and where each image goes (destination mapping)."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest
import zstandard

from imgmirror.archive.contents import DockerImage, DockerLayer, OciImage, read_contents
from imgmirror.archive.convert import build_manifest, measure_layer
from imgmirror.archive.open import open_archive
from imgmirror.archive.reader import safe_name
from imgmirror.errors import ArchiveError, InvalidReference, VerificationError
from imgmirror.model.digest import Digest
from imgmirror.model.reference import Reference
from imgmirror.ops.push import map_destination
from tests.support import images
from tests.support.tarballs import tar_bytes

# -- path safety --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("manifest.json", "manifest.json"),
        ("./manifest.json", "manifest.json"),
        ("blobs//sha256/./ab", "blobs/sha256/ab"),
        ("dir/", "dir"),
    ],
)
def test_safe_names(raw, expected):
    assert safe_name(raw) == expected


@pytest.mark.parametrize("raw", ["/etc/passwd", "../x", "a/../../x", "a/../b", "a\\b"])
def test_unsafe_names(raw):
    with pytest.raises(ArchiveError):
        safe_name(raw)


def _write_tar(path: Path, files: dict[str, bytes | tuple[str, str]], compress: str = "") -> Path:
    data = tar_bytes(files)
    if compress == "gzip":
        data = gzip.compress(data)
    elif compress == "zstd":
        data = zstandard.ZstdCompressor().compress(data)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("files", "words"),
    [
        ({"a": ("sym", "../../etc/passwd")}, "outside the archive"),
        ({"d/a": ("sym", "/etc/passwd")}, "absolute"),
        ({"a": ("hard", "../x")}, "outside the archive"),
        ({"a": b"1", "./a": b"2"}, "more than once"),
        ({"a": ("sym", "b"), "b": ("sym", "a")}, "loop"),
    ],
)
def test_bad_links_and_duplicates_are_refused(tmp_path, files, words):
    with pytest.raises(ArchiveError, match=words):
        open_archive(_write_tar(tmp_path / "a.tar", files))


@pytest.mark.parametrize("compress", ["", "gzip", "zstd"])
def test_links_inside_the_archive_resolve_and_members_stream(tmp_path, compress):
    files: dict[str, bytes | tuple[str, str]] = {
        "x/layer.tar": b"L" * 3000,
        "y/layer.tar": ("sym", "../x/layer.tar"),
        "meta.json": b'{"a": 1}',
    }
    archive = open_archive(_write_tar(tmp_path / "a.tar", files, compress))
    assert archive.seekable == (compress == "")
    assert archive.resolve("y/layer.tar").name == "x/layer.tar"
    assert archive.read("meta.json") == b'{"a": 1}'
    streamed = {name: b"".join(chunks) for name, chunks in archive.stream(["y/layer.tar"])}
    assert streamed == {"x/layer.tar": b"L" * 3000}


def test_not_a_tar(tmp_path):
    path = tmp_path / "x.tar"
    path.write_bytes(b"hello" * 100)
    with pytest.raises(ArchiveError, match="not a readable tar"):
        open_archive(path)


# -- layouts ------------------------------------------------------------------------------------


def _docker_files(image: images.Image, tags: list[str]) -> dict[str, bytes | tuple[str, str]]:
    with tarfile.open(fileobj=io.BytesIO(images.docker_archive([(image, tags)]))) as tar:
        return {
            m.name: f.read() for m in tar if m.isfile() and (f := tar.extractfile(m)) is not None
        }


def test_docker_archive_contents(tmp_path):
    image = images.make_image(marker="unit")
    files = _docker_files(image, ["gcr.io/google_containers/pause:3.9"])
    contents = read_contents(open_archive(_write_tar(tmp_path / "a.tar", files)))
    assert contents.layout == "docker"
    (item,) = contents.images
    assert isinstance(item, DockerImage)
    assert item.names == (Reference.parse("gcr.io/google_containers/pause:3.9"),)
    assert item.config == image.config.data
    assert [str(layer.diff_id) for layer in item.layers] == image.diff_ids


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda m: m[0].update(Layers=m[0]["Layers"][:1]), "not what it claims"),
        (lambda m: m[0].update(Config="nope.json"), "missing"),
        (lambda m: m[0].update(Layers=["nope", "nope2"]), "missing"),
        (lambda m: m[0].update(RepoTags=["UPPER:1"]), "lowercase"),
        (lambda m: m[0].update(Config="/abs.json"), "absolute"),
    ],
)
def test_lying_manifest_json_is_refused(tmp_path, change, words):
    image = images.make_image(marker="unit")
    files = _docker_files(image, ["a/b:1"])
    manifest = json.loads(files["manifest.json"])  # type: ignore[arg-type]
    change(manifest)
    files["manifest.json"] = json.dumps(manifest).encode()
    with pytest.raises(ArchiveError, match=words):
        read_contents(open_archive(_write_tar(tmp_path / "a.tar", files)))


def test_config_not_matching_its_file_name_is_refused(tmp_path):
    image = images.make_image(marker="unit")
    files = _docker_files(image, ["a/b:1"])
    files[f"{image.config.hex}.json"] = images.make_image(marker="other").config.data
    with pytest.raises(ArchiveError, match="hashes to"):
        read_contents(open_archive(_write_tar(tmp_path / "a.tar", files)))


def _oci_files(top: images.Image | images.Index, name: str | None, *, drop: tuple[str, ...] = ()):
    descriptor = {"mediaType": top.media_type, "digest": top.digest, "size": top.size}
    if name:
        descriptor["annotations"] = {"io.containerd.image.name": name}
    files: dict[str, bytes | tuple[str, str]] = {
        "oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
        "index.json": json.dumps({"schemaVersion": 2, "manifests": [descriptor]}).encode(),
        f"blobs/sha256/{top.digest[7:]}": top.manifest,
    }
    children = top.images if isinstance(top, images.Index) else (top,)
    for child in children:
        if child.digest in drop:
            continue
        files[f"blobs/sha256/{child.digest[7:]}"] = child.manifest
        for blob in child.blobs:
            files[f"blobs/sha256/{blob.hex}"] = blob.data
    return files


def test_oci_layout_keeps_the_index(tmp_path):
    index = images.multiarch_docker_list(marker="unit")
    files = _oci_files(index, "docker.io/library/alpine:3.19")
    contents = read_contents(open_archive(_write_tar(tmp_path / "a.tar", files)))
    assert contents.layout == "oci"
    (item,) = contents.images
    assert isinstance(item, OciImage)
    assert str(item.top.digest) == index.digest
    assert len(item.children) == 4
    assert item.names == (Reference.parse("alpine:3.19"),)


def test_partial_index_pushes_the_platform_present(tmp_path):
    index = images.multiarch_docker_list(marker="unit")
    keep = index.images[0]
    drop = tuple(i.digest for i in index.images[1:])
    files = _oci_files(index, None, drop=drop)
    contents = read_contents(open_archive(_write_tar(tmp_path / "a.tar", files)))
    (item,) = contents.images
    assert isinstance(item, OciImage)
    assert str(item.top.digest) == keep.digest
    assert "only partly" in contents.notes[0]


def test_oci_manifest_with_missing_layer_is_refused(tmp_path):
    image = images.make_image(marker="unit", fmt="oci")
    files = _oci_files(image, "x.io/a:1")
    del files[f"blobs/sha256/{image.layers[0].hex}"]
    with pytest.raises(ArchiveError, match="missing"):
        read_contents(open_archive(_write_tar(tmp_path / "a.tar", files)))


def test_unknown_archive(tmp_path):
    with pytest.raises(ArchiveError, match="not an image archive"):
        read_contents(open_archive(_write_tar(tmp_path / "a.tar", {"x": b"1"})))


# -- layers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_measure_layer(compression):
    layer = images.make_layer({"a": b"hello"}, compression=compression)
    spec = DockerLayer("l.tar", Digest.parse(layer.diff_id))
    source = measure_layer([layer.data], spec)
    produced = b"".join(source.produce([layer.data]))
    assert str(source.descriptor.digest) == images.digest_of(produced)
    assert source.descriptor.size == len(produced)
    if compression == "none":
        assert gzip.decompress(produced) == layer.uncompressed
        assert source.regzip
    else:
        assert produced == layer.data
    wrong = DockerLayer("l.tar", Digest.of(b"other"))
    with pytest.raises(VerificationError, match="diff_id"):
        measure_layer([layer.data], wrong)


def test_built_manifest_is_oci_only_with_zstd():
    image = images.make_image(marker="unit")
    item = DockerImage((), image.config.data, ())
    gz = measure_layer([image.layers[0].data], _spec(image.layers[0])).descriptor
    assert build_manifest(item, [gz]).media_type == images.DOCKER_MANIFEST
    zl = images.make_layer({"z": b"z"}, compression="zstd")
    zd = measure_layer([zl.data], _spec(zl)).descriptor
    built = build_manifest(item, [gz, zd])
    assert built.media_type == images.OCI_MANIFEST
    assert [d.media_type for d in built.layers] == [images.OCI_LAYER_GZIP, images.OCI_LAYER_ZSTD]


def _spec(layer: images.Blob):
    assert isinstance(layer, images.Layer)
    return DockerLayer("l", Digest.parse(layer.diff_id))


# -- destinations -------------------------------------------------------------------------------

PAUSE = Reference.parse("gcr.io/google_containers/pause:3.9")
ALPINE = Reference.parse("alpine:3.19")


@pytest.mark.parametrize(
    ("name", "dest", "single", "expected"),
    [
        (PAUSE, None, True, "gcr.io/google_containers/pause:3.9"),
        (
            PAUSE,
            "artifactrepo1.corp.net/mirror",
            True,
            "artifactrepo1.corp.net/mirror/google_containers/pause:3.9",
        ),
        (ALPINE, "reg.corp/mirror", False, "reg.corp/mirror/library/alpine:3.19"),
        (ALPINE, "reg.corp:5000", False, "reg.corp:5000/library/alpine:3.19"),
        (ALPINE, "localhost:5000/", True, "localhost:5000/library/alpine:3.19"),
        (ALPINE, "127.0.0.1:5000/a/b", True, "127.0.0.1:5000/a/b/library/alpine:3.19"),
        (ALPINE, "reg.corp/x/y:v2", True, "reg.corp/x/y:v2"),
        (ALPINE, "myuser", True, "docker.io/myuser/library/alpine:3.19"),
        (None, "reg.corp/x/y:v2", True, "reg.corp/x/y:v2"),
        (None, "reg.corp/x/y", True, "reg.corp/x/y:latest"),
    ],
)
def test_map_destination(name, dest, single, expected):
    assert str(map_destination(name, dest, single)) == expected


@pytest.mark.parametrize(
    ("name", "dest", "single", "words"),
    [
        (None, None, True, "does not name"),
        (ALPINE, "reg.corp/x/y:v2", False, "several"),
        (None, "reg.corp/x/y", False, "several images without names"),
        (None, "reg.corp", True, "needs a repository"),
        (ALPINE, "reg.corp/x@sha256:" + "a" * 64, True, "digest"),
    ],
)
def test_map_destination_refusals(name, dest, single, words):
    with pytest.raises(InvalidReference, match=words):
        map_destination(name, dest, single)
