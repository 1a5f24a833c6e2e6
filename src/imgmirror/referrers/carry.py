"""Carry referrers to a destination after the image, digests unchanged.

Each referrer moves with the copy machinery
([plan_copy][imgmirror.registry.manifests.plan_copy], and the copy's blob engine through
``send_blobs``: blobs by digest, then its manifests, byte for byte),
parents before the referrers that refer to them. A referrer found under a cosign tag is stored
under the same tag. Any other is stored by digest: a registry that indexes referrers answers
the PUT with ``OCI-Subject``; otherwise the fallback tag's index is updated (read, merged
keeping every entry already there, written back). [prepare_referrers][] finds them
before the image is pushed (a bad referrers index stops the copy before anything is tagged);
[ReferrerCarry.push][] stores them once the image is in, strictly (the first failure
raises) or best effort (failures are reported, the rest goes on).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs

from imgmirror.errors import ImgmirrorError, ManifestError, NotFound, ReferrerError
from imgmirror.model import mediatypes
from imgmirror.model.artifacts import ReferrerChoice, fallback_tag
from imgmirror.model.digest import Digest
from imgmirror.model.manifest import Descriptor, ImageIndex
from imgmirror.model.reference import Reference
from imgmirror.model.referrers import Referrer, ReferrerNode, merge_fallback_index, referrer_entry
from imgmirror.referrers.discover import Discovered, discover
from imgmirror.registry.manifests import ManifestLedger, plan_copy, store_manifests
from imgmirror.transport.client import RegistryClient

__all__ = [
    "ReferrerCarry",
    "ReferrersResult",
    "SendBlobs",
    "prepare_referrers",
    "push_referrers",
    "with_verified",
]


@attrs.frozen
class ReferrersResult:
    """What carrying referrers did.

    Attributes:
        copied: the referrers now at the destination, parents first.
        failed: one line per referrer left behind (best effort only).
        fallback_tags: fallback tags written at the destination (``sha256-<hex>``).
    """

    copied: tuple[Referrer, ...] = ()
    failed: tuple[str, ...] = ()
    fallback_tags: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``--json`` output)."""
        return {
            "copied": [r.to_json() for r in self.copied],
            "failed": list(self.failed),
            "fallback_tags": list(self.fallback_tags),
        }


#: Makes blobs present at the destination (the copy's blob engine, bound to both ends).
SendBlobs = Callable[[Sequence[Descriptor]], object]


@attrs.define
class _Pusher:
    dst: RegistryClient
    dst_repo: str
    discovered: Discovered
    send_blobs: SendBlobs
    ledger: ManifestLedger
    pending: dict[Digest, list[dict[str, Any]]] = attrs.field(factory=dict)

    def push(self, referrer: Referrer) -> None:
        """Blobs, child manifests, then the referrer manifest itself."""
        tree = self.discovered.trees[referrer.digest]
        target = Reference(self.dst.registry, self.dst_repo, referrer.tag, None)
        plan = plan_copy(tree, target)
        self.send_blobs(plan.blobs)
        stored = store_manifests(self.dst, self.dst_repo, plan.manifests, self.ledger)
        if referrer.tag is None and (stored is None or stored.subject != referrer.subject):
            entry = referrer_entry(plan.top.raw, plan.top.media_type)
            self.pending.setdefault(referrer.subject, []).append(entry)

    def write_fallback(self, subject: Digest, entries: Sequence[dict[str, Any]]) -> str | None:
        """Merge ``entries`` into the destination's fallback tag for ``subject``."""
        tag = fallback_tag(subject)
        where = f"tag {tag} in {self.dst.registry}/{self.dst_repo}"
        try:
            existing = self.dst.get_manifest(self.dst_repo, tag)
        except NotFound:
            current = None
        except ManifestError as exc:
            raise ReferrerError(
                f"{where} is not a referrers index: {exc.message}; left unchanged"
            ) from None
        else:
            if not isinstance(existing, ImageIndex):
                raise ReferrerError(
                    f"{where} holds a {existing.media_type}, not a referrers index; left unchanged",
                    hint="move that tag away, or copy to a registry that serves the referrers API",
                )
            current = existing.raw
        merged = merge_fallback_index(current, entries, where)
        if merged is None:
            return None
        self.ledger.store(self.dst, self.dst_repo, tag, merged, mediatypes.OCI_INDEX)
        return tag


