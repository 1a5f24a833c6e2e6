"""imgmirror.copy against the real distribution registry, checked with skopeo."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

import imgmirror
from imgmirror import ClientOptions
from tests.support.images import (
    make_image,
    multiarch_docker_list,
    oci_index_with_attestations,
    pause_image,
)
from tests.support.registry import Registry
from tests.support.seed import RegistryClient as Seeder
from tests.support.seed import seed
from tests.support.tools import SkopeoError, skopeo_digest, skopeo_inspect_raw

pytestmark = [pytest.mark.registry, pytest.mark.skopeo]


def tls(registry: Registry) -> ClientOptions:
    return ClientOptions(ca_file=str(registry.ca_file)) if registry.tls else ClientOptions()


def test_manifest_list_copied_whole_digest_unchanged(anon_registry, relative_registry):
    index = multiarch_docker_list("whole")
    source_digest = seed(anon_registry, "google_containers/pause", "3.9", index)

    result = imgmirror.copy(
        anon_registry.ref("google_containers/pause", "3.9"),
        relative_registry.ref("mirror/pause", "3.9"),
    )

    assert result.digest == source_digest == index.digest
    assert skopeo_digest(relative_registry.ref("mirror/pause", "3.9"), relative_registry) == (
        index.digest
    )
    for image in index.images:
        raw = skopeo_inspect_raw(
            relative_registry.ref("mirror/pause", image.digest), relative_registry
        )
        assert raw == image.manifest
    assert result.platforms == ("linux/amd64", "linux/arm64", "linux/arm/v7", "linux/ppc64le")
    assert result.blobs_copied == len(index.blobs)
    assert result.bytes_copied == sum(b.size for b in index.blobs)
    assert result.manifests_pushed == 5


def test_token_source_to_basic_tls_destination(token_registry, basic_registry, pause_binary):
    image = pause_image(pause_binary)
    seed(token_registry, "google_containers/pause", "3.9", image, creds=("pusher", "pushpass"))

    result = imgmirror.copy(
        f"{token_registry.host}/google_containers/pause:3.9",
        f"{basic_registry.host}/tdongsi/pause:3.9",
        dest_creds="alice:secret",
        options=tls(basic_registry),
    )

    assert result.digest == image.digest
    assert skopeo_digest(f"{basic_registry.host}/tdongsi/pause:3.9", basic_registry) == (
        image.digest
    )
    # Anonymous pull was enough for the source: the token server saw no credentials.
    assert token_registry.token_server is not None


def test_one_platform_copies_that_child_unchanged(anon_registry, token_registry):
    index = oci_index_with_attestations("plat")
    seed(anon_registry, "app", "1", index)
    arm = index.image_for("linux/arm64")

    result = imgmirror.copy(
        anon_registry.ref("app", "1"),
        token_registry.ref("app", "arm"),
        platforms=["linux/aarch64"],
        dest_creds=("pusher", "pushpass"),
    )

    assert result.digest == arm.digest
    assert skopeo_inspect_raw(token_registry.ref("app", "arm"), token_registry) == arm.manifest
    assert result.blobs_copied == len(arm.blobs)


def test_oci_index_with_attestations_copied_whole(anon_registry, relative_registry):
    index = oci_index_with_attestations("att")
    seed(anon_registry, "app", "2", index)

    result = imgmirror.copy(anon_registry.ref("app", "2"), relative_registry.ref("app", "2"))

    assert result.digest == index.digest
    assert skopeo_digest(relative_registry.ref("app", "2"), relative_registry) == index.digest
    for attestation in index.attestations:
        raw = skopeo_inspect_raw(
            relative_registry.ref("app", attestation.digest), relative_registry
        )
        assert raw == attestation.manifest


def test_two_platforms_make_a_new_index(anon_registry):
    index = multiarch_docker_list("two")
    seed(anon_registry, "app", "3", index)

    result = imgmirror.copy(
        anon_registry.ref("app", "3"),
        anon_registry.ref("subset", "3"),
        platforms=["linux/amd64", "linux/arm/v7"],
    )

    raw = skopeo_inspect_raw(anon_registry.ref("subset", "3"), anon_registry)
    listed = [m["digest"] for m in json.loads(raw)["manifests"]]
    assert listed == [index.image_for("linux/amd64").digest, index.image_for("linux/arm/v7").digest]
    assert result.digest != index.digest


def test_copy_to_a_new_tag_moves_no_blob(anon_registry, relative_registry):
    index = multiarch_docker_list("again")
    seed(anon_registry, "app", "1", index)
    src = anon_registry.ref("app", "1")
    imgmirror.copy(src, relative_registry.ref("app", "1"))

    again = imgmirror.copy(src, relative_registry.ref("app", "2"))

    assert not again.unchanged
    assert again.blobs_copied == 0
    assert again.bytes_copied == 0
    assert again.blobs_skipped == len(index.blobs)
    assert again.digest == index.digest


def test_same_registry_mounts_blobs(token_registry):
    image = make_image(marker="mount")
    seed(token_registry, "origin/app", "1", image, creds=("pusher", "pushpass"))

    result = imgmirror.copy(
        token_registry.ref("origin/app", "1"),
        token_registry.ref("other/app", "1"),
        dest_creds="pusher:pushpass",
    )

    assert result.blobs_mounted == len(image.blobs)
    assert result.blobs_copied == 0
    assert skopeo_digest(token_registry.ref("other/app", "1"), token_registry) == image.digest


def test_destination_without_tag_keeps_source_tag(anon_registry):
    image = make_image(marker="keep")
    seed(anon_registry, "app", "v7", image)

    result = imgmirror.copy(anon_registry.ref("app", "v7"), f"{anon_registry.host}/copy/app")

    assert result.destination == f"{anon_registry.host}/copy/app:v7"
    assert skopeo_digest(anon_registry.ref("copy/app", "v7"), anon_registry) == image.digest


def test_copy_by_digest(anon_registry, relative_registry):
    image = make_image(marker="bydigest")
    seed(anon_registry, "app", None, image)

    result = imgmirror.copy(
        f"{anon_registry.host}/app@{image.digest}", relative_registry.ref("app", "pinned")
    )

    assert result.digest == image.digest


def corrupt_blob(registry: Registry, digest: str) -> None:
    hexpart = digest.split(":", 1)[1]
    data: Path = (
        registry.storage_dir / "docker/registry/v2/blobs/sha256" / hexpart[:2] / hexpart / "data"
    )
    content = bytearray(data.read_bytes())
    content[len(content) // 2] ^= 0xFF
    data.write_bytes(bytes(content))


def test_corrupt_source_blob_aborts_before_tagging(anon_registry, relative_registry):
    image = make_image(marker="corrupt")
    seed(anon_registry, "app", "1", image)
    corrupt_blob(anon_registry, image.layers[-1].digest)

    with pytest.raises(imgmirror.VerificationError) as caught:
        imgmirror.copy(anon_registry.ref("app", "1"), relative_registry.ref("app", "1"))

    assert image.layers[-1].digest in str(caught.value)
    with pytest.raises(SkopeoError):
        skopeo_inspect_raw(relative_registry.ref("app", "1"), relative_registry)


def test_wrong_destination_password_is_an_authentication_error(anon_registry, basic_registry):
    seed(anon_registry, "app", "1", make_image(marker="auth"))

    with pytest.raises(imgmirror.AuthenticationError) as caught:
        imgmirror.copy(
            anon_registry.ref("app", "1"),
            f"{basic_registry.host}/app:1",
            dest_creds="alice:wrong-password",
            options=tls(basic_registry),
        )

    assert "wrong-password" not in str(caught.value)
    assert "credentials" in str(caught.value)


def test_missing_tag_is_not_found(anon_registry):
    with pytest.raises(imgmirror.NotFound) as caught:
        imgmirror.copy(anon_registry.ref("nothing/here", "1"), anon_registry.ref("x", "1"))
    assert "nothing/here:1" in str(caught.value)


def test_unknown_platform_lists_the_available_ones(anon_registry):
    seed(anon_registry, "app", "1", multiarch_docker_list("avail"))

    with pytest.raises(imgmirror.PlatformNotFound) as caught:
        imgmirror.copy(
            anon_registry.ref("app", "1"), anon_registry.ref("y", "1"), platforms=["linux/s390x"]
        )

    assert "linux/arm64" in str(caught.value)


def test_ipv6_loopback_registry(registry_factory, anon_registry):
    v6 = registry_factory(name="v6", bind="::1")
    image = make_image(marker="v6")
    seed(anon_registry, "app", "1", image)

    result = imgmirror.copy(anon_registry.ref("app", "1"), f"{v6.host}/app:1")

    assert v6.host.startswith("[::1]:")
    assert result.digest == image.digest
    # skopeo 1.9 cannot parse IPv6 references; read the manifest back with plain httpx.
    served = httpx.get(f"http://{v6.host}/v2/app/manifests/1", headers={"Accept": image.media_type})
    assert served.content == image.manifest


def test_index_of_indexes_is_copied_whole(anon_registry, relative_registry):
    # The image builders make flat indexes; this one nests an index by hand.

    inner = oci_index_with_attestations("nested")
    oci_index = "application/vnd.oci.image.index.v1+json"
    outer_doc = {
        "schemaVersion": 2,
        "mediaType": oci_index,
        "manifests": [
            {"mediaType": inner.media_type, "digest": inner.digest, "size": inner.size},
        ],
    }
    outer = json.dumps(outer_doc).encode()
    with Seeder(anon_registry) as seeder:
        seeder.push_index("app", inner)
        outer_digest = seeder.push_manifest("app", "nested", outer, oci_index)

    result = imgmirror.copy(anon_registry.ref("app", "nested"), relative_registry.ref("a", "n"))

    assert result.digest == outer_digest
    assert skopeo_digest(relative_registry.ref("a", "n"), relative_registry) == outer_digest
    for image in inner.images:
        raw = skopeo_inspect_raw(relative_registry.ref("a", image.digest), relative_registry)
        assert raw == image.manifest
