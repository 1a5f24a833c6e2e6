"""Fetch an image's manifest tree from a registry.

[fetch_image][] resolves a reference to an [ImageTree][imgmirror.model.imagetree.ImageTree] (an
image manifest, or an index with the child manifests selected by platform), every manifest
verified against its digest. Each digest is fetched once however often indexes list it, level
by level with a bounded pool, and nesting deeper than
[MAX_INDEX_DEPTH][imgmirror.model.imagetree.MAX_INDEX_DEPTH] is refused. The pure decisions live in
[imgmirror.model.imagetree][imgmirror.model.imagetree].
"""

from __future__ import annotations

import contextvars
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from imgmirror.errors import InvalidManifest, PlatformNotFound
from imgmirror.model.digest import Digest
from imgmirror.model.imagetree import (
    ImageTree,
    Manifest,
    bottom_up,
    check_depth,
    choose_children,
    subset_index,
)
from imgmirror.model.manifest import Descriptor, ImageIndex, ImageManifest, parse_config
from imgmirror.model.mediatypes import is_config
from imgmirror.model.platform import Platform
from imgmirror.transport.client import RegistryClient

__all__ = ["MAX_CONFIG", "check_lone_platform", "fetch_children", "fetch_image", "tree_from"]

MAX_CONFIG = 4 * 1024 * 1024  # bytes of an image config held in memory


def check_lone_platform(
    client: RegistryClient, repo: str, image: ImageManifest, platforms: Sequence[Platform]
) -> None:
    """A single-platform image asked for platforms it is not: say which one it is.

    Raises:
        PlatformNotFound: the image's config declares a platform none of ``platforms`` match.
    """
    config = image.config
    if not is_config(config.media_type) or config.size > MAX_CONFIG:
        return  # not an image config (an artifact): no platform to hold against it
    with client.open_blob(repo, config) as chunks:
        raw = b"".join(chunks)
    try:
        declared = parse_config(raw).platform
    except InvalidManifest:
        return
    if not any(declared.matches(p) for p in platforms):
        wanted = ", ".join(str(p) for p in platforms)
        raise PlatformNotFound(
            f"{repo}@{image.digest} is a single-platform image for {declared}, not {wanted}",
            hint=f"it has only {declared}; ask for that platform, or for none",
        )


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
    """The [ImageTree][] below an already fetched top manifest (see [fetch_image][])."""
    if isinstance(top, ImageManifest):
        if platforms:
            check_lone_platform(client, repo, top, platforms)
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

    context = contextvars.copy_context()  # the caller's request tally follows the reads

    def get(descriptor: Descriptor) -> Manifest:
        return context.copy().run(client.get_manifest, repo, str(descriptor.digest))

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
