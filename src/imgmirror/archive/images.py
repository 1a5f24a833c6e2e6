"""The images an archive holds, one at a time: the values and the readers every layout shares.

[expand_image][] walks a stored manifest (or index) down to the children and blobs the
archive really holds for it, each checked against its descriptor; [load_manifest][] reads
one manifest blob, verified. [read_contents][imgmirror.archive.contents.read_contents] and the
``dir:`` and referrer readers are built on these.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import attrs

from imgmirror.archive.reader import Archive
from imgmirror.errors import ArchiveError, ImgmirrorError
from imgmirror.model import mediatypes
from imgmirror.model.digest import Digest
from imgmirror.model.documents import load_json
from imgmirror.model.imagetree import check_depth, subset_index, unique
from imgmirror.model.manifest import Descriptor, ImageIndex, ImageManifest, parse_manifest
from imgmirror.model.reference import Reference

__all__ = [
    "ArchiveContents",
    "DockerImage",
    "DockerLayer",
    "Locate",
    "Manifest",
    "OciImage",
    "blob_path",
    "digest_from_name",
    "expand_image",
    "load_manifest",
    "read_json",
]

_DIGEST_NAME = re.compile(
    r"(?:^|/)(?:blobs/(?P<alg>sha256|sha512)/|(?:sha256:)?)(?P<hex>[a-f0-9]{64}|[a-f0-9]{128})"
    r"(?:\.json|\.tar|\.tar\.gz|\.tar\.zst)?$"
)
Manifest = ImageManifest | ImageIndex
_Memo = dict[Digest, "OciImage"]


def blob_path(digest: Digest) -> str:
    """Where an OCI layout keeps a blob."""
    return f"blobs/{digest.algorithm}/{digest.hex}"


Locate = Callable[[Digest], str]
"""Where a layout keeps a blob: [blob_path][] for OCI layouts."""


@attrs.frozen
class DockerLayer:
    """A layer file of a Docker archive: ``member`` must unpack to ``diff_id``."""

    member: str
    diff_id: Digest
    file_digest: Digest | None = None  # when the file name says what it hashes to
    foreign: Descriptor | None = None  # LayerSources entry of a foreign layer (not uploaded)


@attrs.frozen
class DockerImage:
    """One ``manifest.json`` entry: a config and its layers, and the names it carries."""

    names: tuple[Reference, ...]
    config: bytes = attrs.field(repr=False)
    layers: tuple[DockerLayer, ...]

    @property
    def config_digest(self) -> Digest:
        return Digest.of(self.config)


@attrs.frozen
class OciImage:
    """A manifest (or index) stored in the archive, with the children pushed before it.

    ``blobs`` are the configs and layers the archive holds for it (foreign layers left out);
    ``tags`` are bare tags the layout gives it when it has no full name; ``locate`` says
    where the layout keeps a blob.
    """

    names: tuple[Reference, ...]
    top: Manifest
    children: tuple[Manifest, ...]
    blobs: tuple[Descriptor, ...]
    tags: tuple[str, ...] = ()
    locate: Locate = blob_path


@attrs.frozen
class ArchiveContents:
    """The images of an archive; ``layout`` is ``"oci"`` or ``"docker"``; ``referrers``
    the ``index.json`` entries of stored referrers
    ([imgmirror.archive.referrers][imgmirror.archive.referrers])."""

    layout: str
    images: tuple[OciImage | DockerImage, ...]
    notes: tuple[str, ...] = ()
    referrers: tuple[Descriptor, ...] = ()


def read_json(archive: Archive, name: str) -> Any:
    """A JSON file of the archive, parsed."""
    raw = archive.read(name)
    try:
        return load_json(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ArchiveError(f"{name} in the archive is not valid JSON: {exc}") from None


def digest_from_name(name: str) -> Digest | None:
    """The digest a blob's file name promises (``blobs/sha256/<hex>``, ``<hex>.tar.gz``...)."""
    match = _DIGEST_NAME.search(name)
    if match is None:
        return None
    alg = match.group("alg") or ("sha256" if len(match.group("hex")) == 64 else "sha512")
    try:
        return Digest(alg, match.group("hex"))
    except ImgmirrorError:
        return None


