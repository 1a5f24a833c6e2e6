"""A Sigstore of the tests' own, and cosign v2's keyless tag-based signatures made with it.

:class:`SigstoreLab` stands in for the public-good instance: a Fulcio root and intermediate
CA (ECDSA P-384, as Fulcio's), a Rekor log key and a CT log key (ECDSA P-256), written as a
``trusted_root.json`` (sigstore's format, which sigstore-python loads). It issues Fulcio-style
leaf certificates (ten minutes, empty subject, the identity in a critical SAN, the OIDC
issuer in Fulcio's extensions ``1.3.6.1.4.1.57264.1.1``/``.8``, code signing, an embedded
SCT over the precertificate as RFC 6962 defines it) and signs Rekor entries' SETs.

:meth:`SigstoreLab.sign` makes a ``sha256-<hex>.sig`` layer exactly as cosign v2's ``cosign
sign`` writes one (pkg/oci/static: the simple-signing payload as the layer, annotations
``dev.cosignproject.cosign/signature``, ``dev.sigstore.cosign/certificate``,
``dev.sigstore.cosign/chain`` and ``dev.sigstore.cosign/bundle`` holding the ``RekorBundle``
JSON of pkg/cosign/bundle/rekor.go: the SET over the canonical JSON of body, integratedTime,
logID and logIndex, the body Rekor's canonical ``hashedrekord`` v0.0.1 entry). Its keyword
arguments replace honest parts, for the hostile cases. :meth:`SigstoreLab.attest` makes a
``sha256-<hex>.att`` layer as cosign v2's ``cosign attest`` writes one: the DSSE envelope as
the layer (its JSON as Go marshals it, the bytes Rekor hashed), an empty signature annotation,
``predicateType``, the certificate, chain and bundle, the body a ``dsse`` (cosign 2.4 and
later) or ``intoto`` (before) v0.0.1 entry.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .cosign import (
    DSSE,
    SIG_ANNOTATION,
    SIMPLESIGNING,
    dsse_envelope,
    signature_manifest,
    simple_signing,
    statement,
)
from .images import Blob, Image

__all__ = [
    "ISSUER",
    "SUBJECT",
    "KeylessAttestation",
    "KeylessSignature",
    "SigstoreLab",
    "hashedrekord",
]

ISSUER = "https://token.actions.githubusercontent.com"
SUBJECT = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.4.0"
_SCT_LIST = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
_ISSUER_V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
_ISSUER_V2 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")


def _spki(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _utf8string(text: str) -> bytes:
    raw = text.encode()
    return b"\x0c" + _der_length(len(raw)) + raw


def _ca(
    name: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    start: dt.datetime,
) -> x509.Certificate:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "imgmirror-tests.invalid"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    parent_name, parent_key = (issuer[0].subject, issuer[1]) if issuer else (subject, key)
    parent_public = issuer[1].public_key() if issuer else key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(parent_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0 if issuer else 1), True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(parent_public), False)
    )
    if issuer:  # Fulcio's intermediate is for code signing
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False
        )
    return builder.sign(parent_key, hashes.SHA384())


def _log(key: ec.EllipticCurvePublicKey, url: str, start: dt.datetime) -> dict[str, Any]:
    return {
        "baseUrl": url,
        "hashAlgorithm": "SHA2_256",
        "publicKey": {
            "rawBytes": base64.b64encode(_spki(key)).decode(),
            "keyDetails": "PKIX_ECDSA_P256_SHA_256",
            "validFor": {"start": start.strftime("%Y-%m-%dT%H:%M:%SZ")},
        },
        "logId": {"keyId": base64.b64encode(hashlib.sha256(_spki(key)).digest()).decode()},
    }


def hashedrekord(signature: bytes, cert_pem: str, sha256_hex: str) -> bytes:
    """Rekor's canonical body of a hashedrekord v0.0.1 entry (keys sorted, no spaces)."""
    doc = {
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": sha256_hex}},
            "signature": {
                "content": base64.b64encode(signature).decode(),
                "publicKey": {"content": base64.b64encode(cert_pem.encode()).decode()},
            },
        },
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _canonical(kind: str, spec: dict[str, Any]) -> bytes:
    doc = {"apiVersion": "0.0.1", "kind": kind, "spec": spec}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def attestation_entry(kind: str, envelope: bytes, signature: bytes, cert_pem: str) -> bytes:
    """Rekor's canonical body of the ``dsse`` or ``intoto`` v0.0.1 entry for ``envelope``."""
    doc = json.loads(envelope)
    payload = base64.b64decode(doc["payload"])
    hashed = {"algorithm": "sha256", "value": hashlib.sha256(envelope).hexdigest()}
    payload_hash = {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()}
    verifier = base64.b64encode(cert_pem.encode()).decode()
    if kind == "dsse":
        sigs = [{"signature": base64.b64encode(signature).decode(), "verifier": verifier}]
        spec = {"envelopeHash": hashed, "payloadHash": payload_hash, "signatures": sigs}
        return _canonical("dsse", spec)
    spec = {"content": {"hash": hashed, "payloadHash": payload_hash}, "publicKey": verifier}
    return _canonical("intoto", spec)


