"""Is the destination already current? The one check copy and sync make before moving anything.

[check_freshness][] asks each end with one manifest ``HEAD`` (the destination's while the
source is being asked): the source for the digest the destination must hold (no request for
an image named by digest), the destination for what its tag (or that digest) holds. Only a
platform choice out of an index needs more: the index itself, read once and handed on in
[Freshness.source_top][imgmirror.registry.freshness.Freshness.source_top] so the copy that
follows does not fetch it again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context

import attrs

from imgmirror.errors import ImgmirrorError, TransferStalled
from imgmirror.model import mediatypes
from imgmirror.model.digest import Digest
from imgmirror.model.imagetree import Manifest, choose_children, subset_index
from imgmirror.model.manifest import Descriptor, ImageIndex
from imgmirror.model.platform import Platform
from imgmirror.model.reference import Reference
from imgmirror.transport.client import RegistryClient

__all__ = ["Freshness", "check_freshness", "head_or_none"]

log = logging.getLogger("imgmirror")


@attrs.frozen
class Freshness:
    """What the two ends answered.

    Attributes:
        wanted: the digest the destination must hold; None when the source did not say
            (absent, or its ``HEAD`` failed: the copy's ``GET`` then reports the real error).
        present: what the destination reference resolves to, None when absent or unreadable.
        source_top: the source's top manifest when it had to be read (an index narrowed by
            platform), else None.
        source_error: why the source's ``HEAD`` failed, if it did (None for plain absence).
    """

    wanted: Digest | None
    present: Descriptor | None
    source_top: Manifest | None = None
    source_error: ImgmirrorError | None = None

    @property
    def current(self) -> bool:
        """Whether the destination already holds the wanted digest."""
        return (
            self.wanted is not None
            and self.present is not None
            and self.present.digest == self.wanted
        )


def check_freshness(
    src: RegistryClient,
    source: Reference,
    dst: RegistryClient,
    destination: Reference,
    platforms: Sequence[Platform] | None = None,
) -> Freshness:
    """Ask both ends whether ``destination`` already holds what copying ``source`` writes."""
    known = destination.tag or (str(destination.digest) if destination.digest else None)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="destination") as side:
        there = (
            side.submit(copy_context().run, head_or_none, dst, destination.repository, known)
            if known
            else None
        )
        wanted, top, error = _wanted(src, source, platforms)
        if there is not None:
            present = there.result()[0]
        elif wanted is not None:
            present = head_or_none(dst, destination.repository, str(wanted))[0]
        else:
            present = None
    return Freshness(wanted, present, top, error)


def _wanted(
    src: RegistryClient, source: Reference, platforms: Sequence[Platform] | None
) -> tuple[Digest | None, Manifest | None, ImgmirrorError | None]:
    """The digest a copy of ``source`` stores at the top, and the index read to know it."""
    if source.digest is not None and platforms is None:
        return source.digest, None, None
    found, error = head_or_none(src, source.repository, source.identifier)
    if found is None:
        return None, None, error
    if platforms is None or not mediatypes.is_index(found.media_type):
        return found.digest, None, None
    index = src.get_manifest(source.repository, str(found.digest))
    if not isinstance(index, ImageIndex):
        return found.digest, index, None
    chosen = choose_children(index, platforms)
    if not chosen:
        return None, index, None  # the copy says which platforms there are
    if len(chosen) == 1 and not mediatypes.is_index(chosen[0].media_type):
        return chosen[0].digest, index, None  # that image itself, unchanged
    return subset_index(index, chosen).digest, index, None


def head_or_none(
    client: RegistryClient, repo: str, ref: str
) -> tuple[Descriptor | None, ImgmirrorError | None]:
    """The manifest descriptor ``ref`` resolves to (None when absent), and the error when the
    ``HEAD`` failed (the following ``GET`` or push reports it again); a stall ends the copy
    (or push) here, its timeout spent."""
    try:
        return client.head_manifest(repo, ref), None
    except TransferStalled:
        raise
    except ImgmirrorError as exc:
        log.debug("HEAD of %s/%s:%s: %s", client.registry, repo, ref, exc)
        return None, exc
