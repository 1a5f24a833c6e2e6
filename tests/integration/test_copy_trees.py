"""Manifest trees: each digest visited once, nesting capped, manifests pushed bottom-up.

Request counts come from the real registry's access log.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import imgmirror
from imgmirror.errors import InvalidManifest
from imgmirror.model.digest import Digest
from tests.support.images import Image, make_image, oci_index_with_attestations
from tests.support.registry import Registry
from tests.support.seed import RegistryClient as Seeder
from tests.support.tools import skopeo_digest, skopeo_inspect_raw

pytestmark = [pytest.mark.registry, pytest.mark.skopeo]

OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def index_of(entries: list[tuple[str, str, int]], times: int = 1) -> tuple[bytes, str]:
    """An OCI index listing each (media type, digest, size) ``times`` times."""
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": t, "digest": d, "size": s} for t, d, s in entries] * times,
    }
    raw = json.dumps(doc).encode()
    return raw, str(Digest.of(raw))


def seed_nested(registry: Registry, repo: str, image: Image, depth: int, times: int) -> str:
    """``depth`` indexes, each listing the one below ``times`` times; the top tagged ``t``."""
    with Seeder(registry) as seeder:
        seeder.push_image(repo, image)
        below = (image.media_type, image.digest, image.size)
        for _ in range(depth):
            raw, digest = index_of([below], times)
            seeder.push_manifest(repo, digest, raw, OCI_INDEX)
            below = (OCI_INDEX, digest, len(raw))
        seeder.push_manifest(repo, "t", raw, OCI_INDEX)
    return digest


def manifest_requests(registry: Registry, since: int, method: str) -> int:
    return sum(
        1 for m, path, _ in registry.requests()[since:] if m == method and "/manifests/" in path
    )


def test_repeated_children_are_fetched_and_pushed_once(anon_registry, relative_registry):
    image = make_image(marker="repeat")
    top = seed_nested(anon_registry, "app", image, depth=4, times=10)
    before_src, before_dst = len(anon_registry.requests()), len(relative_registry.requests())

    result = imgmirror.copy(anon_registry.ref("app", "t"), relative_registry.ref("b", "t"))

    assert result.digest == top
    assert manifest_requests(anon_registry, before_src, "GET") == 5  # 4 indexes + the image
    assert manifest_requests(relative_registry, before_dst, "PUT") == 5
    assert skopeo_digest(relative_registry.ref("b", "t"), relative_registry) == top


def test_three_level_nested_index_is_copied_bottom_up(anon_registry, relative_registry):
    inner = oci_index_with_attestations("three")
    with Seeder(anon_registry) as seeder:
        seeder.push_index("app", inner)
        middle, middle_digest = index_of([(inner.media_type, inner.digest, inner.size)])
        seeder.push_manifest("app", middle_digest, middle, OCI_INDEX)
        outer, outer_digest = index_of([(OCI_INDEX, middle_digest, len(middle))])
        seeder.push_manifest("app", "nested", outer, OCI_INDEX)

    result = imgmirror.copy(anon_registry.ref("app", "nested"), relative_registry.ref("a", "n"))

    assert result.digest == outer_digest
    assert skopeo_digest(relative_registry.ref("a", "n"), relative_registry) == outer_digest
    for digest, raw in ((middle_digest, middle), (inner.digest, inner.manifest)):
        assert skopeo_inspect_raw(relative_registry.ref("a", digest), relative_registry) == raw


def test_indexes_nested_too_deep_are_refused(anon_registry, relative_registry):
    seed_nested(anon_registry, "app", make_image(marker="deep"), depth=10, times=1)

    with pytest.raises(InvalidManifest, match="levels deep"):
        imgmirror.copy(anon_registry.ref("app", "t"), relative_registry.ref("b", "t"))

    assert not any(m == "PUT" for m, _, _ in relative_registry.requests())


def test_push_of_repeated_children_stores_each_manifest_once(
    anon_registry, relative_registry, tmp_path: Path
):
    image = make_image(marker="push-repeat")
    top = seed_nested(anon_registry, "app", image, depth=4, times=10)
    archive = tmp_path / "nested.tar"
    imgmirror.save([anon_registry.ref("app", "t")], archive, format="oci")
    before = len(relative_registry.requests())

    result = imgmirror.push(archive, relative_registry.ref("b", "t"))

    assert result.images == (imgmirror.PushedImage(relative_registry.ref("b", "t"), top),)
    assert manifest_requests(relative_registry, before, "PUT") == 5
    assert skopeo_digest(relative_registry.ref("b", "t"), relative_registry) == top
