"""Which blobs and manifests a copy stores, in which order, and storing the manifests.

[plan_copy][] decides in pure code: blobs first (any order), then child manifests by digest
bottom-up, then the top manifest by tag, so a tag never points at something incomplete.
[store_manifests][] is the one place manifests are written: copy, push and the referrer
carrier all call it, each manifest byte for byte, so digests survive, through the pool's
[ManifestLedger][].

Distribution, accepting an index, reads the repository's link to each child manifest, and
rewrites a manifest's link on every ``PUT`` of it, even when the link is there (distribution
2.8's filesystem driver truncates the file and writes it again). Two images of one pool that
share children (the aliases ``latest``, ``1`` and ``1.2`` of one multi-platform index; an
image and a fallback referrers index listing it) would refuse each other's index
(``400 MANIFEST_BLOB_UNKNOWN``). The ledger therefore keeps:

- a manifest ``PUT`` by digest happens once per registry and repository: a second image that
  needs it waits for the first ``PUT`` and takes its answer;
- the ``PUT`` of a manifest and the ``PUT`` of an index listing it never run at once in one
  repository of one registry. Those that only write a digest's link share it, as do those
  that only read it, so the aliases of one index still go out in parallel.

Other writers (another process) are not seen; the ledger only keeps this pool's writes from
meeting each other.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence

import attrs

from imgmirror.errors import ManifestError
from imgmirror.model import mediatypes
from imgmirror.model.digest import Digest
from imgmirror.model.imagetree import ImageTree, Manifest, bottom_up
from imgmirror.model.manifest import Descriptor, ImageIndex, parse_manifest
from imgmirror.model.reference import Reference
from imgmirror.transport.client import ManifestPut, RegistryClient

__all__ = [
    "CopyPlan",
    "ManifestLedger",
    "ManifestPush",
    "PushTarget",
    "plan_copy",
    "store_manifests",
]


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
    ledger: ManifestLedger,
) -> ManifestPut | None:
    """Store ``manifests`` at ``client``/``repo`` in order, through the pool's ``ledger``;
    returns the last one's reply.

    A manifest by digest the ledger has seen stored there is not sent again (its first reply
    is returned); tags are always written.
    """
    reply = None
    for push in manifests:
        reply = ledger.store(client, repo, push.ref, push.raw, push.media_type)
    return reply


_Key = tuple[str, str, Digest]

#: How a ``PUT`` holds a digest of its repository: writing its link alone (a ``PUT`` by tag:
#: shared with other such ``PUT``), writing it as the one ``PUT`` by digest (exclusive), or
#: reading it (an index listing it: shared with other readers).
_TAG, _DIGEST, _CHILD = "tag", "digest", "child"


class ManifestLedger:
    """The manifests a pool stored, per registry and repository, and the ``PUT`` in flight.

    Safe to use from many threads at once.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._stored: dict[_Key, ManifestPut] = {}
        self._held: dict[_Key, tuple[str, int]] = {}

    def store(
        self, client: RegistryClient, repo: str, ref: str, raw: bytes, media_type: str
    ) -> ManifestPut:
        """``PUT`` the manifest under ``ref`` (a tag or its digest), unless this pool
        already stored it by digest there; returns what the registry answered (then or now).

        Raises:
            ImgmirrorError: the ``PUT`` failed (nothing is recorded; the next caller tries).
        """
        digest = Digest.of(raw)
        key = (client.registry, repo, digest)
        by_digest = ref == str(digest)
        if by_digest and (stored := self._known(key)) is not None:
            return stored  # no write: nothing to wait for
        holds = [(key, _DIGEST if by_digest else _TAG)]
        holds += [((client.registry, repo, c), _CHILD) for c in _children(raw, media_type)]
        with self._holding(holds):
            if by_digest and (stored := self._known(key)) is not None:
                return stored  # stored while this one waited
            put = client.store_manifest(repo, ref, raw, media_type)
            with self._changed:
                self._stored[key] = put
        return put

    def _known(self, key: _Key) -> ManifestPut | None:
        with self._changed:
            return self._stored.get(key)

    @contextlib.contextmanager
    def _holding(self, holds: Sequence[tuple[_Key, str]]) -> Iterator[None]:
        """Take every key at once in its mode (all or none: no deadlock), then release."""
        with self._changed:
            while not all(self._free(key, mode) for key, mode in holds):
                self._changed.wait()
            for key, mode in holds:
                self._held[key] = (mode, self._held.get(key, (mode, 0))[1] + 1)
        try:
            yield
        finally:
            with self._changed:
                for key, mode in holds:
                    count = self._held[key][1] - 1
                    if count:
                        self._held[key] = (mode, count)
                    else:
                        del self._held[key]
                self._changed.notify_all()

    def _free(self, key: _Key, mode: str) -> bool:
        held = self._held.get(key)
        return held is None or (held[0] == mode and mode != _DIGEST)


def _children(raw: bytes, media_type: str) -> tuple[Digest, ...]:
    """The manifests an index lists (none for an image manifest)."""
    if not mediatypes.is_index(mediatypes.base_media_type(media_type)):
        return ()
    try:
        index = parse_manifest(raw, media_type)
    except ManifestError:
        return ()  # the registry refuses it, whatever runs beside it
    if not isinstance(index, ImageIndex):
        return ()
    return tuple(dict.fromkeys(d.digest for d in index.manifests))
