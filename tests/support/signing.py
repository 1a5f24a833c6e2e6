"""Test artifacts that refer to images: cosign signatures, an SPDX SBOM, an in-toto attestation.

Built here, by hand, so tests do not trust imgmirror to make them:

* :func:`cosign_signature` - cosign's simple-signing payload naming an image digest, signed
  with an ECDSA P-256 key (the signature base64 in ``dev.cosignproject.cosign/signature``),
  either as a tag-style signature (``sha256-<hex>.sig``, no subject) or as an OCI 1.1
  referrer (``artifactType`` and ``subject``);
* :func:`sbom_artifact` - an SPDX JSON document as an artifact with ``subject``;
* :func:`attestation_artifact` - an in-toto statement with ``subject``;
* :func:`verify_signature` - checks a signature manifest's payload against a public key.

Every artifact is an :class:`~tests.support.images.Image`, so the seeding client pushes it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from .images import OCI_CONFIG, OCI_MANIFEST, Blob, Image

__all__ = [
    "COSIGN_SIG",
    "SIGNATURE_ANNOTATION",
    "SIMPLESIGNING",
    "attestation_artifact",
    "cosign_signature",
    "new_key",
    "sbom_artifact",
    "verify_signature",
]

OCI_EMPTY = "application/vnd.oci.empty.v1+json"
SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_SIG = "application/vnd.dev.cosign.artifact.sig.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
SPDX = "application/spdx+json"
IN_TOTO = "application/vnd.in-toto+json"
EMPTY = Blob(b"{}", OCI_EMPTY)


def new_key() -> ec.EllipticCurvePrivateKey:
    """A fresh ECDSA P-256 key, as ``cosign generate-key-pair`` makes."""
    return ec.generate_private_key(ec.SECP256R1())


def _artifact(
    config: Blob,
    layers: tuple[Blob, ...],
    *,
    artifact_type: str | None,
    subject: Mapping[str, Any] | None,
    annotations: Mapping[str, str] | None = None,
) -> Image:
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_MANIFEST}
    if artifact_type:
        doc["artifactType"] = artifact_type
    doc["config"] = config.descriptor()
    doc["layers"] = [layer.descriptor() for layer in layers]
    if subject is not None:
        doc["subject"] = dict(subject)
    if annotations:
        doc["annotations"] = dict(annotations)
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return Image(raw, OCI_MANIFEST, config, layers, None)


def cosign_signature(
    image_digest: str,
    reference: str,
    key: ec.EllipticCurvePrivateKey,
    *,
    subject: Mapping[str, Any] | None = None,
) -> Image:
    """A cosign signature of ``image_digest``: tag-style without ``subject``, else a referrer."""
    payload = json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": reference},
                "image": {"docker-manifest-digest": image_digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
    ).encode()
    signature = key.sign(payload, ec.ECDSA(hashes.SHA256()))
    layer = Blob(
        payload,
        SIMPLESIGNING,
        annotations={SIGNATURE_ANNOTATION: base64.b64encode(signature).decode()},
    )
    if subject is None:  # cosign's tag-based layout: an image config, no artifactType
        config = Blob(json.dumps({"architecture": "", "os": "", "rootfs": {}}).encode(), OCI_CONFIG)
        return _artifact(config, (layer,), artifact_type=None, subject=None)
    return _artifact(EMPTY, (layer,), artifact_type=COSIGN_SIG, subject=subject)


def sbom_artifact(subject: Mapping[str, Any], name: str = "pause") -> Image:
    """An SPDX 2.3 JSON SBOM for ``subject`` as an OCI 1.1 artifact."""
    document = {
        "spdxVersion": "SPDX-2.3",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "dataLicense": "CC0-1.0",
        "packages": [{"SPDXID": "SPDXRef-pause", "name": name, "versionInfo": "3.9"}],
    }
    layer = Blob(json.dumps(document, sort_keys=True).encode(), SPDX)
    return _artifact(
        EMPTY,
        (layer,),
        artifact_type=SPDX,
        subject=subject,
        annotations={"org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
    )


def attestation_artifact(subject: Mapping[str, Any], name: str = "pause") -> Image:
    """An in-toto v1 statement about ``subject`` as an OCI 1.1 artifact."""
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": name, "digest": {"sha256": subject["digest"].split(":", 1)[1]}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {"buildDefinition": {"buildType": "https://example.invalid/test"}},
    }
    layer = Blob(json.dumps(statement, sort_keys=True).encode(), IN_TOTO)
    return _artifact(EMPTY, (layer,), artifact_type=IN_TOTO, subject=subject)


def verify_signature(
    manifest: bytes, payload: bytes, public_key: ec.EllipticCurvePublicKey
) -> dict[str, Any]:
    """Check a signature manifest's layer signature over ``payload``; returns the payload.

    Raises:
        cryptography.exceptions.InvalidSignature: the signature does not verify.
    """
    layer = json.loads(manifest)["layers"][0]
    signature = base64.b64decode(layer["annotations"][SIGNATURE_ANNOTATION])
    public_key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
    value: dict[str, Any] = json.loads(payload)
    return value
