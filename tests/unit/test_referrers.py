"""Pure referrer values: artifact filters, tag names, referrers indexes and the bounded walk."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from imgmirror.errors import InvalidArtifactType, ReferrerError
from imgmirror.model import mediatypes
from imgmirror.model.artifacts import ArtifactFilter, artifact_kind, cosign_tag, fallback_tag
from imgmirror.model.digest import Digest
from imgmirror.model.manifest import Descriptor
from imgmirror.model.referrers import (
    Referrer,
    artifact_type_of,
    merge_fallback_index,
    referrer_entry,
    referrers_from_index,
    subject_of,
    walk_referrers,
)

SUBJECT = Digest.of(b"image")
SPDX = "application/spdx+json"


def _manifest(artifact_type: str | None = SPDX, subject: Digest | None = SUBJECT) -> bytes:
    doc: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": mediatypes.OCI_MANIFEST,
        "config": {"mediaType": mediatypes.OCI_EMPTY, "digest": str(Digest.of(b"{}")), "size": 2},
        "layers": [],
        "annotations": {"org.example": "yes"},
    }
    if artifact_type:
        doc["artifactType"] = artifact_type
    if subject:
        doc["subject"] = {
            "mediaType": mediatypes.OCI_MANIFEST,
            "digest": str(subject),
            "size": 5,
        }
    return json.dumps(doc).encode()


def _index(*entries: dict[str, object], media_type: str = mediatypes.OCI_INDEX) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": media_type, "manifests": entries}).encode()


def test_tag_names_follow_the_fallback_schema_and_cosign() -> None:
    assert fallback_tag(SUBJECT) == f"sha256-{SUBJECT.hex}"
    assert cosign_tag(SUBJECT, "sig") == f"sha256-{SUBJECT.hex}.sig"
    assert cosign_tag(SUBJECT, "sbom").endswith(".sbom")
    with pytest.raises(InvalidArtifactType):
        cosign_tag(SUBJECT, "sgn")


@pytest.mark.parametrize(
    ("value", "names"),
    [
        (True, ()),
        ("all", ()),
        ("sig,att", ("sig", "att")),
        (["SBOM", "sig", "sbom"], ("sbom", "sig")),
        ("application/spdx+json", ("application/spdx+json",)),
    ],
)
def test_filter_parses_short_names_and_media_types(
    value: bool | str | Sequence[str], names: tuple[str, ...]
) -> None:
    parsed = ArtifactFilter.parse(value)
    assert parsed is not None
    assert parsed.names == names


@pytest.mark.parametrize("value", [None, False, "", [], " , "])
def test_filter_off(value: bool | str | Sequence[str] | None) -> None:
    assert ArtifactFilter.parse(value) is None


@pytest.mark.parametrize("value", ["signature", "sig,bogus", "not a/type", "x/"])
def test_unknown_artifact_type_names_are_refused(value: str) -> None:
    with pytest.raises(InvalidArtifactType, match="unknown artifact type") as info:
        ArtifactFilter.parse(value)
    assert "sig, att, sbom" in str(info.value)


def test_filter_matches_kinds_and_cosign_suffixes() -> None:
    sig = ArtifactFilter.parse("sig")
    assert sig is not None
    assert sig.wants("application/vnd.dev.cosign.artifact.sig.v1+json")
    assert sig.wants("application/vnd.cncf.notary.signature")
    assert not sig.wants(SPDX)
    assert sig.cosign_suffixes() == ("sig",)
    sbom = ArtifactFilter.parse(SPDX)
    assert sbom is not None
    assert sbom.wants("application/SPDX+json; charset=utf-8")
    assert not sbom.wants("application/vnd.cyclonedx+json")
    assert sbom.cosign_suffixes() == ("sbom",)
    everything = ArtifactFilter.parse(True)
    assert everything is not None
    assert everything.wants("application/x-anything")
    assert everything.cosign_suffixes() == ("sig", "att", "sbom")
    assert artifact_kind("application/vnd.in-toto.provenance+json") == "att"
    assert artifact_kind("application/x-unknown") is None


def test_referrers_index_is_parsed_and_non_indexes_refused() -> None:
    raw = _manifest()
    entry = referrer_entry(raw, mediatypes.OCI_MANIFEST)
    assert entry["artifactType"] == SPDX
    assert entry["annotations"] == {"org.example": "yes"}
    (found,) = referrers_from_index(_index(entry), SUBJECT, "referrers")
    assert found.digest == Digest.of(raw)
    assert found.artifact_type == SPDX
    assert found.subject == SUBJECT
    assert found.to_json()["annotations"] == {"org.example": "yes"}
    with pytest.raises(ReferrerError, match="not an OCI index"):
        referrers_from_index(raw, SUBJECT, "tag sha256-x")
    with pytest.raises(ReferrerError, match="not JSON"):
        referrers_from_index(b"<html>", SUBJECT, "referrers")
    blob = {"mediaType": "application/octet-stream", "digest": str(SUBJECT), "size": 1}
    with pytest.raises(ReferrerError, match="not a manifest"):
        referrers_from_index(_index(blob), SUBJECT, "referrers")


def test_subject_and_artifact_type_of_manifests() -> None:
    assert subject_of(_manifest()) == SUBJECT
    assert subject_of(_manifest(subject=None)) is None
    with pytest.raises(ReferrerError):
        subject_of(b'{"subject": "sha256:zz"}')
    assert artifact_type_of(_manifest(None), mediatypes.OCI_MANIFEST) == mediatypes.OCI_EMPTY
    cosign = {
        "config": {"mediaType": mediatypes.OCI_CONFIG},
        "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json"}],
    }
    raw = json.dumps(cosign).encode()
    assert artifact_type_of(raw, mediatypes.OCI_MANIFEST).endswith("simplesigning.v1+json")


def test_merge_keeps_foreign_entries_and_adds_once() -> None:
    ours = referrer_entry(_manifest(), mediatypes.OCI_MANIFEST)
    foreign = {
        "mediaType": mediatypes.OCI_MANIFEST,
        "digest": str(Digest.of(b"foreign")),
        "size": 9,
        "artifactType": "application/x-foreign",
        "annotations": {"keep": "me"},
    }
    existing = _index(foreign)
    merged = merge_fallback_index(existing, [ours], "tag")
    assert merged is not None
    entries = json.loads(merged)["manifests"]
    assert entries == [foreign, ours]
    assert merge_fallback_index(merged, [ours], "tag") is None  # already there
    fresh = merge_fallback_index(None, [ours], "tag")
    assert fresh is not None
    assert json.loads(fresh)["mediaType"] == mediatypes.OCI_INDEX
    with pytest.raises(ReferrerError, match="not an OCI index"):
        merge_fallback_index(_manifest(), [ours], "tag sha256-x")


def _ref(name: str, subject: Digest) -> Referrer:
    digest = Digest.of(name.encode())
    return Referrer(Descriptor(mediatypes.OCI_MANIFEST, digest, 1), SPDX, subject)


def test_walk_follows_referrers_of_referrers_bounded_in_depth() -> None:
    sbom = _ref("sbom", SUBJECT)
    sig = _ref("sig", sbom.digest)
    deeper = _ref("deeper", sig.digest)
    graph = {SUBJECT: [sbom], sbom.digest: [sig], sig.digest: [deeper]}
    asked: list[Digest] = []

    def lookup(digest: Digest) -> list[Referrer]:
        asked.append(digest)
        return graph.get(digest, [])

    (node,) = walk_referrers([SUBJECT], lookup, max_depth=2)
    assert [n.referrer for n in node.walk()] == [sbom, sig]
    assert asked == [SUBJECT, sbom.digest]  # nothing asked below the depth bound
    (full,) = walk_referrers([SUBJECT], lookup)
    assert [n.referrer for n in full.walk()] == [sbom, sig, deeper]


def test_walk_refuses_cycles_and_visits_each_digest_once() -> None:
    sbom = _ref("sbom", SUBJECT)
    back = Referrer(Descriptor(mediatypes.OCI_MANIFEST, SUBJECT, 1), SPDX, sbom.digest)
    graph = {SUBJECT: [sbom], sbom.digest: [back]}
    with pytest.raises(ReferrerError, match="cycle"):
        walk_referrers([SUBJECT], lambda d: graph.get(d, []))
    other = Digest.of(b"child")
    shared = _ref("shared", SUBJECT)
    graph2 = {SUBJECT: [shared], other: [shared]}
    nodes = walk_referrers([SUBJECT, other], lambda d: graph2.get(d, []))
    assert [n.referrer for n in nodes] == [shared]
    many = {SUBJECT: [_ref(str(i), SUBJECT) for i in range(5)]}
    with pytest.raises(ReferrerError, match="more than 3"):
        walk_referrers([SUBJECT], lambda d: many.get(d, []), limit=3)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["copy", "a", "b", "--referrers"], ["copy", "a", "b", "--referrers=all"]),
        (["copy", "--referrers", "--json", "a"], ["copy", "--referrers=all", "--json", "a"]),
        (["copy", "--referrers", "sig,sbom", "a"], ["copy", "--referrers", "sig,sbom", "a"]),
        (
            ["copy", "--referrers", "reg:5000/x:1", "b"],
            ["copy", "--referrers=all", "reg:5000/x:1", "b"],
        ),
        (["copy", "--referrers=att", "a"], ["copy", "--referrers=att", "a"]),
        (["copy", "--", "--referrers"], ["copy", "--", "--referrers"]),
    ],
)
def test_bare_referrers_option_means_all(argv: list[str], expected: list[str]) -> None:
    from imgmirror.cli.referrer_options import bare_referrers

    assert bare_referrers(argv) == expected
