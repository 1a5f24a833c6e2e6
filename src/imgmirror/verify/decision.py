"""The decision about one image: which signatures and attestations verified, and whether the
policy is met. [decide][] is pure: the gate passes what it verified and why the rest
failed. No I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import attrs

from imgmirror.model.digest import Digest
from imgmirror.verify.age import age_problem, parse_time
from imgmirror.verify.policy import Policy

__all__ = ["Decision", "Verified", "decide"]

_MAX_REASONS = 3


@attrs.frozen
class Verified:
    """One signature or attestation that verified.

    Attributes:
        subject: the digest it is about (the image's, or a platform image's).
        referrer: the manifest it was found in (a ``.sig``/``.att`` tag or a referrer).
        by: the key or identity that signed it (``key cosign.pub (sha256:…)``).
        predicate_type: an attestation's predicate type; None for a signature.
        signed_at: a verified signing time (transparency log), if any.
    """

    subject: Digest
    referrer: Digest
    by: str
    predicate_type: str | None = None
    signed_at: dt.datetime | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "subject": str(self.subject), "referrer": str(self.referrer), "by": self.by
        }  # fmt: skip
        if self.predicate_type:
            out["predicateType"] = self.predicate_type
        if self.signed_at:
            out["signedAt"] = self.signed_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        return out


@attrs.frozen
class Decision:
    """Whether the policy accepts an image, and on what grounds.

    Attributes:
        digest: the digest checked (the top manifest).
        accepted: whether it may be copied.
        reason: the refusal in one line (None when accepted).
        signatures, attestations: what verified.
        created: the image's age reference (config ``created`` or signing time).
        cached: the decision came from the cache file.
    """

    digest: Digest
    accepted: bool
    reason: str | None = None
    signatures: tuple[Verified, ...] = ()
    attestations: tuple[Verified, ...] = ()
    created: dt.datetime | None = None
    cached: bool = False

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``--json``, the sync report, the cache file)."""
        out: dict[str, Any] = {
            "digest": str(self.digest),
            "accepted": self.accepted,
            "signatures": [v.to_json() for v in self.signatures],
            "attestations": [v.to_json() for v in self.attestations],
            "cached": self.cached,
        }
        if self.reason:
            out["reason"] = self.reason
        if self.created:
            out["created"] = self.created.strftime("%Y-%m-%dT%H:%M:%SZ")
        return out

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Decision:
        """A cached decision (marked ``cached``).

        Raises:
            ValueError, KeyError, TypeError: the entry is malformed.
        """

        def verified(item: dict[str, Any]) -> Verified:
            return Verified(
                Digest.parse(item["subject"]), Digest.parse(item["referrer"]), str(item["by"]),
                item.get("predicateType"), parse_time(item.get("signedAt")),
            )  # fmt: skip

        return cls(
            Digest.parse(doc["digest"]), bool(doc["accepted"]), doc.get("reason"),
            tuple(verified(v) for v in doc["signatures"]),
            tuple(verified(v) for v in doc["attestations"]),
            parse_time(doc.get("created")), cached=True,
        )  # fmt: skip

    def summary(self) -> str:
        """One line for people: ``verified by key cosign.pub (…); attestations: …``."""
        if not self.accepted:
            return f"refused: {self.reason}"
        signers = ", ".join(dict.fromkeys(v.by for v in (*self.signatures, *self.attestations)))
        line = f"verified by {signers}"
        if self.attestations:
            line += "; attestations: " + ", ".join(
                dict.fromkeys(str(v.predicate_type) for v in self.attestations)
            )
        return line + (" (cached)" if self.cached else "")


def _why(problems: Sequence[str]) -> str:
    if not problems:
        return ""
    shown = "; ".join(problems[:_MAX_REASONS])
    more = len(problems) - _MAX_REASONS
    return f" ({shown}{f'; {more} more' if more > 0 else ''})"


def decide(
    policy: Policy,
    digest: Digest,
    subjects: Sequence[Digest],
    verified: Sequence[Verified],
    problems: Sequence[str],
    *,
    created: dt.datetime | None,
    now: dt.datetime,
) -> Decision:
    """Apply ``policy`` to what verified.

    ``subjects`` must each carry a signature by an allowed signer (the top manifest, and with
    ``per_platform`` each platform image); every required attestation must name ``digest``
    or one of ``subjects``. ``problems`` says why other signatures did not count.
    """
    signatures = tuple(v for v in verified if v.predicate_type is None)
    attestations = tuple(v for v in verified if v.predicate_type is not None)
    # a verified statement about the digest signs it, as cosign v3 reads its bundles
    signed = {v.subject for v in verified}
    for subject in subjects:
        if subject not in signed:
            what = "the image" if subject == digest else f"platform image {subject}"
            reason = f"no valid signature of {what} by an allowed signer{_why(problems)}"
            return Decision(digest, False, reason, signatures, attestations, created)
    about = {digest, *subjects}
    for wanted in policy.attestations:
        if not any(a.predicate_type == wanted and a.subject in about for a in attestations):
            others = sorted({str(a.predicate_type) for a in attestations})
            found = f"; verified: {', '.join(others)}" if others else ""
            reason = f"no attestation {wanted} by an allowed signer{found}{_why(problems)}"
            return Decision(digest, False, reason, signatures, attestations, created)
    if created is None:
        times = [v.signed_at for v in verified if v.signed_at is not None]
        created = min(times) if times else None
    problem = age_problem(created, now, policy.min_age, policy.max_age)
    if problem:
        return Decision(digest, False, problem, signatures, attestations, created)
    return Decision(digest, True, None, signatures, attestations, created)
