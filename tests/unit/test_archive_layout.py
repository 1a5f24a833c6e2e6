"""The pure archive plan (layout), the tar stream (writer) and save's argument handling."""

from __future__ import annotations

import contextlib
import io
import json
import os
import tarfile
import tracemalloc
from collections.abc import Iterator

import attrs
import pytest

from imgmirror.archive.layout import (
    BlobEntry,
    DirEntry,
    FileEntry,
    LayerTarEntry,
    LinkEntry,
    Origin,
    SaveItem,
    legacy_layer_json,
    plan_archive,
)
from imgmirror.archive.referrers import SUBJECT_ANNOTATION, TAG_ANNOTATION, SavedReferrer
from imgmirror.archive.writer import HeaderFixup, Rewind, _fixed_header, stream_archive
from imgmirror.errors import (
    ArchiveError,
    InvalidPlatform,
    InvalidReference,
    NetworkError,
    VerificationError,
)
from imgmirror.model.digest import Digest
from imgmirror.model.imagetree import ImageTree
from imgmirror.model.manifest import Descriptor, ImageIndex, ImageManifest, parse_manifest
from imgmirror.model.platform import Platform
from imgmirror.model.reference import Reference
from imgmirror.model.referrers import Referrer
from imgmirror.ops.save import SaveResult, archive_compression, load_commands
from imgmirror.ops.saverequest import ImageRequest, parse_image_arg
from tests.support.images import Image, Layer, make_image, make_index, make_layer
from tests.support.signing import sbom_artifact

ORIGIN = Origin("registry.example", "lib/app")


def _layers(image: Image) -> list[Layer]:
    layers = [layer for layer in image.layers if isinstance(layer, Layer)]
    assert len(layers) == len(image.layers)
    return layers


def _tree(image: Image) -> ImageTree:
    manifest = parse_manifest(image.manifest)
    assert isinstance(manifest, ImageManifest)
    return ImageTree(top=manifest, source_digest=manifest.digest)


def _item(image: Image, name: str = "registry.example/lib/app:1") -> SaveItem:
    configs = {Digest.parse(image.config.digest): image.config.data}
    return SaveItem(Reference.parse(name), ORIGIN, _tree(image), configs)


def _paths(plan_entries: tuple[object, ...]) -> list[str]:
    return [e.path for e in plan_entries]  # type: ignore[attr-defined]


def _file(plan_entries: tuple[object, ...], path: str) -> bytes:
    for entry in plan_entries:
        if isinstance(entry, FileEntry) and entry.path == path:
            return entry.data
    raise KeyError(path)


# -- docker (hybrid) -----------------------------------------------------------------------


def test_docker_plan_is_oci_layout_plus_manifest_json():
    image = make_image(marker="a")
    plan = plan_archive([_item(image)], "docker")
    paths = _paths(plan.entries)
    assert paths[0] == "oci-layout"
    assert paths[-2:] == ["index.json", "manifest.json"]
    assert f"blobs/sha256/{image.digest[7:]}" in paths
    for blob in image.blobs:
        assert paths.count(f"blobs/sha256/{blob.hex}") == 1
    index = json.loads(_file(plan.entries, "index.json"))
    assert index["manifests"] == [
        {
            "mediaType": image.media_type,
            "digest": image.digest,
            "size": len(image.manifest),
            "annotations": {
                "io.containerd.image.name": "registry.example/lib/app:1",
                "org.opencontainers.image.ref.name": "1",
            },
        },
        {  # containerd's CRI finds a digest-pinned image only under this name
            "mediaType": image.media_type,
            "digest": image.digest,
            "size": len(image.manifest),
            "annotations": {"io.containerd.image.name": f"registry.example/lib/app@{image.digest}"},
        },
    ]
    manifest = json.loads(_file(plan.entries, "manifest.json"))
    assert manifest == [
        {
            "Config": f"blobs/sha256/{image.config.hex}",
            "RepoTags": ["registry.example/lib/app:1"],
            "Layers": [f"blobs/sha256/{layer.hex}" for layer in image.layers],
        }
    ]
    # the config is written from the bytes already fetched, layers are streamed
    config_entry = next(e for e in plan.entries if e.path.endswith(image.config.hex))
    assert isinstance(config_entry, FileEntry)
    assert plan.blob_count == len(image.layers)


