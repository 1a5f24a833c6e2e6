"""The verification policy as values: which keys and identities may sign, which attestations
must be there, how old the image may be. Parsed at the edge
([.policyfile][imgmirror.verify.policyfile], the CLI's
flags) and passed inward frozen. No I/O: key files are named here, read by the gate.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from typing import Any

import attrs

from imgmirror.verify.age import format_duration
from imgmirror.verify.identity import Identity

__all__ = ["KeySource", "Policy"]


@attrs.frozen
class KeySource:
    """Where an allowed public key is: a PEM file, or a Kubernetes Secret manifest (YAML or
    JSON) and its ``entry`` (default ``cosign.pub``). ``origin`` is ``file:line`` or the flag."""

    path: str
    origin: str
    secret: bool = False
    entry: str | None = None

    def resolved(self, base: str | None) -> str:
        """The path, relative ones taken from ``base`` (the policy file's directory)."""
        if base is None or os.path.isabs(self.path):
            return self.path
        return os.path.join(base, self.path)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path}
        if self.secret:
            out["secret"] = True
            out["entry"] = self.entry or "cosign.pub"
        return out


@attrs.frozen
class Policy:
    """What an image must carry to be copied.

    Attributes:
        keys: public keys any of which may sign (cosign ``--key``).
        identities: keyless signers (issuer + subject or subject regex), checked against
            ``trusted_root``.
        trusted_root: a sigstore ``trusted_root.json``; keyless needs one (no network).
        attestations: predicate type URIs that must each be attested by an allowed signer.
        min_age, max_age: how old the image must be (its config's ``created``, else the
            verified signing time).
        per_platform: also require a signature on each platform image copied from an index.
        base: the directory relative paths are taken from (None: the working directory).
        origin: where the policy was written, for messages.
    """

    keys: tuple[KeySource, ...] = ()
    identities: tuple[Identity, ...] = ()
    trusted_root: str | None = None
    attestations: tuple[str, ...] = ()
    min_age: dt.timedelta | None = None
    max_age: dt.timedelta | None = None
    per_platform: bool = False
    base: str | None = None
    origin: str = "<policy>"

    def describe(self) -> dict[str, Any]:
        """The policy as JSON (keys by path; the gate adds their fingerprints)."""
        out: dict[str, Any] = {
            "keys": [k.to_json() for k in self.keys],
            "identities": [i.to_json() for i in self.identities],
            "attestations": list(self.attestations),
            "per-platform": self.per_platform,
        }
        if self.trusted_root:
            out["trusted-root"] = self.trusted_root
        if self.min_age is not None:
            out["min-age"] = format_duration(self.min_age)
        if self.max_age is not None:
            out["max-age"] = format_duration(self.max_age)
        return out

    def fingerprint(self, material: list[str]) -> str:
        """A digest of the policy and of the key and trusted-root ``material`` it loaded
        (their fingerprints): any change makes a new one, so cached decisions lapse."""
        text = json.dumps({"policy": self.describe(), "material": material}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()
