"""Keyless signatures and attestations in cosign's tag-based format (cosign v1/v2; what most
public images signed before cosign v3 carry), verified offline with ``cryptography`` against
the policy's trusted root: sigstore-python wants an inclusion proof, which this format lacks.

A ``sha256-<hex>.sig`` layer holds the simple-signing payload; its annotations the signature
(``dev.cosignproject.cosign/signature``), the Fulcio certificate
(``dev.sigstore.cosign/certificate``, PEM), the chain (``dev.sigstore.cosign/chain``, not
trusted: cosign too takes the chain from the trusted root) and the Rekor bundle
(``dev.sigstore.cosign/bundle``, [.rekor][imgmirror.verify.rekor]). [verify_tag_signature][] checks,
as
cosign's ``verifyInternal``/``VerifyBundle`` do with a trusted root:

1. the bundle is there (without it only an online Rekor lookup could vouch for the time);
2. its SET verifies with the Rekor key named by its ``logID``, valid at ``integratedTime``;
3. the certificate at that time ([verify_certificate][imgmirror.verify.fulcio.verify_certificate]);
4. its identity is one the policy allows;
5. the signature verifies over the payload with the certificate's key;
6. the log entry names that signature, that certificate and the payload's sha256.

A keyless ``sha256-<hex>.att`` layer ([verify_tag_attestation][]) is a DSSE envelope with the
same annotations (its signature annotation empty): steps 1-4 as above, then one of the
envelope's signatures verifies over its PAE with the certificate's key, and the log entry (a
``dsse`` or ``intoto`` one) names the certificate, that signature (``dsse``) and the sha256 of
the whole layer.

The caller then reads what the payload claims. No I/O.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import attrs

from imgmirror.errors import InvalidPolicy
from imgmirror.verify.fulcio import verify_certificate
from imgmirror.verify.identity import Identity, allowed_identity
from imgmirror.verify.keys import PublicKey, public_key
from imgmirror.verify.payloads import Envelope, PayloadError
from imgmirror.verify.rekor import LogEntry, parse_entry, parse_rekor_bundle, verify_set
from imgmirror.verify.trust import KeylessError, TrustMaterial

if TYPE_CHECKING:
    from cryptography import x509

__all__ = [
    "BUNDLE_ANNOTATION",
    "CERTIFICATE_ANNOTATION",
    "CHAIN_ANNOTATION",
    "verify_tag_attestation",
    "verify_tag_signature",
]

CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"
BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"
_MAX_PEM = 64 * 1024


def _leaf(pem: str) -> x509.Certificate:
    from cryptography import x509  # noqa: PLC0415 - start-up time

    if len(pem) > _MAX_PEM:
        raise KeylessError("its certificate annotation is too large")
    try:
        return x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise KeylessError("its certificate annotation is not a PEM certificate") from None


def _logged(entry: LogEntry, signature: bytes, cert_der: bytes, payload: bytes) -> None:
    """The log entry is about this signature, certificate and payload (cosign's compareSigs,
    comparePublicKey and bundleHash)."""
    from cryptography import x509  # noqa: PLC0415 - start-up time
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    if entry.signature is not None and entry.signature != signature:
        raise KeylessError("its log entry is for another signature")
    try:
        logged = x509.load_pem_x509_certificate(entry.public_key)
    except ValueError:
        raise KeylessError("its log entry does not name a certificate") from None
    if logged.public_bytes(serialization.Encoding.DER) != cert_der:
        raise KeylessError("its log entry names another certificate")
    actual = hashlib.sha256(payload).hexdigest()
    if entry.hash_algorithm != "sha256" or entry.hash_value != actual:
        raise KeylessError(
            f"its log entry is for {entry.hash_algorithm}:{entry.hash_value[:16]}…, "
            f"not this payload (sha256:{actual[:16]}…)"
        )


@attrs.frozen
class _Signer:
    """A layer's certificate, verified at the log's time, and what the log says of it."""

    by: str
    key: PublicKey
    cert_der: bytes
    signed_at: dt.datetime
    entry: LogEntry


def _signer(
    material: TrustMaterial,
    identities: Sequence[Identity],
    annotations: Mapping[str, str],
    kinds: tuple[str, ...],
) -> _Signer:
    """Steps 1-4: the bundle, its SET, the certificate at the integrated time, its identity;
    the log entry must be one of ``kinds``."""
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415 - start-up time

    cert = _leaf(annotations.get(CERTIFICATE_ANNOTATION, ""))
    text = annotations.get(BUNDLE_ANNOTATION)
    if not text:
        raise KeylessError(
            f"no transparency-log bundle ({BUNDLE_ANNOTATION}): only an online Rekor lookup "
            "could vouch for its signing time, and imgmirror verifies offline"
        )
    try:
        bundle = parse_rekor_bundle(text)
        verify_set(material, bundle)
        entry = parse_entry(bundle.body)
    except PayloadError as exc:
        raise KeylessError(str(exc)) from None
    if entry.kind not in kinds:
        raise KeylessError(f"its log entry is a {entry.kind} entry, not {' or '.join(kinds)}")
    try:  # cryptography reads a certificate's extensions and key lazily
        verify_certificate(cert, material, bundle.signed_at)
        identity, found = allowed_identity(identities, cert)
        key = public_key(cert.public_key(), "its certificate")
    except InvalidPolicy as exc:
        raise KeylessError(exc.message) from None
    except (ValueError, TypeError) as exc:
        raise KeylessError(f"its certificate cannot be read: {exc}") from None
    if identity is None:
        raise KeylessError(f"certificate {found.describe()} is not an allowed identity")
    der = cert.public_bytes(serialization.Encoding.DER)
    return _Signer(identity.describe(), key, der, bundle.signed_at, entry)


def verify_tag_signature(
    material: TrustMaterial,
    identities: Sequence[Identity],
    payload: bytes,
    signature: bytes,
    annotations: Mapping[str, str],
) -> tuple[str, dt.datetime]:
    """Verify a keyless ``.sig`` layer: ``payload`` its bytes (digest already checked),
    ``signature`` its decoded signature annotation.

    Returns ``(by, signed_at)``: the identity allowed, and the log's integrated time.

    Raises:
        KeylessError: it does not verify (the first reason, one line).
    """
    signer = _signer(material, identities, annotations, ("hashedrekord", "rekord"))
    if not signer.key.verify(signature, payload):
        raise KeylessError("its signature does not verify over the payload with its certificate")
    _logged(signer.entry, signature, signer.cert_der, payload)
    return signer.by, signer.signed_at


def verify_tag_attestation(
    material: TrustMaterial,
    identities: Sequence[Identity],
    layer: bytes,
    envelope: Envelope,
    annotations: Mapping[str, str],
) -> tuple[str, dt.datetime]:
    """Verify a keyless ``.att`` layer: ``layer`` its bytes (digest already checked, the
    DSSE envelope as logged), ``envelope`` them parsed. One of the envelope's signatures must
    verify with the certificate's key; the log entry (``dsse`` or ``intoto``) must name that
    certificate, that signature (``dsse``) and the layer's sha256, as cosign's VerifyBundle
    checks.

    Returns ``(by, signed_at)``: the identity allowed, and the log's integrated time.

    Raises:
        KeylessError: it does not verify (the first reason, one line).
    """
    signer = _signer(material, identities, annotations, ("dsse", "intoto"))
    signed = envelope.signed_bytes()
    good = [sig for _, sig in envelope.signatures if signer.key.verify(sig, signed)]
    if not good:
        raise KeylessError("its envelope's signature does not verify with its certificate")
    _logged(signer.entry, good[0], signer.cert_der, layer)
    return signer.by, signer.signed_at
