"""Referrers through archives: found at the source for ``save``, restored by ``push``.

[collect_referrers][] finds the referrers of a saved image's manifests as ``copy`` does
([prepare_referrers][imgmirror.referrers.carry.prepare_referrers]) and checks that every blob of
each is at the
source before anything is written: strictly (the first missing one raises) or best effort
(it is reported and left out with the referrers that refer to it).
[archive_referrers][] lists what an archive stores (``inspect ARCHIVE --referrers``).
[plan_restore][] decides, before anything is pushed, which referrers an archive's images
take along (a referrer the archive holds incompletely fails the push, or is reported and
skipped when best effort); [RestorePlan.push][] stores them after the images, through
the path ``copy`` uses ([push_referrers][imgmirror.referrers.carry.push_referrers]: subject-aware
``PUT``, else the fallback tag's index merged, cosign tags under their own names).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import attrs

from imgmirror.archive.contents import DockerImage, blob_path, read_contents
from imgmirror.archive.convert import BlobSource
from imgmirror.archive.layout import Origin, SaveItem
from imgmirror.archive.open import open_archive
from imgmirror.archive.referrers import SavedReferrer, StoredReferrer, read_referrers
from imgmirror.errors import ArchiveError, ImgmirrorError, ReferrerError
from imgmirror.model import mediatypes
from imgmirror.model.artifacts import ArtifactFilter, ReferrerChoice, ReferrersArg
from imgmirror.model.digest import Digest
from imgmirror.model.imagetree import ImageTree
from imgmirror.model.manifest import Descriptor
from imgmirror.model.reference import Reference
from imgmirror.model.referrers import Lookup, Referrer, ReferrerNode, walk_referrers
from imgmirror.referrers.carry import ReferrersResult, prepare_referrers, push_referrers
from imgmirror.referrers.discover import Discovered, ReferrerListing
from imgmirror.registry.manifests import ManifestLedger, PushTarget
from imgmirror.transport.client import RegistryClient

__all__ = [
    "RestorePlan",
    "archive_referrers",
    "collect_referrers",
    "plan_restore",
    "with_referrers",
]


def _blobs(tree: ImageTree) -> list[Descriptor]:
    return [b for b in tree.blobs() if not mediatypes.is_foreign_layer(b.media_type)]


def _missing(client: RegistryClient, repo: str, tree: ImageTree) -> str | None:
    """What keeps a referrer from being saved: a blob the source does not have."""
    for blob in _blobs(tree):
        try:
            present = client.blob_exists(repo, blob.digest)
        except ImgmirrorError as exc:
            return f"blob {blob.digest}: {exc}"
        if not present:
            return f"its blob {blob.digest} is missing at the source"
    return None


def collect_referrers(
    client: RegistryClient,
    repo: str,
    tree: ImageTree,
    wanted: ReferrerChoice | None,
) -> tuple[tuple[SavedReferrer, ...], tuple[str, ...]]:
    """The referrers of ``tree``'s manifests to save (none when not ``wanted``), parents
    first, and what was left out.

    Raises:
        ReferrerError: (strict) discovery failed, or a referrer's blob is not at the source.
    """
    if wanted is None:
        return (), ()
    subjects = [tree.top.digest, *(child.digest for child in tree.children)]
    carry = prepare_referrers(client, repo, subjects, wanted)
    found = carry.discovered
    if found is None:
        return (), (carry.failure,) if carry.failure else ()
    saved: list[SavedReferrer] = []
    failed: list[str] = []

    def keep(node: ReferrerNode) -> None:
        r, referrer_tree = node.referrer, found.trees[node.referrer.digest]
        problem = _missing(client, repo, referrer_tree)
        if problem is not None:
            message = f"referrer {r.digest} ({r.artifact_type}) of {r.subject} was not saved: "
            if not wanted.optional:
                raise ReferrerError(
                    message + problem,
                    hint="fix access to the referrer at the source, or save referrers best effort",
                )
            failed.append(message + problem)
            return
        saved.append(SavedReferrer(r, referrer_tree))
        for child in node.children:
            keep(child)

    for node in found.nodes:
        keep(node)
    return tuple(saved), tuple(failed)


def with_referrers(
    items: Sequence[SaveItem],
    client_of: Callable[[Origin], RegistryClient],
    wanted: ReferrerChoice | None,
) -> tuple[list[SaveItem], list[str]]:
    """``items`` with their referrers found ([collect_referrers][]), and what was left out.

    Raises:
        ReferrerError: see [collect_referrers][].
    """
    out: list[SaveItem] = []
    failed: list[str] = []
    for item in items:
        client = client_of(item.origin)
        found, left = collect_referrers(client, item.origin.repository, item.tree, wanted)
        out.append(attrs.evolve(item, referrers=found))
        failed += left
    return out, failed


@attrs.frozen
class _Restore:
    """The referrers one destination repository gets, and their blobs."""

    ref: Reference
    nodes: tuple[ReferrerNode, ...]
    blobs: tuple[Descriptor, ...]


@attrs.frozen
class RestorePlan:
    """Which stored referrers go where (see [plan_restore][])."""

    restores: tuple[_Restore, ...] = ()
    trees: Mapping[Digest, ImageTree] = attrs.field(factory=dict)
    skipped: tuple[str, ...] = ()
    optional: bool = False

    def with_blobs(
        self, targets: Sequence[PushTarget], sources: dict[Digest, BlobSource]
    ) -> list[PushTarget]:
        """``targets`` with the referrers' blobs added, so they go up with the images' (and
        ``sources`` told where the archive keeps them)."""
        extra: dict[Reference, tuple[Digest, ...]] = {}
        for restore in self.restores:
            for blob in restore.blobs:
                sources.setdefault(blob.digest, BlobSource(blob, blob_path(blob.digest)))
            extra[restore.ref] = tuple(b.digest for b in restore.blobs)
        return [
            attrs.evolve(t, blobs=tuple(dict.fromkeys((*t.blobs, *extra.get(t.ref, ())))))
            for t in targets
        ]

    def push(
        self, clients: Mapping[Reference, RegistryClient], ledger: ManifestLedger
    ) -> ReferrersResult | None:
        """Store the referrers after the images (their blobs are already there), each
        manifest through the pool's ``ledger``."""
        if not self.restores and not self.skipped:
            return None
        copied: list[Referrer] = []
        failed: list[str] = list(self.skipped)
        tags: list[str] = []
        for restore in self.restores:
            found = Discovered(restore.nodes, dict(self.trees))
            client, repo = clients[restore.ref], restore.ref.repository
            done = push_referrers(found, client, repo, _present, ledger, optional=self.optional)
            copied += done.copied
            failed += done.failed
            tags += done.fallback_tags
        return ReferrersResult(tuple(copied), tuple(failed), tuple(tags))


