"""An image as a tree of manifests, and the pure decisions about it (no I/O).

[ImageTree][] holds a top manifest and the child manifests it needs, each digest once,
in bottom-up order (every manifest after everything it references, so pushing them in that
order never names something the registry does not have yet). The platform choice
([choose_children][]), the synthesis of a smaller index ([subset_index][]) and the
ordering ([bottom_up][]) are shared by copy, save and push; fetching lives in
[imgmirror.registry.fetch][imgmirror.registry.fetch].
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence

import attrs

from imgmirror.errors import InvalidManifest
from imgmirror.model.digest import Digest
from imgmirror.model.manifest import Descriptor, ImageIndex, ImageManifest, parse_manifest
from imgmirror.model.platform import Platform

__all__ = [
    "MAX_INDEX_DEPTH",
    "ImageTree",
    "Manifest",
    "bottom_up",
    "check_depth",
    "choose_children",
    "narrow_tree",
    "subset_index",
    "unique",
]

Manifest = ImageManifest | ImageIndex

#: Deepest nesting of indexes inside indexes that is followed (real images use 1 or 2).
MAX_INDEX_DEPTH = 8


@attrs.frozen
class ImageTree:
    """A top-level manifest plus the child manifests it references (by digest).

    Attributes:
        top: what the reference points at after platform selection.
        children: child manifests, each digest once, every one after those it references.
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
        for descriptor in unique(self.top.images()):
            child = by_digest.get(descriptor.digest)
            if isinstance(child, ImageManifest):
                out.append((descriptor, child))
        return out

    def declared_platforms(self) -> tuple[str, ...]:
        """The platforms the index declares for the images carried (empty for a lone image)."""
        return tuple(str(d.platform) for d, _ in self.platform_images() if d and d.platform)


def unique(descriptors: Iterable[Descriptor]) -> list[Descriptor]:
    """The descriptors with each digest once, first occurrence kept."""
    seen: set[Digest] = set()
    out: list[Descriptor] = []
    for descriptor in descriptors:
        if descriptor.digest not in seen:
            seen.add(descriptor.digest)
            out.append(descriptor)
    return out


def check_depth(depth: int, digest: Digest) -> None:
    """Refuse indexes nested deeper than [MAX_INDEX_DEPTH][].

    Raises:
        InvalidManifest: ``depth`` exceeds the cap.
    """
    if depth > MAX_INDEX_DEPTH:
        raise InvalidManifest(
            f"index {digest} nests indexes more than {MAX_INDEX_DEPTH} levels deep; "
            "refusing to follow it"
        )


def bottom_up(top: Manifest, children: Iterable[Manifest]) -> tuple[Manifest, ...]:
    """``children`` each digest once, every manifest after all the manifests it references.

    A depth-first walk from ``top`` (and from any child it does not reach), emitting a
    manifest only once everything below it has been emitted; ``top`` itself is left out.
    """
    by_digest = {m.digest: m for m in children}
    done: set[Digest] = {top.digest}
    out: list[Manifest] = []
    for root in (*by_digest.values(), top):
        if root.digest in done and root is not top:
            continue
        done.add(root.digest)
        stack: list[tuple[Manifest, Iterator[Descriptor]]] = [(root, _below(root))]
        while stack:
            manifest, below = stack[-1]
            step = next(below, None)
            if step is None:
                stack.pop()
                if manifest is not top:
                    out.append(manifest)
                continue
            child = by_digest.get(step.digest)
            if child is not None and child.digest not in done:
                done.add(child.digest)
                stack.append((child, _below(child)))
    return tuple(out)


def _below(manifest: Manifest) -> Iterator[Descriptor]:
    return iter(manifest.manifests if isinstance(manifest, ImageIndex) else ())


def choose_children(index: ImageIndex, platforms: Sequence[Platform] | None) -> list[Descriptor]:
    """The index entries to carry, each digest once: all, or the first match per platform.

    Raises:
        PlatformNotFound: a requested platform is not in the index.
    """
    if platforms is None:
        return unique(index.manifests)
    return unique(index.select(platform) for platform in platforms)


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


def narrow_tree(
    top: Manifest, children: Iterable[Manifest], platforms: Sequence[Platform]
) -> tuple[Manifest, tuple[Manifest, ...]]:
    """The part of a held tree that ``platforms`` select, as [imgmirror.copy][imgmirror.copy] takes
    it:
    of an index, one platform's image alone (unchanged) or a smaller index over several,
    with the manifests below them; an image manifest is kept as it is.

    Raises:
        PlatformNotFound: a requested platform is not in the index.
    """
    if isinstance(top, ImageManifest):
        return top, tuple(children)
    wanted = choose_children(top, platforms)
    held = {m.digest: m for m in children}
    kept: dict[Digest, Manifest] = {}
    level = [d.digest for d in wanted]
    while level:
        found = [held[d] for d in dict.fromkeys(level) if d in held and d not in kept]
        kept.update((m.digest, m) for m in found)
        level = [d.digest for m in found for d in _below(m)]
    if len(wanted) == 1 and isinstance(first := kept.get(wanted[0].digest), ImageManifest):
        return first, ()
    narrowed = subset_index(top, wanted)
    return narrowed, bottom_up(narrowed, kept.values())
