"""Sigstore bundles v0.1-0.3 (protobuf-specs ``sigstore_bundle.proto``, JSON form), parsed
enough to decide what they sign and with what: a DSSE envelope or a message signature; a
public key hint, or a certificate (v0.3) / certificate chain (v0.1, v0.2). No I/O.

cosign v3 attaches one per signature as an OCI 1.1 referrer: artifact type
``application/vnd.dev.sigstore.bundle.v0.3+json``, one layer of that media type holding the
bundle, and ``dev.sigstore.bundle.predicateType`` among the manifest's annotations.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

import attrs

from imgmirror.model.documents import load_json_object
from imgmirror.verify.payloads import Envelope, PayloadError, parse_envelope

if TYPE_CHECKING:
    from cryptography import x509

__all__ = ["BUNDLE_MEDIA_PREFIX", "Bundle", "MessageSignature", "bundle_version", "parse_bundle"]

BUNDLE_MEDIA_PREFIX = "application/vnd.dev.sigstore.bundle"
_VERSIONS = {
    "application/vnd.dev.sigstore.bundle+json;version=0.1": "0.1",
    "application/vnd.dev.sigstore.bundle+json;version=0.2": "0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.3": "0.3",
    "application/vnd.dev.sigstore.bundle.v0.3+json": "0.3",
}


def bundle_version(media_type: object) -> str | None:
    """``"0.1"``, ``"0.2"`` or ``"0.3"`` for a bundle media type, else None."""
    if not isinstance(media_type, str):
        return None
    return _VERSIONS.get(media_type.replace(" ", "").lower())


@attrs.frozen
class MessageSignature:
    """A signature over an artifact's digest (``algorithm`` as the bundle names it)."""

    algorithm: str
    digest: bytes
    signature: bytes


@attrs.frozen
class Bundle:
    """What a bundle holds. ``raw`` is the JSON as received (sigstore-python re-parses it)."""

    version: str
    raw: bytes
    envelope: Envelope | None
    message: MessageSignature | None
    certificate: x509.Certificate | None
    key_hint: str | None
    integrated_time: int | None

    @property
    def keyless(self) -> bool:
        """Whether it is signed with a certificate (else with a key)."""
        return self.certificate is not None


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise PayloadError(f"the bundle's {what} is not base64 text")
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise PayloadError(f"the bundle's {what} is not base64") from None


def _certificate(material: dict[str, Any]) -> x509.Certificate | None:
    from cryptography import x509  # noqa: PLC0415 - start-up time

    raw: object = None
    if isinstance(material.get("certificate"), dict):
        raw = material["certificate"].get("rawBytes")
    chain = material.get("x509CertificateChain")
    if raw is None and isinstance(chain, dict):
        certs = chain.get("certificates")
        if isinstance(certs, list) and certs and isinstance(certs[0], dict):
            raw = certs[0].get("rawBytes")
    if raw is None:
        return None
    try:
        return x509.load_der_x509_certificate(_b64(raw, "certificate"))
    except ValueError:
        raise PayloadError("the bundle's certificate is not DER") from None


def _message(doc: dict[str, Any]) -> MessageSignature | None:
    found = doc.get("messageSignature")
    if found is None:
        return None
    if not isinstance(found, dict) or not isinstance(found.get("messageDigest"), dict):
        raise PayloadError("the bundle's messageSignature has no messageDigest")
    digest = found["messageDigest"]
    return MessageSignature(
        str(digest.get("algorithm", "")),
        _b64(digest.get("digest"), "message digest"),
        _b64(found.get("signature"), "message signature"),
    )


def _integrated_time(material: dict[str, Any]) -> int | None:
    entries = material.get("tlogEntries")
    if not isinstance(entries, list) or not entries or not isinstance(entries[0], dict):
        return None
    value = entries[0].get("integratedTime")
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def parse_bundle(raw: bytes) -> Bundle:
    """A bundle from its JSON.

    Raises:
        PayloadError: not a sigstore bundle, or missing what a verifier needs.
    """
    doc = load_json_object(raw, "the sigstore bundle", PayloadError)
    version = bundle_version(doc.get("mediaType"))
    if version is None:
        raise PayloadError(f"unknown sigstore bundle media type {doc.get('mediaType')!r}")
    material = doc.get("verificationMaterial")
    if not isinstance(material, dict):
        raise PayloadError("the sigstore bundle has no verificationMaterial")
    envelope = None
    if doc.get("dsseEnvelope") is not None:
        if not isinstance(doc["dsseEnvelope"], dict):
            raise PayloadError("the bundle's dsseEnvelope is not an object")
        envelope = parse_envelope(doc["dsseEnvelope"])
    message = _message(doc)
    if (envelope is None) == (message is None):
        raise PayloadError("a sigstore bundle holds one DSSE envelope or one message signature")
    hint = (
        material.get("publicKey", {}).get("hint")
        if isinstance(material.get("publicKey"), dict)
        else None
    )
    certificate = _certificate(material)
    if certificate is None and "publicKey" not in material:
        raise PayloadError("the sigstore bundle names neither a certificate nor a public key")
    return Bundle(
        version, raw, envelope, message, certificate,
        hint if isinstance(hint, str) else None, _integrated_time(material),
    )  # fmt: skip