@dataclass(frozen=True)
class KeylessAttestation:
    """The parts of one keyless ``.att`` layer."""

    envelope: bytes
    predicate_type: str
    certificate: str
    chain: str
    bundle: str

    @property
    def annotations(self) -> dict[str, str]:
        return {
            SIG_ANNOTATION: "",
            "dev.sigstore.cosign/bundle": self.bundle,
            "dev.sigstore.cosign/certificate": self.certificate,
            "dev.sigstore.cosign/chain": self.chain,
            "predicateType": self.predicate_type,
        }

    def image(self) -> Image:
        """The ``sha256-<hex>.att`` manifest holding this one layer."""
        return signature_manifest(Blob(self.envelope, DSSE, annotations=self.annotations))


@dataclass(frozen=True)
class KeylessSignature:
    """The parts of one keyless ``.sig`` layer."""

    payload: bytes
    signature: bytes
    certificate: str
    chain: str
    bundle: str | None

    @property
    def annotations(self) -> dict[str, str]:
        """The layer's annotations, in the order Go's encoding/json writes a map (sorted)."""
        out = {SIG_ANNOTATION: base64.b64encode(self.signature).decode()}
        if self.bundle is not None:
            out["dev.sigstore.cosign/bundle"] = self.bundle
        out["dev.sigstore.cosign/certificate"] = self.certificate
        out["dev.sigstore.cosign/chain"] = self.chain
        return out

    def image(self) -> Image:
        """The ``sha256-<hex>.sig`` manifest holding this one layer."""
        return signature_manifest(Blob(self.payload, SIMPLESIGNING, annotations=self.annotations))


