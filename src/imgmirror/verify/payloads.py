"""What a signature signs: cosign's simple-signing payload, DSSE envelopes and in-toto
statements, and cosign's short names for predicate types. No I/O.

* simple signing (cosign's tag-based ``.sig`` layers): ``critical.image.docker-manifest-digest``
  names the signed digest, ``critical.type`` is ``cosign container image signature``;
* DSSE (``application/vnd.dsse.envelope.v1+json``, and inside sigstore bundles): the signature
  covers PAE(payloadType, payload), the payload an in-toto statement whose ``subject`` digests
  name what it is about.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import attrs

from imgmirror.errors import InvalidDigest
from imgmirror.model.digest import Digest
from imgmirror.model.documents import load_json_object

__all__ = [
    "COSIGN_SIGN_PREDICATE",
    "IN_TOTO_PAYLOAD",
    "PREDICATE_TYPES",
    "Envelope",
    "PayloadError",
    "SimpleSigning",
    "Statement",
    "pae",
    "parse_envelope",
    "parse_simple_signing",
    "parse_statement",
    "predicate_type",
]

IN_TOTO_PAYLOAD = "application/vnd.in-toto+json"
#: What ``cosign sign`` (v3, bundles) states about an image it signs.
COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
#: cosign's short names for predicate types (``cosign attest --type``, options/predicate.go).
PREDICATE_TYPES = {
    "custom": "https://cosign.sigstore.dev/attestation/v1",
    "slsaprovenance": "https://slsa.dev/provenance/v0.2",
    "slsaprovenance02": "https://slsa.dev/provenance/v0.2",
    "slsaprovenance1": "https://slsa.dev/provenance/v1",
    "spdx": "https://spdx.dev/Document",
    "spdxjson": "https://spdx.dev/Document",
    "cyclonedx": "https://cyclonedx.org/bom",
    "link": "https://in-toto.io/Link/v1",
    "vuln": "https://cosign.sigstore.dev/attestation/vuln/v1",
    "openvex": "https://openvex.dev/ns",
}
_SIMPLE_SIGNING_TYPE = "cosign container image signature"
_MAX_SUBJECTS = 1000


class PayloadError(ValueError):
    """A payload, envelope or statement is malformed (the message says how)."""


def predicate_type(name: str) -> str:
    """The predicate type URI for a cosign short name, or ``name`` itself if it is a URI.

    Raises:
        ValueError: neither a short name nor an absolute URI.
    """
    if name.lower() in PREDICATE_TYPES:
        return PREDICATE_TYPES[name.lower()]
    scheme, sep, rest = name.partition("://")
    if not sep or not scheme.isalpha() or not rest or any(c.isspace() for c in name):
        raise ValueError(
            f"unknown attestation type {name!r}; use {', '.join(PREDICATE_TYPES)} or a "
            "predicate type URI"
        )
    return name


def _json(raw: bytes, what: str) -> dict[str, Any]:
    return load_json_object(raw, what, PayloadError)


def _digest(text: object, what: str) -> Digest:
    if not isinstance(text, str):
        raise PayloadError(f"{what} names no digest")
    try:
        return Digest.parse(text)
    except InvalidDigest as exc:
        raise PayloadError(f"{what}: {exc.message}") from None


@attrs.frozen
class SimpleSigning:
    """A simple-signing payload: the signed ``digest`` and the ``reference`` it names."""

    digest: Digest
    reference: str | None


def parse_simple_signing(raw: bytes) -> SimpleSigning:
    """The claims of a simple-signing payload.

    Raises:
        PayloadError: not one (wrong type, no digest).
    """
    doc = _json(raw, "the simple-signing payload")
    critical = doc.get("critical")
    if not isinstance(critical, dict):
        raise PayloadError("the simple-signing payload has no 'critical' section")
    if critical.get("type") != _SIMPLE_SIGNING_TYPE:
        raise PayloadError(f"the simple-signing payload's type is {critical.get('type')!r}")
    image = critical.get("image")
    digest = _digest(
        image.get("docker-manifest-digest") if isinstance(image, dict) else None,
        "the simple-signing payload",
    )
    identity = critical.get("identity")
    reference = identity.get("docker-reference") if isinstance(identity, dict) else None
    return SimpleSigning(digest, reference if isinstance(reference, str) else None)


@attrs.frozen
class Envelope:
    """A DSSE envelope: ``payload`` (decoded), its type, and ``(keyid, signature)`` pairs."""

    payload_type: str
    payload: bytes
    signatures: tuple[tuple[str, bytes], ...]

    def signed_bytes(self) -> bytes:
        """What each signature covers: PAE(payloadType, payload)."""
        return pae(self.payload_type, self.payload)


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise PayloadError(f"{what} is not a base64 string")
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), validate=False)
    except (binascii.Error, ValueError):
        raise PayloadError(f"{what} is not base64") from None


def parse_envelope(doc: dict[str, Any] | bytes) -> Envelope:
    """A DSSE envelope from its JSON (bytes, or the object a bundle holds).

    Raises:
        PayloadError: not an envelope, or without signatures.
    """
    if isinstance(doc, bytes):
        doc = _json(doc, "the DSSE envelope")
    payload_type = doc.get("payloadType")
    if not isinstance(payload_type, str):
        raise PayloadError("the DSSE envelope has no payloadType")
    signatures = doc.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise PayloadError("the DSSE envelope has no signatures")
    pairs = []
    for item in signatures[:16]:
        if not isinstance(item, dict):
            raise PayloadError("a DSSE signature is not an object")
        keyid = item.get("keyid") or ""
        pairs.append((str(keyid), _b64(item.get("sig"), "a DSSE signature")))
    return Envelope(payload_type, _b64(doc.get("payload"), "the DSSE payload"), tuple(pairs))


@attrs.frozen
class Statement:
    """An in-toto statement: its ``predicate_type`` and the digests it is about."""

    predicate_type: str
    subjects: tuple[Digest, ...]

    def names(self, digest: Digest) -> bool:
        """Whether ``digest`` is one of its subjects."""
        return digest in self.subjects


def parse_statement(payload_type: str, raw: bytes) -> Statement:
    """The in-toto statement an envelope carries.

    Raises:
        PayloadError: another payload type, or a malformed statement.
    """
    if payload_type != IN_TOTO_PAYLOAD:
        raise PayloadError(f"the DSSE payload is a {payload_type!r}, not an in-toto statement")
    doc = _json(raw, "the in-toto statement")
    kind = doc.get("predicateType")
    if not isinstance(kind, str) or not kind:
        raise PayloadError("the in-toto statement has no predicateType")
    subjects = doc.get("subject")
    if not isinstance(subjects, list) or not subjects or len(subjects) > _MAX_SUBJECTS:
        raise PayloadError("the in-toto statement has no subject list")
    digests: list[Digest] = []
    for subject in subjects:
        found = subject.get("digest") if isinstance(subject, dict) else None
        if not isinstance(found, dict):
            raise PayloadError("an in-toto subject has no digest")
        for algorithm, value in found.items():
            if algorithm in ("sha256", "sha512"):
                digests.append(_digest(f"{algorithm}:{value}", "an in-toto subject"))
    return Statement(kind, tuple(digests))