def load_manifest(
    archive: Archive, descriptor: Descriptor, locate: Locate = blob_path
) -> Manifest | None:
    """A manifest blob, verified against its descriptor; None if the archive lacks it."""
    path = locate(descriptor.digest)
    if not archive.has_file(path):
        return None
    raw = archive.read(path)
    if len(raw) != descriptor.size or Digest.of(raw, descriptor.digest.algorithm) != (
        descriptor.digest
    ):
        raise ArchiveError(
            f"{path} does not match its descriptor (size {descriptor.size}, "
            f"digest {descriptor.digest})"
        )
    try:
        return parse_manifest(raw, descriptor.media_type)
    except ImgmirrorError as exc:
        raise ArchiveError(f"{path}: {exc}") from None


def _image_blobs(archive: Archive, manifest: ImageManifest, locate: Locate) -> list[Descriptor]:
    out = []
    for blob in manifest.blobs:
        if mediatypes.is_foreign_layer(blob.media_type):
            continue
        path = locate(blob.digest)
        if not archive.has_file(path):
            raise ArchiveError(f"blob {blob.digest} of manifest {manifest.digest} is missing")
        size = archive.resolve(path).size
        if size != blob.size:
            raise ArchiveError(
                f"{path} is {size} bytes; manifest {manifest.digest} says {blob.size}"
            )
        out.append(blob)
    return out


def expand_image(
    archive: Archive,
    top: Manifest,
    notes: list[str],
    locate: Locate = blob_path,
    *,
    depth: int = 0,
    memo: _Memo | None = None,
) -> OciImage:
    """``top`` with the children and blobs the archive holds for it (checked); each digest
    expanded once (``memo``)."""
    memo = {} if memo is None else memo
    if top.digest in memo:
        return memo[top.digest]
    check_depth(depth, top.digest)
    if isinstance(top, ImageManifest):
        memo[top.digest] = OciImage((), top, (), tuple(_image_blobs(archive, top, locate)))
        return memo[top.digest]
    entries = unique(top.manifests)
    present: list[tuple[Descriptor, Manifest]] = []
    for child in entries:
        loaded = load_manifest(archive, child, locate)
        if loaded is not None:
            present.append((child, loaded))
    if not present:
        raise ArchiveError(f"none of the manifests of index {top.digest} is in the archive")
    children: dict[Digest, Manifest] = {}
    blobs: dict[Digest, Descriptor] = {}
    for _, child_manifest in present:
        sub = expand_image(archive, child_manifest, notes, locate, depth=depth + 1, memo=memo)
        children.update((m.digest, m) for m in (*sub.children, sub.top))
        blobs.update((b.digest, b) for b in sub.blobs)
    if len(present) == len(entries):
        memo[top.digest] = OciImage((), top, tuple(children.values()), tuple(blobs.values()))
        return memo[top.digest]
    images = [d for d, _ in present if d in top.images()]
    if not images:
        raise ArchiveError(f"no platform image of index {top.digest} is in the archive")
    if len(images) == 1:
        only = next(m for d, m in present if d == images[0])
        notes.append(
            f"index {top.digest} is only partly in the archive; pushing its "
            f"{images[0].platform or 'only'} image {only.digest} instead"
        )
        return expand_image(archive, only, notes, locate, depth=depth + 1, memo=memo)
    subset = subset_index(top, images)
    notes.append(
        f"index {top.digest} is only partly in the archive; pushing a new index "
        f"{subset.digest} of the {len(images)} platforms present"
    )
    kept = {d.digest for d in images}
    kept_children = tuple(m for m in children.values() if m.digest in kept)
    return OciImage((), subset, kept_children, tuple(blobs.values()))
