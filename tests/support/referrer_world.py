"""A signed image for the referrer tests: a tag-style cosign signature, an SBOM (signed in
turn) and an in-toto attestation, seeded into a real registry, and the checks that the
signature still verifies and names the expected digest wherever it was carried."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from .images import OCI_INDEX, Image, make_image
from .registry import Registry
from .seed import RegistryClient
from .signing import (
    attestation_artifact,
    cosign_signature,
    new_key,
    sbom_artifact,
    verify_signature,
)

__all__ = [
    "REPO",
    "World",
    "check_signature",
    "fallback",
    "manifest_at",
    "referrers_index",
    "seed_world",
    "tags_at",
]

REPO = "mirror/pause"


def fallback(digest: str) -> str:
    """The referrers tag schema's tag for ``digest``."""
    return digest.replace(":", "-")


def _entry(artifact: Image) -> dict[str, Any]:
    doc = json.loads(artifact.manifest)
    return {
        "mediaType": artifact.media_type,
        "digest": artifact.digest,
        "size": artifact.size,
        "artifactType": doc["artifactType"],
    }


def referrers_index(*artifacts: Image) -> bytes:
    """A fallback-tag index listing ``artifacts``."""
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [_entry(a) for a in artifacts],
    }
    return json.dumps(doc).encode()


@dataclass
class World:
    """An image with a tag-style cosign signature, an SBOM (signed in turn) and an attestation."""

    image: Image
    key: ec.EllipticCurvePrivateKey
    sig: Image
    sbom: Image
    att: Image
    sbom_sig: Image

    @property
    def sig_tag(self) -> str:
        return fallback(self.image.digest) + ".sig"

    @property
    def referrers(self) -> set[str]:
        """The digests of every referrer."""
        return {a.digest for a in (self.sig, self.sbom, self.att, self.sbom_sig)}


def seed_world(registry: Registry, *, fallback_tags: bool, repo: str = REPO) -> World:
    """Push the image as ``repo:3.9`` with its referrers (fallback tags written if asked)."""
    image = make_image(fmt="oci", marker="signed")
    key = new_key()
    subject = image.descriptor(with_platform=False)
    sig = cosign_signature(image.digest, f"example.invalid/{repo}", key)
    sbom = sbom_artifact(subject)
    att = attestation_artifact(subject)
    sbom_sig = cosign_signature(
        sbom.digest, f"example.invalid/{repo}", key, subject=sbom.descriptor(with_platform=False)
    )
    world = World(image, key, sig, sbom, att, sbom_sig)
    with RegistryClient(registry) as client:
        client.push_image(repo, image, "3.9")
        client.push_image(repo, sig, world.sig_tag)
        for artifact in (sbom, att, sbom_sig):
            client.push_image(repo, artifact)
        if fallback_tags:
            index = referrers_index(sbom, att)
            client.push_manifest(repo, fallback(image.digest), index, OCI_INDEX)
            client.push_manifest(repo, fallback(sbom.digest), referrers_index(sbom_sig), OCI_INDEX)
    return world


def manifest_at(registry: Registry, ref: str, repo: str = REPO) -> bytes:
    """The manifest bytes ``repo:ref`` holds."""
    with RegistryClient(registry) as client:
        raw, _ = client.get_manifest(repo, ref)
    return raw


def tags_at(registry: Registry, repo: str = REPO) -> set[str]:
    """The tags of ``repo`` (empty when the image's tag 3.9 is not there)."""
    with RegistryClient(registry) as client:
        return set(client.tags(repo)) if client.manifest_exists(repo, "3.9") else set()


def check_signature(registry: Registry, world: World, digest: str, repo: str = REPO) -> None:
    """The carried signature verifies against the key and names ``digest``."""
    raw = manifest_at(registry, fallback(digest) + ".sig", repo)
    assert raw == world.sig.manifest
    layer = json.loads(raw)["layers"][0]
    with RegistryClient(registry) as client:
        payload = client.get_blob(repo, layer["digest"])
    claims = verify_signature(raw, payload, world.key.public_key())
    assert claims["critical"]["image"]["docker-manifest-digest"] == digest
