"""Signatures in cosign's exact formats, made with ``cryptography`` for the verification tests.

Checked against what cosign writes (sigstore/cosign at d6d86c22): tag-based signatures are an
image manifest with a plain image config and one ``simplesigning`` layer per signature, the
signature base64 in ``dev.cosignproject.cosign/signature`` (pkg/oci/static, pkg/oci/mutate);
``.att`` tags hold DSSE envelopes (``application/vnd.dsse.envelope.v1+json``) with a
``predicateType`` layer annotation; cosign v3 bundles are OCI 1.1 referrers written by
``WriteAttestationNewBundleFormat`` (pkg/oci/remote/write.go): empty config carrying the
artifact type, one bundle layer, ``dev.sigstore.bundle.content``/``.predicateType`` manifest
annotations. :func:`ggcr_empty_image` is go-containerregistry's ``empty.Image``, byte for
byte: the image cosign's real keyless test bundle (tests/data/verify) signs.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from .images import OCI_CONFIG, OCI_MANIFEST, Blob, Image

__all__ = [
    "BUNDLE_V03",
    "DSSE",
    "PrivateKey",
    "att_tag",
    "bundle_referrer",
    "dsse_envelope",
    "ggcr_empty_image",
    "key_bundle",
    "public_pem",
    "sign",
    "signature_manifest",
    "simple_signing",
    "statement",
    "tag_signature",
]

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE = "application/vnd.dsse.envelope.v1+json"
BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
IN_TOTO = "application/vnd.in-toto+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
SIG_ANNOTATION = "dev.cosignproject.cosign/signature"


def sign(key: PrivateKey, data: bytes) -> bytes:
    """As cosign signs with a key: ECDSA/RSA PKCS#1 v1.5 over SHA-256, Ed25519 pure."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return key.sign(data)


def public_pem(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def simple_signing(digest: str, reference: str = "example.invalid/app") -> bytes:
    """cosign's payload (pkg/cosign/payload: json.Marshal of SimpleContainerImage)."""
    doc = {
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": None,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def _manifest(
    config: Blob,
    layers: tuple[Blob, ...],
    *,
    artifact_type: str | None = None,
    subject: Mapping[str, Any] | None = None,
    annotations: Mapping[str, str] | None = None,
    config_artifact_type: str | None = None,
) -> Image:
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_MANIFEST}
    if artifact_type:
        doc["artifactType"] = artifact_type
    doc["config"] = config.descriptor()
    if config_artifact_type:
        doc["config"]["artifactType"] = config_artifact_type
    doc["layers"] = [layer.descriptor() for layer in layers]
    if subject is not None:
        doc["subject"] = dict(subject)
    if annotations:
        doc["annotations"] = dict(annotations)
    raw = json.dumps(doc, separators=(",", ":")).encode()
    return Image(raw, OCI_MANIFEST, config, layers, None)


def _plain_config() -> Blob:
    return Blob(json.dumps({"architecture": "", "os": "", "rootfs": {}}).encode(), OCI_CONFIG)


def signature_manifest(*layers: Blob) -> Image:
    """A ``sha256-<hex>.sig`` image of simple-signing ``layers`` (cosign's tag-based layout)."""
    return _manifest(_plain_config(), layers)


def tag_signature(
    digest: str,
    *signers: PrivateKey,
    payload: bytes | None = None,
    signature: bytes | None = None,
) -> Image:
    """A ``sha256-<hex>.sig`` image: one simple-signing layer per signer (``payload`` and
    ``signature`` replace the honest ones, for hostile cases)."""
    data = payload if payload is not None else simple_signing(digest)
    layers = tuple(
        Blob(
            data,
            SIMPLESIGNING,
            annotations={SIG_ANNOTATION: base64.b64encode(signature or sign(k, data)).decode()},
        )
        for k in signers
    )
    return signature_manifest(*layers)


def statement(digest: str, predicate_type: str, name: str = "example.invalid/app") -> bytes:
    algorithm, hexdigest = digest.split(":", 1)
    doc = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": name, "digest": {algorithm: hexdigest}}],
        "predicateType": predicate_type,
        "predicate": {},
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def _pae(payload_type: str, payload: bytes) -> bytes:
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def dsse_envelope(payload: bytes, key: PrivateKey, payload_type: str = IN_TOTO) -> dict[str, Any]:
    sig = sign(key, _pae(payload_type, payload))
    return {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": "", "sig": base64.b64encode(sig).decode()}],
    }


def att_tag(digest: str, key: PrivateKey, predicate_type: str) -> Image:
    """A ``sha256-<hex>.att`` image: one DSSE layer (cosign's pre-v3 attestations)."""
    envelope = json.dumps(dsse_envelope(statement(digest, predicate_type), key)).encode()
    layer = Blob(envelope, DSSE, annotations={"predicateType": predicate_type})
    return _manifest(_plain_config(), (layer,))


def key_bundle(payload: bytes, key: PrivateKey) -> bytes:
    """A v0.3 bundle as ``cosign sign --key`` (v3) writes it: a DSSE envelope, the key hint."""
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hint = base64.b64encode(hashlib.sha256(spki).digest()).decode()
    doc = {
        "mediaType": BUNDLE_V03,
        "verificationMaterial": {"publicKey": {"hint": hint}},
        "dsseEnvelope": dsse_envelope(payload, key),
    }
    return json.dumps(doc).encode()


def bundle_referrer(
    bundle: bytes, subject: Mapping[str, Any], predicate_type: str, layers: int = 1
) -> Image:
    """The referrer cosign v3 pushes for a bundle (WriteAttestationNewBundleFormat)."""
    config = Blob(b"{}", OCI_EMPTY)
    layer = Blob(bundle, BUNDLE_V03)
    return _manifest(
        config,
        (layer,) * layers,
        artifact_type=BUNDLE_V03,
        config_artifact_type=BUNDLE_V03,
        subject=subject,
        annotations={
            "org.opencontainers.image.created": "2026-01-01T00:00:00Z",
            "dev.sigstore.bundle.content": "dsse-envelope",
            "dev.sigstore.bundle.predicateType": predicate_type,
        },
    )


def ggcr_empty_image() -> Image:
    """go-containerregistry's ``empty.Image``: sha256:7321122…, what cosign's tests sign."""
    config = Blob(
        b'{"architecture":"","created":"0001-01-01T00:00:00Z","os":"",'
        b'"rootfs":{"type":"layers","diff_ids":null},"config":{}}',
        "application/vnd.docker.container.image.v1+json",
    )
    media = "application/vnd.docker.distribution.manifest.v2+json"
    raw = (
        f'{{"schemaVersion":2,"mediaType":"{media}","config":{{"mediaType":'
        f'"{config.media_type}","size":{config.size},"digest":"{config.digest}"}},"layers":[]}}'
    ).encode()
    image = Image(raw, media, config, (), None)
    assert image.digest.endswith("732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4")
    return image
