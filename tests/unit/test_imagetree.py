"""The pure tree logic: bottom-up order, each digest once, the nesting cap."""

from __future__ import annotations

import json

import pytest

from imgmirror.errors import InvalidManifest
from imgmirror.model.digest import Digest
from imgmirror.model.imagetree import MAX_INDEX_DEPTH, bottom_up, check_depth, choose_children
from imgmirror.model.manifest import ImageIndex, ImageManifest, parse_manifest

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def image(marker: str) -> ImageManifest:
    blob = {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2}
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {**blob, "digest": str(Digest.of(marker.encode()))},
        "layers": [],
    }
    parsed = parse_manifest(json.dumps(doc).encode())
    assert isinstance(parsed, ImageManifest)
    return parsed


def index(*children: ImageManifest | ImageIndex, times: int = 1) -> ImageIndex:
    entries = [
        {"mediaType": c.media_type, "digest": str(c.digest), "size": len(c.raw)} for c in children
    ]
    doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries * times}
    parsed = parse_manifest(json.dumps(doc).encode())
    assert isinstance(parsed, ImageIndex)
    return parsed


def test_every_manifest_comes_after_what_it_references():
    a, b = image("a"), image("b")
    inner = index(a, b)
    middle = index(inner, a)
    top = index(middle, b)

    order = bottom_up(top, [middle, inner, b, a])  # given top-down: the order that broke

    position = {m.digest: i for i, m in enumerate(order)}
    assert len(order) == 4
    assert position[a.digest] < position[inner.digest] < position[middle.digest]
    assert position[b.digest] < position[inner.digest]


def test_repeated_entries_appear_once():
    a = image("a")
    level1 = index(a, times=10)
    level2 = index(level1, times=10)

    assert bottom_up(level2, [level1, a, level1, a]) == (a, level1)
    assert [d.digest for d in choose_children(level2, None)] == [level1.digest]


def test_nesting_is_capped():
    check_depth(MAX_INDEX_DEPTH, image("a").digest)
    with pytest.raises(InvalidManifest, match="levels deep"):
        check_depth(MAX_INDEX_DEPTH + 1, image("a").digest)