def _failure(referrer: Referrer, exc: ImgmirrorError) -> str:
    return (
        f"referrer {referrer.digest} ({referrer.artifact_type}) of {referrer.subject} "
        f"was not copied: {exc}"
    )


def push_referrers(
    discovered: Discovered,
    dst: RegistryClient,
    dst_repo: str,
    send_blobs: SendBlobs,
    ledger: ManifestLedger,
    *,
    optional: bool = False,
) -> ReferrersResult:
    """Store ``discovered`` at ``dst``/``dst_repo`` (see the module docstring), each
    manifest through the pool's ``ledger``.

    Best effort (``optional``): a referrer that fails is reported and the referrers that
    refer to it are skipped; the others are carried.

    Raises:
        ReferrerError: (strict) the first referrer that could not be copied.
    """
    pusher = _Pusher(dst, dst_repo, discovered, send_blobs, ledger)
    copied: list[Referrer] = []
    failed: list[str] = []

    def carry(node: ReferrerNode) -> None:
        try:
            pusher.push(node.referrer)
        except ImgmirrorError as exc:
            if not optional:
                raise ReferrerError(
                    _failure(node.referrer, exc),
                    hint="the image itself was copied; fix access to the referrer, or carry "
                    "referrers best effort",
                ) from exc
            failed.append(_failure(node.referrer, exc))
            return
        copied.append(node.referrer)
        for child in node.children:
            carry(child)

    for node in discovered.nodes:
        carry(node)
    tags: list[str] = []
    for subject, entries in pusher.pending.items():
        try:
            tag = pusher.write_fallback(subject, entries)
        except ImgmirrorError as exc:
            if not optional:
                raise
            failed.append(str(exc))
            continue
        if tag:
            tags.append(tag)
    return ReferrersResult(tuple(copied), tuple(failed), tuple(tags))


@attrs.frozen
class ReferrerCarry:
    """Referrers found before the image is copied, to push once it is in."""

    discovered: Discovered | None
    failure: str | None = None
    optional: bool = False

    def push(
        self, dst: RegistryClient, dst_repo: str, send_blobs: SendBlobs, ledger: ManifestLedger
    ) -> ReferrersResult:
        """Store them at the destination (see [push_referrers][])."""
        if self.discovered is None:
            return ReferrersResult(failed=(self.failure,) if self.failure else ())
        return push_referrers(
            self.discovered, dst, dst_repo, send_blobs, ledger, optional=self.optional
        )


def prepare_referrers(
    src: RegistryClient,
    src_repo: str,
    subjects: Sequence[Digest],
    wanted: ReferrerChoice,
) -> ReferrerCarry:
    """Discover the referrers of ``subjects`` at the source, before anything is pushed.

    Raises:
        ReferrerError: (strict) discovery failed; best effort, the failure is kept to report.
    """
    try:
        found = discover(src, src_repo, subjects, wanted.types)
    except ImgmirrorError as exc:
        if not wanted.optional:
            raise
        return ReferrerCarry(None, f"referrers of {subjects[0]} were not looked up: {exc}")
    return ReferrerCarry(found, optional=wanted.optional)


def with_verified(carry: ReferrerCarry, verified: Discovered | None) -> ReferrerCarry:
    """``carry`` plus the referrers a verification policy accepted (each once)."""
    if verified is None or not verified.nodes:
        return carry
    if carry.discovered is None:
        return attrs.evolve(carry, discovered=verified)
    have = {node.referrer.digest for root in carry.discovered.nodes for node in root.walk()}
    extra = tuple(n for n in verified.nodes if n.referrer.digest not in have)
    merged = Discovered(
        carry.discovered.nodes + extra, {**verified.trees, **carry.discovered.trees}
    )
    return attrs.evolve(carry, discovered=merged)