def test_docker_hub_names_are_familiar_in_repotags_and_full_in_index():
    plan = plan_archive([_item(make_image(), "alpine:3.19")], "docker")
    manifest = json.loads(_file(plan.entries, "manifest.json"))
    assert manifest[0]["RepoTags"] == ["alpine:3.19"]
    index = json.loads(_file(plan.entries, "index.json"))
    annotations = index["manifests"][0]["annotations"]
    assert annotations["io.containerd.image.name"] == "docker.io/library/alpine:3.19"


def test_shared_layer_stored_once_across_images():
    shared = make_layer({"shared": b"x"})
    a = make_image([shared, make_layer({"a": b"a"})])
    b = make_image([shared, make_layer({"b": b"b"})])
    plan = plan_archive([_item(a, "x/a:1"), _item(b, "x/b:1")], "docker")
    paths = _paths(plan.entries)
    assert paths.count(f"blobs/sha256/{shared.hex}") == 1
    assert len(json.loads(_file(plan.entries, "manifest.json"))) == 2
    assert len(json.loads(_file(plan.entries, "index.json"))["manifests"]) == 4


def test_zstd_layer_gets_an_uncompressed_copy_for_manifest_json():
    image = make_image(fmt="oci", compression="zstd")
    plan = plan_archive([_item(image)], "docker")
    expanded = [e for e in plan.entries if isinstance(e, LayerTarEntry)]
    assert [e.path for e in expanded] == [
        f"blobs/sha256/{layer.diff_id[7:]}" for layer in _layers(image)
    ]
    manifest = json.loads(_file(plan.entries, "manifest.json"))
    assert manifest[0]["Layers"] == [e.path for e in expanded]
    # index.json still points at the registry's manifest, whose zstd blobs are stored too
    raw_blobs = {e.path for e in plan.entries if isinstance(e, BlobEntry)}
    assert {f"blobs/sha256/{layer.hex}" for layer in image.layers} <= raw_blobs


def test_index_tree_lists_first_platform_in_manifest_json():
    amd = make_image(platform="linux/amd64", marker="i")
    arm = make_image(platform="linux/arm64", marker="i")
    index = make_index([amd, arm])
    top = parse_manifest(index.manifest)
    assert isinstance(top, ImageIndex)
    children = tuple(parse_manifest(i.manifest) for i in (arm, amd))
    tree = ImageTree(top=top, children=children)
    configs = {Digest.parse(i.config.digest): i.config.data for i in (amd, arm)}
    item = SaveItem(Reference.parse("x/multi:1"), ORIGIN, tree, configs)
    plan = plan_archive([item], "docker")
    manifest = json.loads(_file(plan.entries, "manifest.json"))
    assert manifest[0]["Config"] == f"blobs/sha256/{arm.config.hex}"
    assert json.loads(_file(plan.entries, "index.json"))["manifests"][0]["digest"] == index.digest
    # the whole index kept, manifest.json naming the machine's platform (save -f's default)
    here = attrs.evolve(item, platform=Platform.parse("linux/amd64"))
    plan = plan_archive([here], "docker")
    manifest = json.loads(_file(plan.entries, "manifest.json"))
    assert manifest[0]["Config"] == f"blobs/sha256/{amd.config.hex}"
    assert manifest[0]["Layers"] == [f"blobs/sha256/{layer.hex}" for layer in amd.layers]
    stored = {e.path for e in plan.entries if isinstance(e, BlobEntry)}
    assert {f"blobs/sha256/{layer.hex}" for layer in arm.layers} <= stored  # every platform


def test_missing_config_is_an_error():
    image = make_image()
    item = SaveItem(Reference.parse("x/a:1"), ORIGIN, _tree(image), {})
    with pytest.raises(ArchiveError, match="not fetched"):
        plan_archive([item], "docker")
    with pytest.raises(ArchiveError, match="nothing to save"):
        plan_archive([], "docker")


# -- oci and legacy --------------------------------------------------------------------------


def test_oci_plan_has_no_manifest_json():
    plan = plan_archive([_item(make_image())], "oci")
    paths = _paths(plan.entries)
    assert "manifest.json" not in paths
    assert paths[0] == "oci-layout"
    assert paths[-1] == "index.json"


