"""An image as fetched from a registry: the top manifest and every child it needs.

:func:`fetch_image` resolves a reference to an :class:`ImageTree` (an image manifest, or an
index with the child manifests selected by platform), verified against digests. The platform
choice and the synthesis of a smaller index are pure functions here, shared by copy and save.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import attrs

from .digest import Digest
from .errors import PlatformNotFound
from .manifest import Descriptor, ImageIndex, ImageManifest, parse_manifest
from .platform import Platform
from .transport.client import RegistryClient

__all__ = ["ImageTree", "choose_children", "fetch_image", "subset_index"]

Manifest = ImageManifest | ImageIndex


@attrs.frozen
class ImageTree:
    """A top-level manifest plus the child manifests it references (by digest).

    Attributes:
        top: what the reference points at after platform selection.
        children: child manifests (of an index), in the index's order.
        source_digest: the digest the reference resolved to at the source, before selection.
    """

    top: Manifest
    children: tuple[Manifest, ...] = ()
    source_digest: Digest | None = None

    def images(self) -> Iterator[ImageManifest]:
        """Every image manifest in the tree, top included."""
        for manifest in (*self.children, self.top):
            if isinstance(manifest, ImageManifest):
                yield manifest

    def blobs(self) -> list[Descriptor]:
        """Config and layer descriptors of every image, each digest once, in order."""
        seen: set[Digest] = set()
        out: list[Descriptor] = []
        for image in self.images():
            for blob in image.blobs:
                if blob.digest not in seen:
                    seen.add(blob.digest)
                    out.append(blob)
        return out

    def platform_images(self) -> list[tuple[Descriptor | None, ImageManifest]]:
        """Image manifests with the index descriptor that named them (None for a lone image)."""
        if isinstance(self.top, ImageManifest):
            return [(None, self.top)]
        by_digest = {m.digest: m for m in self.children}
        out: list[tuple[Descriptor | None, ImageManifest]] = []
        for descriptor in self.top.images():
            child = by_digest.get(descriptor.digest)
            if isinstance(child, ImageManifest):
                out.append((descriptor, child))
        return out

    def declared_platforms(self) -> tuple[str, ...]:
        """The platforms the index declares for the images carried (empty for a lone image)."""
        return tuple(str(d.platform) for d, _ in self.platform_images() if d and d.platform)


def choose_children(index: ImageIndex, platforms: Sequence[Platform] | None) -> list[Descriptor]:
    """The index entries to carry: all of them, or the first match for each platform.

    Raises:
        PlatformNotFound: a requested platform is not in the index.
    """
    if platforms is None:
        return list(index.manifests)
    chosen: list[Descriptor] = []
    for platform in platforms:
        descriptor = index.select(platform)
        if descriptor not in chosen:
            chosen.append(descriptor)
    return chosen


def subset_index(index: ImageIndex, keep: Sequence[Descriptor]) -> ImageIndex:
    """A new index holding only ``keep`` (new bytes, so a new digest)."""
    document = json.loads(index.raw)
    wanted = {str(d.digest) for d in keep}
    document["manifests"] = [m for m in document["manifests"] if m.get("digest") in wanted]
    document.setdefault("mediaType", index.media_type)
    raw = json.dumps(document, indent=3).encode()
    parsed = parse_manifest(raw, index.media_type)
    assert isinstance(parsed, ImageIndex)
    return parsed


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
    top = client.get_manifest(repo, ref)
    if isinstance(top, ImageManifest):
        return ImageTree(top=top, source_digest=top.digest)
    wanted = choose_children(top, platforms)

    def get(descriptor: Descriptor) -> Manifest:
        return client.get_manifest(repo, str(descriptor.digest))

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        children = list(pool.map(get, wanted))
    for child in list(children):
        if isinstance(child, ImageIndex):  # an index inside an index: carry its children too
            children.extend(fetch_image(client, repo, str(child.digest), None, jobs=jobs).children)
    if platforms is None:
        return ImageTree(top=top, children=tuple(children), source_digest=top.digest)
    if len(wanted) == 1 and isinstance(children[0], ImageManifest):
        return ImageTree(top=children[0], source_digest=top.digest)
    if not wanted:
        raise PlatformNotFound(f"no image selected from {top.digest}")
    return ImageTree(
        top=subset_index(top, wanted), children=tuple(children), source_digest=top.digest
    )
