"""Tests for imgmirror.model.manifest and imgmirror.model.mediatypes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from imgmirror.errors import InvalidManifest, PlatformNotFound, UnsupportedMediaType
from imgmirror.model import mediatypes as mt
from imgmirror.model.digest import Digest
from imgmirror.model.manifest import (
    Descriptor,
    ImageIndex,
    ImageManifest,
    parse_config,
    parse_manifest,
)
from imgmirror.model.platform import Platform

CONFIG = Digest.of(b"config")
LAYER = Digest.of(b"layer")


def desc(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": str(Digest.of(data)), "size": len(data), **extra}


def image_doc(media_type: str | None = mt.OCI_MANIFEST, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "config": desc(mt.OCI_CONFIG, b"config"),
        "layers": [desc(mt.OCI_LAYER_GZIP, b"layer")],
        **extra,
    }
    if media_type:
        doc["mediaType"] = media_type
    return doc


def entry(platform: dict[str, str] | None, data: bytes, **extra: Any) -> dict[str, Any]:
    out = desc(mt.OCI_MANIFEST, data, **extra)
    if platform is not None:
        out["platform"] = platform
    return out


AMD64 = {"architecture": "amd64", "os": "linux"}
ARM64 = {"architecture": "arm64", "os": "linux", "variant": "v8"}
UNKNOWN = {"architecture": "unknown", "os": "unknown"}
ATTESTATION = {"vnd.docker.reference.type": "attestation-manifest"}


def index_doc(*entries: dict[str, Any], media_type: str | None = mt.OCI_INDEX) -> dict[str, Any]:
    doc: dict[str, Any] = {"schemaVersion": 2, "manifests": list(entries)}
    if media_type:
        doc["mediaType"] = media_type
    return doc


def raw(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, indent=3).encode()


def test_parse_image_manifest_keeps_raw_bytes() -> None:
    data = raw(image_doc())
    manifest = parse_manifest(data)
    assert isinstance(manifest, ImageManifest)
    assert manifest.raw == data
    assert manifest.digest == Digest.of(data)
    assert manifest.media_type == mt.OCI_MANIFEST
    assert manifest.config == Descriptor(mt.OCI_CONFIG, CONFIG, 6)
    assert manifest.layers == (Descriptor(mt.OCI_LAYER_GZIP, LAYER, 5),)
    assert manifest.blobs == (manifest.config, *manifest.layers)
    assert "raw" not in repr(manifest)


def test_docker_manifest() -> None:
    manifest = parse_manifest(raw(image_doc(mt.DOCKER_MANIFEST)))
    assert manifest.media_type == mt.DOCKER_MANIFEST


@pytest.mark.parametrize(
    ("doc", "content_type", "media_type"),
    [
        (image_doc(None), mt.DOCKER_MANIFEST + "; charset=utf-8", mt.DOCKER_MANIFEST),
        (image_doc(None), None, mt.OCI_MANIFEST),
        (image_doc(None), "application/json", mt.OCI_MANIFEST),
        (image_doc(mt.DOCKER_MANIFEST), mt.OCI_MANIFEST, mt.DOCKER_MANIFEST),
        (index_doc(media_type=None), None, mt.OCI_INDEX),
        (index_doc(media_type=None), mt.DOCKER_MANIFEST_LIST, mt.DOCKER_MANIFEST_LIST),
        (index_doc(media_type=mt.DOCKER_MANIFEST_LIST), None, mt.DOCKER_MANIFEST_LIST),
    ],
)
def test_media_type_resolution(
    doc: dict[str, Any], content_type: str | None, media_type: str
) -> None:
    assert parse_manifest(raw(doc), content_type).media_type == media_type


@pytest.mark.parametrize(
    ("doc", "content_type"),
    [
        ({"schemaVersion": 1, "name": "x", "fsLayers": []}, None),
        ({"schemaVersion": 1, "fsLayers": []}, mt.SCHEMA1_SIGNED_MANIFEST),
        ({"name": "x", "fsLayers": [], "signatures": []}, mt.SCHEMA1_MANIFEST),
        ({"mediaType": mt.SCHEMA1_MANIFEST, "schemaVersion": 1}, None),
    ],
)
def test_schema1_refused(doc: dict[str, Any], content_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaType, match="schema 1") as info:
        parse_manifest(raw(doc), content_type)
    assert "re-push" in str(info.value)


@pytest.mark.parametrize(
    ("data", "error", "problem"),
    [
        (b"", InvalidManifest, "not valid JSON"),
        (b"{not json", InvalidManifest, "not valid JSON"),
        (b"\xff\xfe", InvalidManifest, "not valid JSON"),
        (b"[]", InvalidManifest, "must be a JSON object, not list"),
        (b"{}", InvalidManifest, "cannot tell the manifest type"),
        (raw({"mediaType": mt.OCI_MANIFEST, "layers": []}), InvalidManifest, "has no 'config'"),
        (
            raw({"mediaType": mt.OCI_MANIFEST, "config": desc(mt.OCI_CONFIG, b"c")}),
            InvalidManifest,
            "manifest has no 'layers'",
        ),
        (raw({"mediaType": mt.OCI_INDEX}), InvalidManifest, "index has no 'manifests'"),
        (raw({"mediaType": mt.OCI_INDEX, "manifests": {}}), InvalidManifest, "must be a list"),
        (
            raw(image_doc(layers=[{"mediaType": "x", "size": 1}])),
            InvalidManifest,
            "layer 0 has no 'digest'",
        ),
        (
            raw(image_doc(config={"digest": str(CONFIG), "size": 1})),
            InvalidManifest,
            "config has no 'mediaType'",
        ),
        (
            raw(image_doc(layers=[desc("x", b"1", size="1")])),
            InvalidManifest,
            "'size' must be an integer",
        ),
        (
            raw(image_doc(layers=[desc("x", b"1", size=True)])),
            InvalidManifest,
            "'size' must be an integer",
        ),
        (
            raw(image_doc(layers=[desc("x", b"1", size=-1)])),
            InvalidManifest,
            "must not be negative",
        ),
        (
            raw(image_doc(layers=[desc("x", b"1", digest="sha256:12")])),
            InvalidManifest,
            "layer 0: invalid digest",
        ),
        (raw(image_doc(layers=["x"])), InvalidManifest, "layer 0 must be a JSON object"),
        (
            raw(image_doc(layers=[desc("x", b"1", annotations={"a": 1})])),
            InvalidManifest,
            "'annotations'",
        ),
        (raw(image_doc(layers=[desc("x", b"1", urls="http://x")])), InvalidManifest, "'urls'"),
        (
            raw(index_doc(entry({"os": "linux"}, b"m"))),
            InvalidManifest,
            "index entry 0: platform object has no 'architecture'",
        ),
        (
            raw(index_doc(desc(mt.OCI_MANIFEST, b"m", platform="linux/amd64"))),
            InvalidManifest,
            "'platform' must be an object",
        ),
        (raw(image_doc(schemaVersion=3)), UnsupportedMediaType, "schemaVersion 3"),
        (
            raw({"mediaType": mt.OCI_CONFIG, "config": {}}),
            UnsupportedMediaType,
            "unsupported manifest media type",
        ),
    ],
)
def test_parse_manifest_rejects(data: bytes, error: type[Exception], problem: str) -> None:
    with pytest.raises(error) as info:
        parse_manifest(data)
    assert problem in str(info.value)


def test_descriptor_optional_fields_round_trip() -> None:
    obj = desc(
        mt.DOCKER_FOREIGN_LAYER_GZIP,
        b"l",
        urls=["https://mcr.microsoft.com/x"],
        annotations={"b": "2", "a": "1"},
        platform={"architecture": "amd64", "os": "windows", "os.version": "10.0.1"},
    )
    d = Descriptor.from_json(obj)
    assert d.urls == ("https://mcr.microsoft.com/x",)
    assert d.annotations == {"b": "2", "a": "1"}
    assert d.platform == Platform("windows", "amd64", None, "10.0.1")
    out = d.to_json()
    assert list(out) == ["mediaType", "digest", "size", "urls", "annotations", "platform"]
    assert out == obj


def test_descriptor_to_json_omits_empty_fields() -> None:
    d = Descriptor(mt.OCI_LAYER, LAYER, 5)
    assert d.to_json() == {"mediaType": mt.OCI_LAYER, "digest": str(LAYER), "size": 5}


def test_descriptor_annotations_are_read_only_and_hashable() -> None:
    source = {"k": "v"}
    d = Descriptor(mt.OCI_LAYER, LAYER, 5, annotations=source)
    source["k"] = "changed"
    assert d.annotations["k"] == "v"
    with pytest.raises(TypeError):
        d.annotations["k"] = "x"  # type: ignore[index]
    assert hash(d) == hash(Descriptor(mt.OCI_LAYER, LAYER, 5, annotations={"k": "v"}))
    assert d == Descriptor(mt.OCI_LAYER, LAYER, 5, annotations={"k": "v"})
    assert d != Descriptor(mt.OCI_LAYER, LAYER, 5)


def test_index_images_and_select() -> None:
    data = raw(
        index_doc(
            entry(AMD64, b"amd"),
            entry(UNKNOWN, b"att-amd", annotations=ATTESTATION),
            entry(ARM64, b"arm"),
            entry({"architecture": "arm64", "os": "linux"}, b"att2", annotations=ATTESTATION),
            entry(AMD64, b"amd-second"),
            entry(None, b"no-platform"),
        )
    )
    index = parse_manifest(data)
    assert isinstance(index, ImageIndex)
    assert index.raw == data
    assert index.digest == Digest.of(data)
    assert len(index.manifests) == 6
    assert [d.digest for d in index.images()] == [
        Digest.of(b"amd"),
        Digest.of(b"arm"),
        Digest.of(b"amd-second"),
        Digest.of(b"no-platform"),
    ]
    assert index.select(Platform.parse("linux/amd64")).digest == Digest.of(b"amd")
    assert index.select(Platform.parse("linux/aarch64")).digest == Digest.of(b"arm")
    assert index.select(Platform.parse("linux/arm64/v8")).digest == Digest.of(b"arm")


def test_select_unknown_platform_lists_available() -> None:
    index = parse_manifest(
        raw(
            index_doc(
                entry(AMD64, b"a"), entry(ARM64, b"b"), entry(AMD64, b"c"), entry(UNKNOWN, b"d")
            )
        )
    )
    assert isinstance(index, ImageIndex)
    with pytest.raises(PlatformNotFound) as info:
        index.select(Platform.parse("linux/s390x"))
    assert info.value.available == ("linux/amd64", "linux/arm64")
    assert str(info.value) == (
        f"no linux/s390x image in {index.digest}; available: linux/amd64, linux/arm64"
    )


def test_select_empty_index() -> None:
    index = parse_manifest(raw(index_doc()))
    assert isinstance(index, ImageIndex)
    assert index.images() == ()
    with pytest.raises(PlatformNotFound, match="no images"):
        index.select(Platform.parse("linux/amd64"))


CONFIG_DOC = {
    "architecture": "arm",
    "os": "linux",
    "variant": "v7",
    "config": {"Env": ["PATH=/bin"]},
    "rootfs": {"type": "layers", "diff_ids": [str(LAYER), str(CONFIG)]},
}


def test_parse_config() -> None:
    data = raw(CONFIG_DOC)
    config = parse_config(data)
    assert config.raw == data
    assert config.digest == Digest.of(data)
    assert (config.os, config.architecture, config.variant) == ("linux", "arm", "v7")
    assert config.diff_ids == (LAYER, CONFIG)
    assert config.platform == Platform.parse("linux/arm/v7")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"os": None}, "image config has no 'os'"),
        ({"architecture": None}, "image config has no 'architecture'"),
        ({"rootfs": None}, "image config has no 'rootfs'"),
        ({"rootfs": {"type": "layers"}}, "rootfs has no 'diff_ids'"),
        ({"rootfs": {"diff_ids": [1]}}, "diff_ids[0] must be a string"),
        ({"rootfs": {"diff_ids": ["sha256:x"]}}, "diff_ids[0]: invalid digest"),
        ({"variant": 7}, "'variant' must be a string"),
    ],
)
def test_parse_config_rejects(change: dict[str, Any], problem: str) -> None:
    doc = {**CONFIG_DOC, **change}
    doc = {k: v for k, v in doc.items() if v is not None}
    with pytest.raises(InvalidManifest) as info:
        parse_config(raw(doc))
    assert problem in str(info.value)


# --- mediatypes -------------------------------------------------------------------------------


def test_manifest_accept() -> None:
    assert mt.MANIFEST_ACCEPT == (
        mt.OCI_INDEX,
        mt.DOCKER_MANIFEST_LIST,
        mt.OCI_MANIFEST,
        mt.DOCKER_MANIFEST,
    )
    assert not any(mt.is_schema1(m) for m in mt.MANIFEST_ACCEPT)


@pytest.mark.parametrize(
    ("media_type", "index", "image", "schema1", "foreign", "layer", "compression"),
    [
        (mt.OCI_INDEX, True, False, False, False, False, None),
        (mt.DOCKER_MANIFEST_LIST, True, False, False, False, False, None),
        (mt.OCI_MANIFEST, False, True, False, False, False, None),
        (mt.DOCKER_MANIFEST + "; charset=utf-8", False, True, False, False, False, None),
        (mt.SCHEMA1_MANIFEST, False, False, True, False, False, None),
        (mt.SCHEMA1_SIGNED_MANIFEST, False, False, True, False, False, None),
        (mt.DOCKER_LAYER_GZIP, False, False, False, False, True, "gzip"),
        (mt.DOCKER_LAYER_ZSTD, False, False, False, False, True, "zstd"),
        (mt.DOCKER_LAYER, False, False, False, False, True, None),
        (mt.DOCKER_FOREIGN_LAYER_GZIP, False, False, False, True, True, "gzip"),
        (mt.DOCKER_FOREIGN_LAYER, False, False, False, True, True, None),
        (mt.OCI_LAYER, False, False, False, False, True, None),
        (mt.OCI_LAYER_GZIP.upper(), False, False, False, False, True, "gzip"),
        (mt.OCI_LAYER_ZSTD, False, False, False, False, True, "zstd"),
        (mt.OCI_NONDISTRIBUTABLE_LAYER, False, False, False, True, True, None),
        (mt.OCI_NONDISTRIBUTABLE_LAYER_GZIP, False, False, False, True, True, "gzip"),
        (mt.OCI_NONDISTRIBUTABLE_LAYER_ZSTD, False, False, False, True, True, "zstd"),
        (mt.OCI_CONFIG, False, False, False, False, False, None),
        (mt.IN_TOTO, False, False, False, False, False, None),
        ("application/json", False, False, False, False, False, None),
    ],
)
def test_predicates(
    *,
    media_type: str,
    index: bool,
    image: bool,
    schema1: bool,
    foreign: bool,
    layer: bool,
    compression: str | None,
) -> None:
    assert mt.is_index(media_type) is index
    assert mt.is_image_manifest(media_type) is image
    assert mt.is_manifest(media_type) is (index or image)
    assert mt.is_schema1(media_type) is schema1
    assert mt.is_foreign_layer(media_type) is foreign
    assert mt.is_layer(media_type) is layer
    assert mt.layer_compression(media_type) == compression


def test_config_and_constants() -> None:
    assert mt.is_config(mt.OCI_CONFIG)
    assert mt.is_config(mt.DOCKER_CONFIG)
    assert not mt.is_config(mt.OCI_MANIFEST)
    assert mt.OCI_EMPTY == "application/vnd.oci.empty.v1+json"
    assert mt.OCI_LAYOUT_HEADER == "application/vnd.oci.layout.header.v1+json"
    assert mt.base_media_type(" Application/JSON ; charset=utf-8") == "application/json"
    for name in mt.__all__:
        assert hasattr(mt, name)
