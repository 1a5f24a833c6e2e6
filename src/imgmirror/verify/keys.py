"""Public keys as cosign accepts them: PEM ``PUBLIC KEY`` (ECDSA P-256/P-384/P-521, RSA,
Ed25519), from a file's bytes or a Kubernetes Secret (``cosign generate-key-pair k8s://``
writes ``cosign.pub`` into one). Verification follows sigstore's defaults: ECDSA over SHA-256
(or the curve's own hash, P-384: SHA-384), RSA PKCS#1 v1.5 or PSS over SHA-256, Ed25519 pure.
No I/O: callers pass bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from imgmirror.errors import InvalidPolicy

if TYPE_CHECKING:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

__all__ = ["PublicKey", "key_from_secret", "load_public_key", "public_key"]

#: Each supported curve's own hash (cryptography is imported when a key is used: start-up).
_CURVE_HASH = {"secp256r1": "SHA256", "secp384r1": "SHA384", "secp521r1": "SHA512"}
_MAX_PEM = 64 * 1024


@attrs.frozen
class PublicKey:
    """One allowed key: ``name`` (where it came from), ``fingerprint`` (sha256 of its DER
    SubjectPublicKeyInfo, hex) and the key itself."""

    name: str
    fingerprint: str
    key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey = attrs.field(
        eq=False, repr=False
    )

    def verify(self, signature: bytes, data: bytes) -> bool:
        """Whether ``signature`` is this key's over ``data``."""
        from cryptography.exceptions import InvalidSignature  # noqa: PLC0415 - start-up time
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519  # noqa: PLC0415

        try:
            if isinstance(self.key, ed25519.Ed25519PublicKey):
                self.key.verify(signature, data)
                return True
            if isinstance(self.key, ec.EllipticCurvePublicKey):
                return self._ecdsa(signature, data)
            return self._rsa(signature, data)
        except (InvalidSignature, ValueError):
            return False

    def verify_digest(self, signature: bytes, digest: bytes) -> bool:
        """Whether ``signature`` is this key's over a SHA-256 ``digest`` (a sigstore message
        signature); Ed25519 signs messages, never digests."""
        from cryptography.exceptions import InvalidSignature  # noqa: PLC0415 - start-up time
        from cryptography.hazmat.primitives import hashes  # noqa: PLC0415
        from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils  # noqa: PLC0415

        prehashed = utils.Prehashed(hashes.SHA256())
        try:
            if isinstance(self.key, ec.EllipticCurvePublicKey):
                self.key.verify(signature, digest, ec.ECDSA(prehashed))
                return True
            if isinstance(self.key, rsa.RSAPublicKey):
                self.key.verify(signature, digest, padding.PKCS1v15(), prehashed)
                return True
        except (InvalidSignature, ValueError):
            return False
        return False

    def _ecdsa(self, signature: bytes, data: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature  # noqa: PLC0415 - start-up time
        from cryptography.hazmat.primitives import hashes  # noqa: PLC0415
        from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415

        assert isinstance(self.key, ec.EllipticCurvePublicKey)
        own = _CURVE_HASH.get(self.key.curve.name, "SHA256")
        algorithms: list[type[hashes.HashAlgorithm]] = [hashes.SHA256]
        if own != "SHA256":
            algorithms.append(getattr(hashes, own))
        for algorithm in algorithms:
            try:
                self.key.verify(signature, data, ec.ECDSA(algorithm()))
                return True
            except InvalidSignature:
                continue
        return False

    def _rsa(self, signature: bytes, data: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature  # noqa: PLC0415 - start-up time
        from cryptography.hazmat.primitives import hashes  # noqa: PLC0415
        from cryptography.hazmat.primitives.asymmetric import padding, rsa  # noqa: PLC0415

        assert isinstance(self.key, rsa.RSAPublicKey)
        schemes: tuple[padding.AsymmetricPadding, ...] = (
            padding.PKCS1v15(),
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO),
        )
        for scheme in schemes:
            try:
                self.key.verify(signature, data, scheme, hashes.SHA256())
                return True
            except InvalidSignature:
                continue
        return False

    def describe(self) -> str:
        """``key NAME (sha256:ABCD…)`` for reports."""
        return f"key {self.name} (sha256:{self.fingerprint[:16]})"


def load_public_key(pem: bytes, name: str) -> PublicKey:
    """The public key in ``pem``.

    Raises:
        InvalidPolicy: not a PEM public key of a kind cosign signs with.
    """
    from cryptography.exceptions import UnsupportedAlgorithm  # noqa: PLC0415 - start-up time
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    if len(pem) > _MAX_PEM:
        raise InvalidPolicy(f"{name} is {len(pem)} bytes, not a public key")
    if b"PRIVATE KEY" in pem:
        raise InvalidPolicy(
            f"{name} holds a private key", hint="give the public key (cosign.pub), never the key"
        )
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm, TypeError):
        raise InvalidPolicy(
            f"{name} is not a PEM public key",
            hint="give a cosign public key (-----BEGIN PUBLIC KEY-----), e.g. cosign.pub",
        ) from None
    return public_key(key, name)


def public_key(key: object, name: str) -> PublicKey:
    """A key ``cryptography`` loaded (from PEM, a certificate, a trusted root) as a
    [PublicKey][] named ``name``.

    Raises:
        InvalidPolicy: not a kind of key cosign signs with.
    """
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415 - start-up time
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa  # noqa: PLC0415

    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name not in _CURVE_HASH:
        raise InvalidPolicy(f"{name}: ECDSA curve {key.curve.name} is not supported")
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        raise InvalidPolicy(f"{name}: {type(key).__name__} keys are not supported",
                            hint="use an ECDSA, RSA or Ed25519 key")  # fmt: skip
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return PublicKey(name, hashlib.sha256(der).hexdigest(), key)


def key_from_secret(doc: Mapping[str, Any], name: str, entry: str | None) -> PublicKey:
    """The public key a Kubernetes Secret holds under ``entry`` (default ``cosign.pub``), in
    ``stringData`` or base64 in ``data``.

    Raises:
        InvalidPolicy: the Secret has no such entry, or it is not a public key.
    """
    wanted = entry or "cosign.pub"
    for section in ("stringData", "data"):
        values = doc.get(section)
        if not isinstance(values, Mapping) or wanted not in values:
            continue
        value = values[wanted]
        if not isinstance(value, str):
            raise InvalidPolicy(f"{name}: {section}[{wanted}] is not a string")
        if section == "stringData":
            return load_public_key(value.encode(), f"{name} [{wanted}]")
        try:
            pem = base64.b64decode("".join(value.split()), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidPolicy(f"{name}: data[{wanted}] is not base64") from None
        return load_public_key(pem, f"{name} [{wanted}]")
    raise InvalidPolicy(
        f"{name} has no {wanted} entry",
        hint="name the Secret's entry that holds the public key (key: in the policy)",
    )