def test_legacy_plan():
    shared = make_layer({"shared": b"x"})
    a = make_image([shared, make_layer({"a": b"a"})], marker="a")
    b = make_image([make_layer({"b": b"b"}), shared], marker="b")
    plan = plan_archive([_item(a, "x/a:1"), _item(b, "ghcr.io/o/b:2")], "legacy")
    paths = _paths(plan.entries)
    assert paths[-2:] == ["manifest.json", "repositories"]
    manifest = json.loads(_file(plan.entries, "manifest.json"))
    assert manifest[0]["Config"] == f"{a.config.hex}.json"
    assert manifest[0]["RepoTags"] == ["x/a:1"]
    assert manifest[1]["Layers"][1] == manifest[0]["Layers"][0]  # shared layer.tar reused
    links = [e for e in plan.entries if isinstance(e, LinkEntry)]
    assert len(links) == 1
    assert links[0].target == f"../{manifest[0]['Layers'][0]}"
    tars = [e for e in plan.entries if isinstance(e, LayerTarEntry)]
    assert len(tars) == 3
    for path in manifest[0]["Layers"]:
        v1id = path.split("/")[0]
        assert DirEntry(v1id) in plan.entries
        assert _file(plan.entries, f"{v1id}/VERSION") == b"1.0"
        layer_json = json.loads(_file(plan.entries, f"{v1id}/json"))
        assert layer_json["id"] == v1id
    top = manifest[0]["Layers"][-1].split("/")[0]
    repositories = json.loads(_file(plan.entries, "repositories"))
    assert repositories["x/a"] == {"1": top}
    assert "ghcr.io/o/b" in repositories


def test_legacy_v1_ids_are_deterministic_and_chained():
    image = make_image()
    diff_ids = [Digest.parse(layer.diff_id) for layer in _layers(image)]
    first = legacy_layer_json(image.config.data, diff_ids)
    assert first == legacy_layer_json(image.config.data, diff_ids)
    (id0, json0), (_, json1) = first
    assert "parent" not in json.loads(json0)
    assert json.loads(json1)["parent"] == id0
    assert json.loads(json1)["architecture"] == "amd64"
    assert json.loads(json0)["created"] == "1970-01-01T00:00:00Z"


# -- writer ----------------------------------------------------------------------------------


def _opener(blobs: dict[Digest, bytes], chunk: int = 1 << 20):
    @contextlib.contextmanager
    def open_blob(origin: Origin, blob: Descriptor) -> Iterator[Iterator[bytes]]:
        data = blobs[blob.digest]

        def chunks() -> Iterator[bytes]:
            for i in range(0, len(data), chunk):
                yield data[i : i + chunk]
            if Digest.of(data) != blob.digest:
                raise VerificationError("digest", blob.digest, Digest.of(data))

        yield chunks()

    return open_blob


def _blobs(*images: Image) -> dict[Digest, bytes]:
    return {Digest.parse(b.digest): b.data for i in images for b in i.blobs}


@pytest.mark.parametrize("fmt", ["docker", "legacy", "oci"])
def test_written_tar_matches_plan(fmt):
    image = make_image(fmt="oci", compression="zstd")
    plan = plan_archive([_item(image)], fmt)
    data = b"".join(stream_archive(plan, _opener(_blobs(image), chunk=7)))
    assert len(data) % 10240 == 0
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        assert names == [e.path for e in plan.entries]
        for layer in _layers(image):
            by_diff = f"blobs/sha256/{layer.diff_id[7:]}"
            if by_diff in names:
                assert tar.extractfile(by_diff).read() == layer.uncompressed  # type: ignore[union-attr]
        manifest = json.loads(tar.extractfile("manifest.json").read()) if fmt != "oci" else []  # type: ignore[union-attr]
        for entry in manifest:
            for path, layer in zip(entry["Layers"], _layers(image), strict=True):
                assert tar.extractfile(path).read() == layer.uncompressed  # type: ignore[union-attr]


def test_wrong_diff_id_is_refused():
    layer = make_layer({"a": b"a"})
    image = make_image([layer])
    blobs = _blobs(image)
    plan = plan_archive([_item(image)], "legacy")
    entry = next(e for e in plan.entries if isinstance(e, LayerTarEntry))
    bad = LayerTarEntry(entry.path, entry.blob, Digest.of(b"other"), entry.origin)
    with pytest.raises(VerificationError, match="diff_id"):
        b"".join(stream_archive(plan.__class__("legacy", (bad,)), _opener(blobs)))


def _apply(pieces) -> bytes:
    """Write pieces to a seekable buffer the way save() writes its file."""
    out = io.BytesIO()
    for piece in pieces:
        if isinstance(piece, HeaderFixup):
            out.seek(piece.offset)
            out.write(piece.header)
            out.seek(0, io.SEEK_END)
        elif isinstance(piece, Rewind):
            out.seek(piece.offset)
            out.truncate()
        else:
            out.write(piece)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["docker", "legacy"])
