"""The Rekor material of cosign's tag-based signatures (cosign v1/v2): the
``dev.sigstore.cosign/bundle`` annotation and the log entry it carries. No I/O.

The annotation is cosign's ``RekorBundle`` (pkg/cosign/bundle/rekor.go)::

    {"SignedEntryTimestamp": base64,
     "Payload": {"body": base64, "integratedTime": int, "logIndex": int, "logID": hex}}

The signed entry timestamp (SET) is Rekor's promise that it logged the entry: its ECDSA
signature over SHA-256 of the payload in canonical JSON (RFC 8785: keys sorted, no
whitespace), ``body`` the std-base64 of the entry's canonical body and ``logID`` lower-case
hex, as cosign and sigstore-go re-encode them (``tlog.VerifySET``). It verifies with the log
key of the trusted root whose ID is ``logID``, valid at ``integratedTime``. The body is a
``hashedrekord`` or ``rekord`` v0.0.1 entry naming the signature, the signing certificate and
the artifact's hash (a ``.sig`` layer), or a ``dsse`` or ``intoto`` v0.0.1 entry naming the
certificate and the whole envelope's hash (an ``.att`` layer).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from typing import Any

import attrs

from imgmirror.model.documents import load_json
from imgmirror.verify.payloads import PayloadError
from imgmirror.verify.trust import KeylessError, TrustMaterial

__all__ = ["LogEntry", "RekorBundle", "parse_entry", "parse_rekor_bundle", "verify_set"]

#: JSON numbers above this lose precision in cosign's canonicalizer (float64): refused.
_MAX_INT = 2**53
_KINDS = ("hashedrekord", "rekord", "dsse", "intoto")


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise PayloadError(f"{what} is not base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise PayloadError(f"{what} is not base64") from None


def _int(value: object, what: str) -> int:
    if type(value) is not int or not 0 <= value < _MAX_INT:
        raise PayloadError(f"{what} is not a whole number")
    return value


def _object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(f"{what} is not a JSON object")
    return value


@attrs.frozen
class RekorBundle:
    """A ``dev.sigstore.cosign/bundle`` annotation: the SET and what it signs (``body``
    decoded)."""

    signed_entry_timestamp: bytes
    body: bytes
    integrated_time: int
    log_index: int
    log_id: bytes

    @property
    def signed_at(self) -> dt.datetime:
        """When the log integrated the entry."""
        return dt.datetime.fromtimestamp(self.integrated_time, dt.UTC)

    def signed_bytes(self) -> bytes:
        """The bytes the SET signs: the payload in canonical JSON."""
        payload = {
            "body": base64.b64encode(self.body).decode(),
            "integratedTime": self.integrated_time,
            "logID": self.log_id.hex(),
            "logIndex": self.log_index,
        }
        # for these values (ASCII strings, integers below 2**53) this is RFC 8785
        return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def parse_rekor_bundle(text: str) -> RekorBundle:
    """The annotation's bundle.

    Raises:
        PayloadError: not cosign's RekorBundle.
    """
    try:
        doc = _object(load_json(text), "the transparency-log bundle")
    except (ValueError, UnicodeDecodeError):
        raise PayloadError("the transparency-log bundle is not JSON") from None
    payload = _object(doc.get("Payload"), "the transparency-log bundle's Payload")
    log_id = payload.get("logID")
    try:
        raw_id = bytes.fromhex(log_id) if isinstance(log_id, str) else b""
    except ValueError:
        raw_id = b""
    if len(raw_id) != 32:
        raise PayloadError("the transparency-log bundle's logID is not a sha256 in hex")
    return RekorBundle(
        _b64(doc.get("SignedEntryTimestamp"), "the transparency-log bundle's SignedEntryTimestamp"),
        _b64(payload.get("body"), "the transparency-log bundle's body"),
        _int(payload.get("integratedTime"), "the transparency-log bundle's integratedTime"),
        _int(payload.get("logIndex"), "the transparency-log bundle's logIndex"),
        raw_id,
    )


def verify_set(material: TrustMaterial, bundle: RekorBundle) -> None:
    """Check the SET with the trusted root's log key for ``bundle.log_id``.

    Raises:
        KeylessError: no such log, its key was not valid then, or the SET does not verify.
    """
    log = material.tlog(bundle.log_id)
    if log is None:
        raise KeylessError(
            f"its transparency-log bundle is from log {bundle.log_id.hex()[:16]}…, "
            "not a Rekor log of the trusted root"
        )
    if log.window.start is None or not log.window.covers(bundle.signed_at):
        raise KeylessError(
            f"the Rekor key of {log.url} was not valid at the integrated time "
            f"{bundle.signed_at:%Y-%m-%dT%H:%M:%SZ}"
        )
    if not log.key.verify(bundle.signed_entry_timestamp, bundle.signed_bytes()):
        raise KeylessError(f"its transparency-log SET does not verify with the key of {log.url}")


@attrs.frozen
class LogEntry:
    """A logged entry, as much of it as cosign compares: the signature (``None`` for an
    ``intoto`` v0.0.1 entry, which logs none), the public key (the PEM text as logged) and
    the hash of what was logged (the artifact of a signature; the whole envelope of an
    attestation)."""

    kind: str
    signature: bytes | None
    public_key: bytes
    hash_algorithm: str
    hash_value: str


def _hash(value: object, what: str) -> tuple[str, str]:
    digest = _object(value, what)
    algorithm, hexdigest = digest.get("algorithm"), digest.get("value")
    if not isinstance(algorithm, str) or not isinstance(hexdigest, str):
        raise PayloadError(f"{what} has no algorithm and value")
    return algorithm, hexdigest.lower()


def _signed(kind: str, spec: dict[str, Any]) -> LogEntry:
    """A ``hashedrekord``/``rekord`` v0.0.1 entry (cosign's signatures)."""
    signature = _object(spec.get("signature"), "the log entry's signature")
    key = _object(signature.get("publicKey"), "the log entry's public key")
    data = _object(spec.get("data"), "the log entry's data")
    algorithm, value = _hash(data.get("hash"), "the log entry's artifact hash")
    return LogEntry(
        kind,
        _b64(signature.get("content"), "the log entry's signature"),
        _b64(key.get("content"), "the log entry's public key"),
        algorithm,
        value,
    )


def _dsse(spec: dict[str, Any]) -> LogEntry:
    """A ``dsse`` v0.0.1 entry (cosign's attestations since v2.4): one signature, its
    verifier, the envelope's hash."""
    signatures = spec.get("signatures")
    if not isinstance(signatures, list) or len(signatures) != 1:
        raise PayloadError("the log entry does not hold exactly one DSSE signature")
    signature = _object(signatures[0], "the log entry's DSSE signature")
    algorithm, value = _hash(spec.get("envelopeHash"), "the log entry's envelope hash")
    return LogEntry(
        "dsse",
        _b64(signature.get("signature"), "the log entry's signature"),
        _b64(signature.get("verifier"), "the log entry's verifier"),
        algorithm,
        value,
    )


def _intoto(spec: dict[str, Any]) -> LogEntry:
    """An ``intoto`` v0.0.1 entry (cosign's attestations before v2.4): the public key and the
    envelope's hash, no signature."""
    content = _object(spec.get("content"), "the log entry's content")
    algorithm, value = _hash(content.get("hash"), "the log entry's envelope hash")
    return LogEntry(
        "intoto", None, _b64(spec.get("publicKey"), "the log entry's public key"), algorithm, value
    )


def parse_entry(body: bytes) -> LogEntry:
    """The entry a bundle's ``body`` holds: the v0.0.1 kinds cosign logs (``hashedrekord``
    and ``rekord`` for signatures, ``dsse`` and ``intoto`` for attestations).

    Raises:
        PayloadError: another kind of entry, or one that does not name what cosign logs.
    """
    try:
        doc = _object(load_json(body), "the log entry")
    except (ValueError, UnicodeDecodeError):
        raise PayloadError("the log entry is not JSON") from None
    kind = doc.get("kind")
    if kind not in _KINDS or doc.get("apiVersion") != "0.0.1":
        raise PayloadError(
            f"the log entry is a {kind!r} {doc.get('apiVersion')!r} entry, not one of the "
            f"0.0.1 kinds cosign logs ({', '.join(_KINDS)})"
        )
    spec = _object(doc.get("spec"), "the log entry's spec")
    if kind == "dsse":
        return _dsse(spec)
    if kind == "intoto":
        return _intoto(spec)
    return _signed(str(kind), spec)
