"""What a sigstore trusted root trusts, as values: the Fulcio certificate authorities (each a
root, its intermediates and the window in which it issued), and the Rekor and CT log keys by
log ID with their windows. Built by [trust_material][] from the root sigstore-python
parsed ([imgmirror.verify.keyless.load_trusted_root][imgmirror.verify.keyless.load_trusted_root]),
so ``trusted_root.json`` has one
parser. No I/O.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import attrs

from imgmirror.errors import InvalidPolicy
from imgmirror.verify.keys import PublicKey, public_key

if TYPE_CHECKING:
    from cryptography import x509

__all__ = ["Authority", "KeylessError", "LogKey", "TrustMaterial", "Window", "trust_material"]


class KeylessError(Exception):
    """A keyless signature did not verify (the message says why, in one line)."""


@attrs.frozen
class Window:
    """A trusted root's ``validFor``: from ``start`` to ``end`` (None: open)."""

    start: dt.datetime | None = None
    end: dt.datetime | None = None

    def covers(self, at: dt.datetime) -> bool:
        """Whether ``at`` falls inside the window."""
        if self.start is not None and at < self.start:
            return False
        return self.end is None or at <= self.end


@attrs.frozen
class Authority:
    """A Fulcio CA: its ``root`` (the chain's last certificate), the ``intermediates`` before
    it, and the ``window`` in which certificates it issued are trusted."""

    uri: str
    root: x509.Certificate = attrs.field(eq=False, repr=False)
    intermediates: tuple[x509.Certificate, ...] = attrs.field(eq=False, repr=False)
    window: Window


@attrs.frozen
class LogKey:
    """A transparency log's key: ``log_id`` is the sha256 of its DER public key."""

    url: str
    log_id: bytes
    key: PublicKey
    window: Window


@attrs.frozen
class TrustMaterial:
    """The Fulcio CAs, Rekor logs (``tlogs``) and CT logs (``ctlogs``) of a trusted root."""

    authorities: tuple[Authority, ...] = ()
    tlogs: tuple[LogKey, ...] = ()
    ctlogs: tuple[LogKey, ...] = ()

    def tlog(self, log_id: bytes) -> LogKey | None:
        """The Rekor log whose ID is ``log_id``."""
        return next((log for log in self.tlogs if log.log_id == log_id), None)

    def ctlog(self, log_id: bytes) -> LogKey | None:
        """The CT log whose ID is ``log_id``."""
        return next((log for log in self.ctlogs if log.log_id == log_id), None)


def _window(valid_for: Any) -> Window:
    if valid_for is None:
        return Window()
    return Window(getattr(valid_for, "start", None), getattr(valid_for, "end", None))


def _logs(instances: Any) -> tuple[LogKey, ...]:
    from cryptography.hazmat.primitives.serialization import load_der_public_key  # noqa: PLC0415

    logs = []
    for instance in instances or ():
        raw, log_id = instance.public_key.raw_bytes, instance.log_id.key_id
        if not raw or not log_id:
            continue
        try:
            key = public_key(load_der_public_key(raw), f"log {instance.base_url}")
        except (ValueError, InvalidPolicy):
            continue  # as sigstore's clients do: a key no signature can use is left out
        logs.append(LogKey(instance.base_url, log_id, key, _window(instance.public_key.valid_for)))
    return tuple(logs)


def trust_material(root: Any) -> TrustMaterial:
    """The material of a ``sigstore_models.trustroot.v1.TrustedRoot``.

    Raises:
        ValueError: a certificate authority's chain is empty or not DER.
    """
    from cryptography import x509  # noqa: PLC0415 - start-up time

    authorities = []
    for ca in root.certificate_authorities or ():
        chain = [x509.load_der_x509_certificate(c.raw_bytes) for c in ca.cert_chain.certificates]
        if not chain:
            raise ValueError(f"certificate authority {ca.uri} has an empty chain")
        authorities.append(Authority(ca.uri, chain[-1], tuple(chain[:-1]), _window(ca.valid_for)))
    return TrustMaterial(tuple(authorities), _logs(root.tlogs), _logs(root.ctlogs))