@dataclass
class SigstoreLab:
    """A Fulcio root and intermediate, a Rekor key and a CT log key; ``at`` is the signing
    (integrated) time its signatures get unless told otherwise."""

    name: str = "lab"
    at: dt.datetime = field(
        default_factory=lambda: (dt.datetime.now(dt.UTC) - dt.timedelta(days=10)).replace(
            microsecond=0
        )
    )

    def __post_init__(self) -> None:
        start = self.at - dt.timedelta(days=365)
        self.start = start
        self.root_key = ec.generate_private_key(ec.SECP384R1())
        self.root = _ca(f"{self.name}-fulcio-root", self.root_key, None, start)
        self.intermediate_key = ec.generate_private_key(ec.SECP384R1())
        self.intermediate = _ca(
            f"{self.name}-fulcio-intermediate",
            self.intermediate_key,
            (self.root, self.root_key),
            start,
        )
        self.rekor_key = ec.generate_private_key(ec.SECP256R1())
        self.ct_key = ec.generate_private_key(ec.SECP256R1())
        self.log_index = 1000

    @property
    def log_id(self) -> bytes:
        return hashlib.sha256(_spki(self.rekor_key.public_key())).digest()

    def trusted_root(self) -> dict[str, Any]:
        """The ``trusted_root.json`` document."""
        der = [c.public_bytes(serialization.Encoding.DER) for c in (self.intermediate, self.root)]
        authority = {
            "subject": {"organization": "imgmirror-tests.invalid", "commonName": self.name},
            "uri": "https://fulcio.lab.invalid",
            "certChain": {
                "certificates": [{"rawBytes": base64.b64encode(d).decode()} for d in der]
            },
            "validFor": {"start": self.start.strftime("%Y-%m-%dT%H:%M:%SZ")},
        }
        return {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [_log(self.rekor_key.public_key(), "https://rekor.lab.invalid", self.start)],
            "certificateAuthorities": [authority],
            "ctlogs": [_log(self.ct_key.public_key(), "https://ctfe.lab.invalid", self.start)],
            "timestampAuthorities": [],
        }

    def write_root(self, path: Path) -> Path:
        path.write_text(json.dumps(self.trusted_root(), indent=2))
        return path

    @property
    def chain_pem(self) -> str:
        return _pem(self.intermediate) + _pem(self.root)

    def _sct(self, tbs: bytes, timestamp: dt.datetime) -> x509.UnrecognizedExtension:
        """The SCT list extension: one SCT by the CT key over the precertificate ``tbs``."""
        millis = int(timestamp.timestamp()) * 1000
        issuer_hash = hashlib.sha256(_spki(self.intermediate_key.public_key())).digest()
        signed = b"".join(
            [
                b"\x00\x00",  # v1, certificate_timestamp
                millis.to_bytes(8, "big"),
                b"\x00\x01",  # precert_entry
                issuer_hash,
                len(tbs).to_bytes(3, "big"),
                tbs,
                b"\x00\x00",  # no extensions
            ]
        )
        sig = self.ct_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        log_id = hashlib.sha256(_spki(self.ct_key.public_key())).digest()
        sct = (
            b"\x00" + log_id + millis.to_bytes(8, "big") + b"\x00\x00"
            + b"\x04\x03" + struct.pack(">H", len(sig)) + sig
        )  # fmt: skip
        listed = struct.pack(">H", len(sct)) + sct
        tls = struct.pack(">H", len(listed)) + listed
        return x509.UnrecognizedExtension(_SCT_LIST, b"\x04" + _der_length(len(tls)) + tls)

    def leaf(
        self,
        subject: str = SUBJECT,
        issuer: str = ISSUER,
        *,
        not_before: dt.datetime | None = None,
        lifetime: dt.timedelta = dt.timedelta(minutes=10),
        sct: bool = True,
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """A Fulcio-style certificate for ``subject`` (a URI or an email) and its key
        (without an SCT when ``sct`` is false)."""
        key = ec.generate_private_key(ec.SECP256R1())
        start = not_before or self.at - dt.timedelta(seconds=30)
        name: x509.GeneralName = (
            x509.UniformResourceIdentifier(subject)
            if "://" in subject
            else x509.RFC822Name(subject)
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.intermediate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + lifetime)
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, False, False, False, False), True
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self.intermediate_key.public_key()
                ),
                False,
            )
            .add_extension(x509.SubjectAlternativeName([name]), True)
            .add_extension(x509.UnrecognizedExtension(_ISSUER_V1, issuer.encode()), False)
            .add_extension(x509.UnrecognizedExtension(_ISSUER_V2, _utf8string(issuer)), False)
        )
        precert = builder.sign(self.intermediate_key, hashes.SHA384())
        if not sct:
            return precert, key
        final = builder.add_extension(self._sct(precert.tbs_certificate_bytes, start), False).sign(
            self.intermediate_key, hashes.SHA384()
        )
        assert final.tbs_precertificate_bytes == precert.tbs_certificate_bytes
        return final, key

    def rekor_bundle(
        self,
        body: bytes,
        *,
        integrated_time: dt.datetime | None = None,
        key: ec.EllipticCurvePrivateKey | None = None,
    ) -> str:
        """The ``dev.sigstore.cosign/bundle`` annotation for a logged ``body``: its SET signed
        by the Rekor key (or ``key``)."""
        self.log_index += 1
        payload = {
            "body": base64.b64encode(body).decode(),
            "integratedTime": int((integrated_time or self.at).timestamp()),
            "logIndex": self.log_index,
            "logID": self.log_id.hex(),
        }
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        signed = (key or self.rekor_key).sign(canonical, ec.ECDSA(hashes.SHA256()))
        bundle = {"SignedEntryTimestamp": base64.b64encode(signed).decode(), "Payload": payload}
        return json.dumps(bundle, separators=(",", ":"))

    def sign(
        self,
        digest: str,
        subject: str = SUBJECT,
        issuer: str = ISSUER,
        *,
        payload: bytes | None = None,
        certificate: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
        logged_signature: bytes | None = None,
        logged_certificate: x509.Certificate | None = None,
        logged_hash: str | None = None,
        set_key: ec.EllipticCurvePrivateKey | None = None,
        bundle: bool = True,
    ) -> KeylessSignature:
        """What ``cosign sign`` (v2, keyless) attaches for ``digest``: the payload signed with
        a fresh certificate's key, logged as a hashedrekord entry. ``certificate``,
        ``logged_signature``, ``logged_certificate``, ``logged_hash``, ``set_key`` and
        ``bundle=False`` replace the honest parts."""
        data = payload if payload is not None else simple_signing(digest)
        cert, key = certificate or self.leaf(subject, issuer)
        signature = key.sign(data, ec.ECDSA(hashes.SHA256()))
        body = hashedrekord(
            logged_signature or signature,
            _pem(logged_certificate or cert),
            logged_hash or hashlib.sha256(data).hexdigest(),
        )
        rekor = self.rekor_bundle(body, key=set_key) if bundle else None
        return KeylessSignature(data, signature, _pem(cert), self.chain_pem, rekor)

    def attest(
        self,
        digest: str,
        predicate_type: str,
        *,
        entry: str = "dsse",
        subject: str = SUBJECT,
        envelope_key: ec.EllipticCurvePrivateKey | None = None,
        logged_envelope: bytes | None = None,
        logged_certificate: x509.Certificate | None = None,
    ) -> KeylessAttestation:
        """What ``cosign attest`` (v2, keyless) attaches for ``digest``: an in-toto statement
        in a DSSE envelope signed with a fresh certificate's key (or ``envelope_key``), logged
        as an ``entry`` (``dsse`` or ``intoto``) entry (for ``logged_envelope`` and
        ``logged_certificate`` instead, when given)."""
        cert, key = self.leaf(subject)
        doc = dsse_envelope(statement(digest, predicate_type), envelope_key or key)
        envelope = json.dumps(doc, separators=(",", ":")).encode()  # as Go marshals it
        sig = base64.b64decode(doc["signatures"][0]["sig"])
        body = attestation_entry(
            entry, logged_envelope or envelope, sig, _pem(logged_certificate or cert)
        )
        return KeylessAttestation(
            envelope, predicate_type, _pem(cert), self.chain_pem, self.rekor_bundle(body)
        )
