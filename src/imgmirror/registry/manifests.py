"""Which blobs and manifests a copy stores, in which order, and storing the manifests.

:func:`plan_copy` decides in pure code: blobs first (any order), then child manifests by digest
bottom-up, then the top manifest by tag, so a tag never points at something incomplete.
:func:`store_manifests` is the one place manifests are written: copy, push and the referrer
carrier all call it, each manifest byte for byte, so digests survive.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from imgmirror.model import mediatypes
from imgmirror.model.digest import Digest
from imgmirror.model.imagetree import ImageTree, Manifest, bottom_up
from imgmirror.model.manifest import Descriptor
from imgmirror.model.reference import Reference
from imgmirror.transport.client import ManifestPut, RegistryClient

__all__ = ["CopyPlan", "ManifestPush", "PushTarget", "Stored", "plan_copy", "store_manifests"]

#: Manifests already stored in this run: (registry, repository, digest).
Stored = set[tuple[str, str, Digest]]


@attrs.frozen
class ManifestPush:
    """One manifest to store at the destination, under ``ref`` (a tag or its digest)."""

    raw: bytes
    media_type: str
    digest: Digest
    ref: str

    @classmethod
    def of(cls, manifest: Manifest, ref: str | None = None) -> ManifestPush:
        """``manifest`` stored under ``ref``, by default its digest."""
        digest = manifest.digest
        return cls(manifest.raw, manifest.media_type, digest, ref or str(digest))

    @property
    def by_digest(self) -> bool:
        return self.ref == str(self.digest)


@attrs.frozen
class CopyPlan:
    """What a copy does, in order: ``blobs`` (any order), then ``manifests`` in sequence."""

    blobs: tuple[Descriptor, ...]
    manifests: tuple[ManifestPush, ...]

    @property
    def top(self) -> ManifestPush:
        return self.manifests[-1]


@attrs.frozen
class PushTarget:
    """One manifest tree (from an archive) to store under one destination reference."""

    ref: Reference
    top: Manifest
    children: tuple[Manifest, ...]
    blobs: tuple[Digest, ...]

    def manifests(self) -> tuple[ManifestPush, ...]:
        """Its manifests in the order they are stored: children by digest bottom-up, then
        the top under the reference's tag (by digest when it has none)."""
        below = bottom_up(self.top, self.children)
        return (*(ManifestPush.of(m) for m in below), ManifestPush.of(self.top, self.ref.tag))


def plan_copy(tree: ImageTree, destination: Reference) -> CopyPlan:
    """Order the work of copying ``tree`` to ``destination`` (by digest when it has no tag).

    Foreign (non-distributable) layers are left out: they live at their own URLs and
    registries do not require them.
    """
    blobs = tuple(b for b in tree.blobs() if not mediatypes.is_foreign_layer(b.media_type))
    pushes = [ManifestPush.of(m) for m in tree.children]  # already bottom-up
    pushes.append(ManifestPush.of(tree.top, destination.tag))
    return CopyPlan(blobs=blobs, manifests=tuple(pushes))


def store_manifests(
    client: RegistryClient,
    repo: str,
    manifests: Sequence[ManifestPush],
    *,
    stored: Stored | None = None,
) -> ManifestPut | None:
    """Store ``manifests`` at ``client``/``repo`` in order; returns the last one's reply.

    A manifest by digest already in ``stored`` (shared by the calls of one run) is not sent
    again; each one sent by digest is added to it. Tags are always written.
    """
    reply = None
    for push in manifests:
        key = (client.registry, repo, push.digest)
        if stored is not None and push.by_digest and key in stored:
            continue
        reply = client.store_manifest(repo, push.ref, push.raw, push.media_type)
        if stored is not None and push.by_digest:
            stored.add(key)
    return reply
