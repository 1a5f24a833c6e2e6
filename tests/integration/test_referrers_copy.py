"""copy --referrers against the real registry (fallback tag, cosign tags) and the referrers
API front (tests/support/referrers_front.py), with artifacts signed by the tests."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import pytest

import imgmirror
from imgmirror.errors import InvalidArtifactType, ReferrerError
from tests.support.images import OCI_INDEX, make_image, make_index
from tests.support.referrer_world import (
    REPO,
    check_signature,
    fallback,
    manifest_at,
    referrers_index,
    seed_world,
    tags_at,
)
from tests.support.referrers_front import ReferrersFront
from tests.support.registry import Registry, RegistryFactory
from tests.support.seed import RegistryClient
from tests.support.signing import (
    attestation_artifact,
    cosign_signature,
    new_key,
    sbom_artifact,
)
from tests.support.tools import run_cli


@pytest.fixture
def fronts(registry_factory: RegistryFactory) -> Iterator[tuple[ReferrersFront, ReferrersFront]]:
    source = ReferrersFront(registry_factory(name="api-src"), page_size=1)
    destination = ReferrersFront(registry_factory(name="api-dst"))
    try:
        yield source, destination
    finally:
        source.stop()
        destination.stop()


def test_copy_carries_referrers_by_fallback_and_cosign_tags(
    registry_factory: RegistryFactory,
) -> None:
    src, dst = registry_factory(name="src"), registry_factory(name="dst")
    world = seed_world(src, fallback_tags=True)
    result = imgmirror.copy(src.ref(REPO, "3.9"), dst.ref(REPO, "3.9"), referrers=True)
    assert result.digest == world.image.digest
    assert result.referrers is not None
    copied = {str(r.digest) for r in result.referrers.copied}
    assert copied == {a.digest for a in (world.sig, world.sbom, world.att, world.sbom_sig)}
    check_signature(dst, world, result.digest)
    image_index = json.loads(manifest_at(dst, fallback(world.image.digest)))
    assert {m["digest"] for m in image_index["manifests"]} == {world.sbom.digest, world.att.digest}
    sbom_index = json.loads(manifest_at(dst, fallback(world.sbom.digest)))
    assert [m["digest"] for m in sbom_index["manifests"]] == [world.sbom_sig.digest]
    for artifact in (world.sbom, world.att, world.sbom_sig):
        assert manifest_at(dst, artifact.digest) == artifact.manifest
    assert result.to_json()["referrers"]["fallback_tags"]  # type: ignore[index]
    # a repeat copy of the unchanged image still carries a referrer added since
    later = sbom_artifact(world.image.descriptor(with_platform=False), name="later")
    with RegistryClient(src) as client:
        client.push_image(REPO, later)
        index = referrers_index(world.sbom, world.att, later)
        client.push_manifest(REPO, fallback(world.image.digest), index, OCI_INDEX)
    again = imgmirror.copy(src.ref(REPO, "3.9"), dst.ref(REPO, "3.9"), referrers="sbom")
    assert (again.blobs_copied, again.blobs_skipped) == (0, len(world.image.blobs))
    image_index = json.loads(manifest_at(dst, fallback(world.image.digest)))
    assert later.digest in {m["digest"] for m in image_index["manifests"]}


def test_copy_through_the_referrers_api(fronts: tuple[ReferrersFront, ReferrersFront]) -> None:
    source, destination = fronts
    world = seed_world(source.as_registry(), fallback_tags=False)
    result = imgmirror.copy(
        source.ref(REPO, "3.9"), destination.ref(REPO, "3.9"), referrers=["sig", "sbom"]
    )
    assert result.referrers is not None
    copied = {str(r.digest) for r in result.referrers.copied}
    assert copied == {world.sig.digest, world.sbom.digest, world.sbom_sig.digest}  # no att
    assert result.referrers.fallback_tags == ()
    assert ("GET", f"/v2/{REPO}/referrers/{world.image.digest}") in source.requests
    # the destination indexed them itself (OCI-Subject): no fallback tag was written
    assert tags_at(destination.upstream) == {"3.9", world.sig_tag}
    listed = destination.referrers[(REPO, world.image.digest)]
    assert [e["digest"] for e in listed] == [world.sbom.digest]
    check_signature(destination.as_registry(), world, world.image.digest)


def test_foreign_entry_in_the_destination_fallback_index_stays(
    registry_factory: RegistryFactory,
) -> None:
    src, dst = registry_factory(name="src"), registry_factory(name="dst")
    world = seed_world(src, fallback_tags=True)
    foreign = attestation_artifact(world.image.descriptor(with_platform=False), name="foreign")
    with RegistryClient(dst) as client:
        client.push_image(REPO, foreign)
        index = referrers_index(foreign)
        client.push_manifest(REPO, fallback(world.image.digest), index, OCI_INDEX)
    imgmirror.copy(src.ref(REPO, "3.9"), dst.ref(REPO, "3.9"), referrers="sbom")
    index = json.loads(manifest_at(dst, fallback(world.image.digest)))
    assert [m["digest"] for m in index["manifests"]] == [foreign.digest, world.sbom.digest]
    assert world.sig_tag not in tags_at(dst)  # sig was not asked for


def test_unknown_artifact_type_is_refused_before_anything_moves(anon_registry: Registry) -> None:
    with pytest.raises(InvalidArtifactType, match="unknown artifact type 'signatures'"):
        imgmirror.copy(
            anon_registry.ref(REPO, "3.9"), anon_registry.ref("b", "1"), referrers="signatures"
        )
    result = run_cli(
        "copy", anon_registry.ref(REPO, "3.9"), anon_registry.ref("b", "1"), "--referrers=sbm"
    )
    assert result.returncode == 1
    assert "unknown artifact type 'sbm'" in result.stderr
    assert "Traceback" not in result.stderr


def test_fallback_tag_holding_an_image_fails_and_tags_nothing(
    registry_factory: RegistryFactory,
) -> None:
    src, dst = registry_factory(name="src"), registry_factory(name="dst")
    world = seed_world(src, fallback_tags=False)
    with RegistryClient(src) as client:
        client.push_image(REPO, world.image, fallback(world.image.digest))
    with pytest.raises(ReferrerError, match="not a referrers index"):
        imgmirror.copy(src.ref(REPO, "3.9"), dst.ref(REPO, "3.9"), referrers=True)
    assert tags_at(dst) == set()
    # at the destination: refused, left unchanged (the image itself is in)
    clean = registry_factory(name="clean")
    seed_world(clean, fallback_tags=True)
    with RegistryClient(dst) as client:
        client.push_image(REPO, world.image, fallback(world.image.digest))
    with pytest.raises(ReferrerError, match="left unchanged"):
        imgmirror.copy(clean.ref(REPO, "3.9"), dst.ref(REPO, "3.9"), referrers="sbom")
    assert manifest_at(dst, fallback(world.image.digest)) == world.image.manifest


def test_referrers_answer_that_is_not_an_index(
    fronts: tuple[ReferrersFront, ReferrersFront],
) -> None:
    source, destination = fronts
    world = seed_world(source.as_registry(), fallback_tags=False)
    source.override_referrers = world.image.manifest
    with pytest.raises(ReferrerError, match="not an OCI index"):
        imgmirror.copy(source.ref(REPO, "3.9"), destination.ref(REPO, "3.9"), referrers=True)
    assert tags_at(destination.upstream) == set()


def test_cycle_is_refused(registry_factory: RegistryFactory) -> None:
    src, dst = registry_factory(name="src"), registry_factory(name="dst")
    world = seed_world(src, fallback_tags=False)
    with RegistryClient(src) as client:  # the image "signs" itself
        client.push_image(REPO, world.image, world.sig_tag)
    with pytest.raises(ReferrerError, match="cycle"):
        imgmirror.copy(src.ref(REPO, "3.9"), dst.ref(REPO, "3.9"), referrers=True)
    assert tags_at(dst) == set()


def test_referrer_with_a_missing_blob_fails_unless_optional(
    registry_factory: RegistryFactory,
) -> None:
    src, dst = registry_factory(name="src"), registry_factory(name="dst")
    world = seed_world(src, fallback_tags=True)
    layer = world.att.layers[0].digest
    with RegistryClient(src) as client:
        client._check(client.request("DELETE", f"/v2/{REPO}/blobs/{layer}", push=True), 202)
    with pytest.raises(ReferrerError, match=f"referrer {world.att.digest}.*was not copied"):
        imgmirror.copy(src.ref(REPO, "3.9"), dst.ref(REPO, "3.9"), referrers=True)
    result = run_cli(
        "copy",
        src.ref(REPO, "3.9"),
        dst.ref(REPO, "2"),
        "--referrers",
        "--referrers-optional",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["digest"] == world.image.digest
    (failure,) = out["referrers"]["failed"]
    assert world.att.digest in failure
    assert "referrer" in result.stderr
    assert hashlib.sha256(manifest_at(dst, "2")).hexdigest() == world.image.digest.split(":")[1]


def test_referrers_command_lists_a_tree(anon_registry: Registry) -> None:
    world = seed_world(anon_registry, fallback_tags=True)
    result = run_cli("referrers", anon_registry.ref(REPO, "3.9"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].endswith(world.image.digest)
    sbom = next(i for i, line in enumerate(lines) if world.sbom.digest in line)
    assert "application/spdx+json" in lines[sbom]
    assert "org.opencontainers.image.created=2026-01-01T00:00:00Z" in lines[sbom + 1]
    nested = next(line for line in lines if world.sbom_sig.digest in line)
    assert nested.startswith("│   └── application/vnd.dev.cosign.artifact.sig.v1+json")
    assert f"(tag {world.sig_tag})" in result.stdout
    result = run_cli("referrers", anon_registry.ref(REPO, "3.9"), "--type", "sbom", "--json")
    (subject,) = json.loads(result.stdout.strip().splitlines()[-1])["subjects"]
    (sbom_node,) = subject["referrers"]
    assert sbom_node["digest"] == world.sbom.digest
    assert sbom_node["referrers"] == []  # its signature is not an sbom
    result = run_cli("referrers", anon_registry.ref(REPO, "3.9"), "--type", "sigs")
    assert result.returncode == 1
    assert result.stderr.startswith("imgmirror: error: unknown artifact type 'sigs'")


def test_referrers_of_index_children_travel_too(
    fronts: tuple[ReferrersFront, ReferrersFront], registry_factory: RegistryFactory
) -> None:
    source, destination = fronts
    arm = make_image(fmt="oci", platform="linux/arm64", marker="idx")
    amd = make_image(fmt="oci", platform="linux/amd64", marker="idx")
    index = make_index([amd, arm], fmt="oci")
    key = new_key()
    sig = cosign_signature(index.digest, f"example.invalid/{REPO}", key)
    arm_sbom = sbom_artifact(arm.descriptor(with_platform=False), name="arm")
    with RegistryClient(source.as_registry()) as client:
        client.push_index(REPO, index, "multi")
        client.push_image(REPO, sig, fallback(index.digest) + ".sig")
        client.push_image(REPO, arm_sbom)
    result = imgmirror.copy(
        source.ref(REPO, "multi"), destination.ref(REPO, "multi"), referrers=True
    )
    assert result.referrers is not None
    assert {str(r.digest) for r in result.referrers.copied} == {sig.digest, arm_sbom.digest}
    assert destination.referrers[(REPO, arm.digest)][0]["digest"] == arm_sbom.digest
    # one platform: only that child's referrers (the index is not copied, nor its signature)
    plain = registry_factory(name="plain")
    single = imgmirror.copy(
        source.ref(REPO, "multi"),
        plain.ref(REPO, "arm"),
        platforms=["linux/arm64"],
        referrers="sbom",
    )
    assert single.referrers is not None
    assert [str(r.digest) for r in single.referrers.copied] == [arm_sbom.digest]
    listed = json.loads(manifest_at(plain, fallback(arm.digest)))["manifests"]
    assert [m["digest"] for m in listed] == [arm_sbom.digest]


def test_inspect_lists_the_referrers_tree(anon_registry: Registry) -> None:
    world = seed_world(anon_registry, fallback_tags=True)
    listed = run_cli("referrers", anon_registry.ref(REPO, "3.9")).stdout.splitlines()
    result = run_cli("inspect", anon_registry.ref(REPO, "3.9"), "--referrers")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"  digest      {world.image.digest}" in lines
    tree = lines[lines.index("  referrers:") + 1 :]
    assert tree == ["  " + line for line in listed[1:]]  # the same rendering, indented
    assert any(world.sbom.digest in line and "application/spdx+json" in line for line in tree)
    result = run_cli("inspect", anon_registry.ref(REPO, "3.9"), "--referrers=sig", "--json")
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["digest"] == world.image.digest
    (subject,) = out["referrers"]
    assert [r["digest"] for r in subject["referrers"]] == [world.sig.digest]
    plain = run_cli("inspect", anon_registry.ref(REPO, "3.9"))
    assert "referrers" not in plain.stdout
