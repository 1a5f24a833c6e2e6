"""A Fulcio signing certificate, checked with ``cryptography`` the way sigstore's clients do
(sigstore-go ``VerifyLeafCertificate`` and ``VerifySignedCertificateTimestamp``,
sigstore-python ``_verify_common_signing_cert``), at the time a transparency log vouches for:

* the certificate itself is valid at that time;
* it chains to a Fulcio CA of the trusted root whose window covers that time (the CA's root
  the only anchor, its intermediates the only path; a chain the signature carries is never
  trusted), every certificate valid then, for code signing;
* its key usage is digital signature and its extended key usage code signing;
* it embeds an SCT (RFC 6962, over the precertificate) from a CT log of the trusted root.

No I/O.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import struct
from typing import TYPE_CHECKING

from imgmirror.verify.trust import Authority, KeylessError, TrustMaterial

if TYPE_CHECKING:
    from cryptography import x509

__all__ = ["verify_certificate"]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _stamp(at: dt.datetime) -> str:
    return f"{at:%Y-%m-%dT%H:%M:%SZ}"


def _chain(cert: x509.Certificate, ca: Authority, at: dt.datetime) -> list[x509.Certificate]:
    """The path from ``cert`` to ``ca``'s root at ``at`` (leaf first).

    Raises:
        ValueError: there is none (cryptography's reason).
    """
    from cryptography.x509 import (  # noqa: PLC0415 - start-up time
        ExtendedKeyUsage,
        UnsupportedGeneralNameType,
    )
    from cryptography.x509.verification import (  # noqa: PLC0415
        Criticality,
        ExtensionPolicy,
        PolicyBuilder,
        Store,
        VerificationError,
    )

    # code signing, not the client-auth usage a client verifier expects (checked below)
    ca_policy = ExtensionPolicy.webpki_defaults_ca().may_be_present(
        ExtendedKeyUsage, Criticality.NON_CRITICAL, None
    )
    ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(
        ExtendedKeyUsage, Criticality.NON_CRITICAL, None
    )
    verifier = (
        PolicyBuilder()
        .store(Store([ca.root]))
        .time(at)
        .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
        .build_client_verifier()
    )
    try:
        return list(verifier.verify(cert, list(ca.intermediates)).chain)
    except (VerificationError, UnsupportedGeneralNameType, ValueError, TypeError) as exc:
        raise ValueError(" ".join(str(exc).split())[:160] or type(exc).__name__) from None


def _usage(cert: x509.Certificate) -> None:
    from cryptography import x509  # noqa: PLC0415 - start-up time
    from cryptography.x509.oid import ExtendedKeyUsageOID  # noqa: PLC0415

    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        extended = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        raise KeylessError("its certificate names no key usage for code signing") from None
    if not usage.digital_signature or ExtendedKeyUsageOID.CODE_SIGNING not in extended:
        raise KeylessError("its certificate is not for code signing (key usage)")


def _issuer_key_hash(chain: list[x509.Certificate]) -> bytes:
    from cryptography import x509  # noqa: PLC0415 - start-up time
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.x509.oid import ExtendedKeyUsageOID  # noqa: PLC0415

    issuer = chain[1]
    try:  # a precertificate signing certificate stands in for its issuer (RFC 6962 3.1)
        eku = issuer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if ExtendedKeyUsageOID.CERTIFICATE_TRANSPARENCY in eku and len(chain) > 2:
            issuer = chain[2]
    except x509.ExtensionNotFound:
        pass
    spki = issuer.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).digest()


def _sct(cert: x509.Certificate, chain: list[x509.Certificate], material: TrustMaterial) -> None:
    """An embedded SCT of ``cert`` verifies with a CT log key of the trusted root."""
    from cryptography import x509  # noqa: PLC0415 - start-up time
    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415
    from cryptography.x509.certificate_transparency import LogEntryType  # noqa: PLC0415

    try:
        scts = cert.extensions.get_extension_for_class(
            x509.PrecertificateSignedCertificateTimestamps
        ).value
    except x509.ExtensionNotFound:
        raise KeylessError("its certificate carries no SCT (certificate transparency)") from None
    if len(chain) < 2:
        raise KeylessError("its certificate has no issuer to check its SCT against")
    tbs = cert.tbs_precertificate_bytes
    entry = _issuer_key_hash(chain) + struct.pack(">I", len(tbs))[1:] + tbs
    for sct in scts:
        log = material.ctlog(sct.log_id)
        at = sct.timestamp.replace(tzinfo=dt.UTC)
        if log is None or not log.window.covers(at):
            continue
        if sct.entry_type != LogEntryType.PRE_CERTIFICATE:
            continue
        if not isinstance(sct.signature_hash_algorithm, hashes.SHA256):
            continue
        millis = (at - _EPOCH) // dt.timedelta(milliseconds=1)
        signed = (
            struct.pack(">BBQH", sct.version.value, 0, millis, 1)
            + entry
            + struct.pack(">H", len(sct.extension_bytes))
            + sct.extension_bytes
        )
        if log.key.verify(sct.signature, signed):
            return
    raise KeylessError("no SCT of its certificate verifies with a CT log key of the trusted root")


def verify_certificate(
    cert: x509.Certificate, material: TrustMaterial, at: dt.datetime
) -> list[x509.Certificate]:
    """Check a Fulcio signing ``cert`` at ``at`` (a verified integrated time); its chain,
    leaf first.

    Raises:
        KeylessError: it does not hold (the first reason).
    """
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    if not start <= at <= end:
        raise KeylessError(
            f"its certificate was valid from {_stamp(start)} to {_stamp(end)}, "
            f"not when the log integrated it ({_stamp(at)})"
        )
    authorities = [ca for ca in material.authorities if ca.window.covers(at)]
    if not authorities:
        raise KeylessError(f"no Fulcio CA of the trusted root was valid at {_stamp(at)}")
    reasons = []
    for ca in authorities:
        try:
            chain = _chain(cert, ca, at)
        except ValueError as exc:
            reasons.append(f"{ca.uri}: {exc}")
            continue
        _usage(cert)
        _sct(cert, chain, material)
        return chain
    raise KeylessError(
        f"its certificate does not chain to a Fulcio CA of the trusted root ({reasons[0]})"
    )