def _present(blobs: Sequence[Descriptor]) -> None:
    """Referrer blobs went up with the images' blobs ([RestorePlan.with_blobs][])."""


def _usable(
    stored: Sequence[StoredReferrer], optional: bool
) -> tuple[list[StoredReferrer], list[str]]:
    usable: list[StoredReferrer] = []
    skipped: list[str] = []
    for item in stored:
        if item.tree is None:
            message = f"{item.describe()} is incomplete in the archive: {item.problem}"
            if not optional:
                raise ArchiveError(
                    message + "; nothing was pushed",
                    hint="save the image again, or push its referrers best effort",
                )
            skipped.append(message)
            continue
        usable.append(item)
    return usable, skipped


def _lookup(stored: Sequence[StoredReferrer], wanted: ArtifactFilter) -> Lookup:
    """The stored referrers of a subject, of the ``wanted`` types (for [walk_referrers][])."""
    by_subject: dict[Digest, list[Referrer]] = {}
    for item in stored:
        by_subject.setdefault(item.referrer.subject, []).append(item.referrer)

    def lookup(subject: Digest) -> list[Referrer]:
        return [r for r in by_subject.get(subject, ()) if wanted.wants(r.artifact_type)]

    return lookup


def archive_referrers(
    path: str | os.PathLike[str], types: ReferrersArg = True
) -> tuple[ReferrerListing, ...]:
    """What an archive stores as referrers of each of its images, one listing per image in
    the order [inspect_archive][imgmirror.ops.lookup.inspect_archive] lists them (``inspect
    --referrers``).

    Raises:
        ArchiveError: not a readable image archive, or an inconsistent referrer entry.
        InvalidArtifactType: an unknown type name.
    """
    wanted = ArtifactFilter.parse(types) or ArtifactFilter()
    archive = open_archive(Path(path))
    contents = read_contents(archive)
    lookup = _lookup(read_referrers(archive, contents.referrers), wanted)
    listings = []
    for image in contents.images:
        if isinstance(image, DockerImage):  # no stored manifest: nothing can refer to it
            listings.append(ReferrerListing("<docker archive image>", "", (), ()))
            continue
        subjects = tuple((m.digest, m.media_type) for m in (image.top, *image.children))
        nodes = walk_referrers([digest for digest, _ in subjects], lookup)
        name = ", ".join(str(n) for n in image.names) or "<no name>"
        listings.append(ReferrerListing(name, str(image.top.digest), subjects, nodes))
    return tuple(listings)


def plan_restore(
    stored: Sequence[StoredReferrer],
    targets: Sequence[PushTarget],
    wanted: ReferrerChoice | None,
) -> RestorePlan:
    """The referrers each target takes along: those of its manifests (and theirs), of the
    ``wanted`` types; pure.

    Raises:
        ArchiveError: (strict) a referrer the archive holds only in part.
        ReferrerError: the stored referrers form a cycle, or are too many.
    """
    if wanted is None or not stored:
        return RestorePlan()
    usable, skipped = _usable(stored, wanted.optional)
    lookup = _lookup(usable, wanted.types)
    blobs = {item.referrer.digest: item.blobs for item in usable}

    groups: dict[tuple[str, str], tuple[Reference, list[Digest]]] = {}
    for target in targets:  # one walk per destination repository
        key = (target.ref.registry, target.ref.repository)
        subjects = groups.setdefault(key, (target.ref, []))[1]
        for digest in (target.top.digest, *(child.digest for child in target.children)):
            if digest not in subjects:
                subjects.append(digest)
    restores = []
    for ref, subjects in groups.values():
        nodes = walk_referrers(subjects, lookup)
        if nodes:
            needed = {
                b.digest: b for n in nodes for m in n.walk() for b in blobs[m.referrer.digest]
            }
            restores.append(_Restore(ref, nodes, tuple(needed.values())))
    trees = {item.referrer.digest: item.tree for item in usable if item.tree is not None}
    return RestorePlan(tuple(restores), trees, tuple(skipped), wanted.optional)