def test_patchable_output_reads_each_layer_once(fmt):
    image = make_image(fmt="oci", compression="zstd")
    plan = plan_archive([_item(image)], fmt)
    blobs = _blobs(image)
    opened: list[Digest] = []
    inner = _opener(blobs, chunk=7)

    @contextlib.contextmanager
    def counting(origin: Origin, blob: Descriptor) -> Iterator[Iterator[bytes]]:
        opened.append(blob.digest)
        with inner(origin, blob) as chunks:
            yield chunks

    patched = _apply(stream_archive(plan, counting, patchable=True))

    assert _members(patched) == _members(b"".join(stream_archive(plan, _opener(blobs))))
    reads = [e for e in plan.entries if isinstance(e, BlobEntry | LayerTarEntry)]
    assert len(opened) == len(reads)  # the two-pass path opens each LayerTarEntry twice


def _members(data: bytes) -> list[tuple[str, int, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [
            (m.name, m.size, tar.extractfile(m).read() if m.isfile() else b"")  # type: ignore[union-attr]
            for m in tar.getmembers()
        ]


def test_patchable_output_still_checks_diff_ids():
    image = make_image([make_layer({"a": b"a"})])
    plan = plan_archive([_item(image)], "legacy")
    entry = next(e for e in plan.entries if isinstance(e, LayerTarEntry))
    bad = LayerTarEntry(entry.path, entry.blob, Digest.of(b"other"), entry.origin)
    with pytest.raises(VerificationError, match="diff_id"):
        _apply(
            stream_archive(plan.__class__("legacy", (bad,)), _opener(_blobs(image)), patchable=True)
        )


def _breaking_once(blobs: dict[Digest, bytes], broken: set[Digest]):
    """An opener whose first read of each blob in ``broken`` dies halfway with a network error."""
    inner = _opener(blobs, chunk=64)

    @contextlib.contextmanager
    def open_blob(origin: Origin, blob: Descriptor) -> Iterator[Iterator[bytes]]:
        with inner(origin, blob) as chunks:
            if blob.digest not in broken:
                yield chunks
                return
            broken.discard(blob.digest)

            def halfway() -> Iterator[bytes]:
                sent = 0
                for chunk in chunks:
                    if sent >= blob.size // 2:
                        raise NetworkError("connection to registry broke off")
                    sent += len(chunk)
                    yield chunk

            yield halfway()

    return open_blob


@pytest.mark.parametrize("fmt", ["docker", "legacy"])
def test_a_broken_blob_is_written_again_in_a_seekable_output(fmt):
    image = make_image(fmt="oci", compression="zstd")
    plan = plan_archive([_item(image)], fmt)
    blobs = _blobs(image)
    broken = {Digest.parse(layer.digest) for layer in image.layers}

    patched = _apply(stream_archive(plan, _breaking_once(blobs, broken), patchable=True))

    assert not broken  # every layer did break once
    assert _members(patched) == _members(b"".join(stream_archive(plan, _opener(blobs))))


def test_a_broken_blob_fails_a_stream_that_cannot_seek():
    image = make_image()
    plan = plan_archive([_item(image)], "docker")
    broken = {Digest.parse(image.layers[0].digest)}
    with pytest.raises(NetworkError):
        b"".join(stream_archive(plan, _breaking_once(_blobs(image), broken)))


def test_fixed_headers_fit_one_block_past_8_gib():
    header = _fixed_header("0" * 64 + "/layer.tar", 9 << 30)
    assert header is not None
    assert len(header) == 512
    info = tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")
    assert info.size == 9 << 30


def test_writer_memory_is_bounded():
    big = os.urandom(1 << 20) * 48  # 48 MiB, compressible: exercises decompression too
    layer = make_layer({"big": big})
    image = make_image([layer])
    blobs = _blobs(image)
    plan = plan_archive([_item(image)], "legacy")
    del big
    tracemalloc.start()
    try:
        total = sum(len(piece) for piece in stream_archive(plan, _opener(blobs)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total > 48 << 20
    assert peak < 16 << 20


# -- save arguments --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arg", "name", "renamed"),
    [
        ("alpine:3.19", "docker.io/library/alpine:3.19", False),
        ("alpine:3.19=mirror/alpine", "docker.io/mirror/alpine:3.19", False),
        ("alpine=mirror/alpine:v1", "docker.io/mirror/alpine:v1", False),
        (("registry.k8s.io/pause:3.9", "pause:local"), "docker.io/library/pause:local", False),
        ("r.io/a@sha256:" + "ab" * 32, "r.io/a:sha256-abababababab", True),
        ("r.io/a@sha256:" + "ab" * 32 + "=b", "docker.io/library/b:sha256-abababababab", True),
        ("r.io/a:t@sha256:" + "ab" * 32, "r.io/a:t", False),
    ],
)
def test_parse_image_arg(arg, name, renamed):
    _, parsed, was_digest = parse_image_arg(arg)
    assert str(parsed) == name
    assert was_digest is renamed


def test_parse_image_arg_refuses_digest_name():
    with pytest.raises(InvalidReference):
        parse_image_arg("alpine=other@sha256:" + "ab" * 32)


def test_compression_and_load_commands():
    assert archive_compression("a.tar") is None
    assert archive_compression("a.tar.gz") == "gzip"
    assert archive_compression("a.tar.zst") == "zstd"

    def result(path: str, fmt: str = "docker") -> SaveResult:
        return SaveResult(path, fmt, (), 0, 0, archive_compression(path))  # type: ignore[arg-type]

    assert load_commands(result("my file.tar")) == [
        "docker load -i 'my file.tar'",
        "ctr -n k8s.io images import 'my file.tar'",
    ]
    assert load_commands(result("a.tar.zst")) == [
        "zstd -dc a.tar.zst | docker load",
        "zstd -dc a.tar.zst | ctr -n k8s.io images import -",
    ]
    assert load_commands(result("a.tar", "oci")) == ["ctr -n k8s.io images import a.tar"]


def test_referrers_are_stored_unnamed_after_the_images():
    image = make_image(marker="subject")
    subject = image.descriptor(with_platform=False)
    sbom = sbom_artifact(subject)
    signature = sbom_artifact(sbom.descriptor(with_platform=False), name="sig")
    saved = []
    for artifact, of, tag in ((sbom, image, None), (signature, sbom, "sha256-x.sig")):
        descriptor = Descriptor(artifact.media_type, Digest.parse(artifact.digest), artifact.size)
        referrer = Referrer(descriptor, "application/spdx+json", Digest.parse(of.digest), tag)
        saved.append(SavedReferrer(referrer, _tree(artifact)))
    item = attrs.evolve(_item(image), referrers=tuple(saved))
    plan = plan_archive([item, _item(image, "registry.example/lib/app:2")], "docker")
    paths = _paths(plan.entries)
    for artifact in (sbom, signature):
        assert f"blobs/sha256/{artifact.digest.split(':')[1]}" in paths
        layer = artifact.layers[0]
        blob = next(e for e in plan.entries if getattr(e, "path", "").endswith(layer.digest[7:]))
        assert isinstance(blob, BlobEntry)
        assert blob.origin == ORIGIN
    index = json.loads(_file(plan.entries, "index.json"))["manifests"]
    assert [e["digest"] for e in index] == [image.digest, image.digest, image.digest,
                                           sbom.digest, signature.digest]  # fmt: skip
    assert index[2]["annotations"] == {  # one digest name for the two tags
        "io.containerd.image.name": f"registry.example/lib/app@{image.digest}"
    }
    assert index[3] == {
        "mediaType": sbom.media_type,
        "digest": sbom.digest,
        "size": sbom.size,
        "artifactType": "application/spdx+json",
        "annotations": {SUBJECT_ANNOTATION: image.digest},
    }
    tagged = {SUBJECT_ANNOTATION: sbom.digest, TAG_ANNOTATION: "sha256-x.sig"}
    assert index[4]["annotations"] == tagged
    manifest_json = json.loads(_file(plan.entries, "manifest.json"))
    assert len(manifest_json) == 2  # docker load sees the images only


def test_an_image_request_parses_like_its_text():
    assert parse_image_arg(ImageRequest("alpine:3.19", name="reg/alpine")) == parse_image_arg(
        "alpine:3.19=reg/alpine"
    )
    assert ImageRequest("alpine", platforms="linux/arm64").platforms == ("linux/arm64",)
    assert ImageRequest("alpine").platforms is None
    with pytest.raises(InvalidPlatform):
        ImageRequest("alpine", platforms=["linux/amd64", "arm64"])
