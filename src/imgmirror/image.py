"""Fetch an image's manifest tree from a registry.

:func:`fetch_image` resolves a reference to an :class:`~imgmirror.imagetree.ImageTree` (an
image manifest, or an index with the child manifests selected by platform), every manifest
verified against its digest. Each digest is fetched once however often indexes list it, level
by level with a bounded pool, and nesting deeper than
:data:`~imgmirror.imagetree.MAX_INDEX_DEPTH` is refused. The pure decisions live in
:mod:`imgmirror.imagetree`.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from .digest import Digest
from .errors import PlatformNotFound
from .imagetree import ImageTree, Manifest, bottom_up, check_depth, choose_children, subset_index
from .manifest import Descriptor, ImageIndex, ImageManifest
from .platform import Platform
from .transport.client import RegistryClient

__all__ = ["fetch_children", "fetch_image", "tree_from"]


def fetch_image(
    client: RegistryClient,
    repo: str,
    ref: str,
    platforms: Sequence[Platform] | None = None,
    *,
    jobs: int = 4,
) -> ImageTree:
    """Fetch a reference's manifest and the children the platform choice needs.

    With no platforms, an index is kept whole (every child, attestations included). With one
    platform, the tree's top is that platform's image manifest, unchanged. With several, the
    top is a new index listing only them.
    """
    return tree_from(client, repo, client.get_manifest(repo, ref), platforms, jobs=jobs)


def tree_from(
    client: RegistryClient,
    repo: str,
    top: Manifest,
    platforms: Sequence[Platform] | None,
    *,
    jobs: int = 4,
) -> ImageTree:
    """The :class:`ImageTree` below an already fetched top manifest (see :func:`fetch_image`)."""
    if isinstance(top, ImageManifest):
        return ImageTree(top=top, source_digest=top.digest)
    wanted = choose_children(top, platforms)
    if not wanted and platforms is not None:
        raise PlatformNotFound(f"no image selected from {top.digest}")
    fetched = fetch_children(client, repo, top, wanted, jobs=jobs)
    children = bottom_up(top, fetched.values())
    if platforms is None:
        return ImageTree(top=top, children=children, source_digest=top.digest)
    if len(wanted) == 1 and isinstance(first := fetched[wanted[0].digest], ImageManifest):
        return ImageTree(top=first, source_digest=top.digest)
    return ImageTree(top=subset_index(top, wanted), children=children, source_digest=top.digest)


def fetch_children(
    client: RegistryClient,
    repo: str,
    top: ImageIndex,
    wanted: Sequence[Descriptor],
    *,
    jobs: int = 4,
) -> dict[Digest, Manifest]:
    """Every manifest below ``top`` reachable from ``wanted``, each digest fetched once.

    Raises:
        InvalidManifest: indexes nest deeper than the cap.
    """
    fetched: dict[Digest, Manifest] = {}
    queued = {top.digest, *(d.digest for d in wanted)}
    level = list(wanted)
    depth = 1

    def get(descriptor: Descriptor) -> Manifest:
        return client.get_manifest(repo, str(descriptor.digest))

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        while level:
            check_depth(depth, top.digest)
            below: list[Descriptor] = []
            for manifest in pool.map(get, level):
                fetched[manifest.digest] = manifest
                if isinstance(manifest, ImageIndex):
                    for descriptor in manifest.manifests:
                        if descriptor.digest not in queued:
                            queued.add(descriptor.digest)
                            below.append(descriptor)
            level, depth = below, depth + 1
    return fetched
