"""The skopeo/podman ``dir:`` layout: one image (or index) with its blobs named by hex digest.

``dir:DIR`` writes ``version`` (``Directory Transport Version: 1.x``), ``manifest.json`` (the
registry's manifest, byte for byte), every blob as ``<hex>``, and with ``--all`` the
platform manifests of an index as ``<hex>.manifest.json``. It names no image, so pushing one
needs a destination.
"""

from __future__ import annotations

import attrs

from imgmirror.archive.images import ArchiveContents, expand_image
from imgmirror.archive.reader import Archive
from imgmirror.errors import ArchiveError, ImgmirrorError
from imgmirror.model.digest import Digest
from imgmirror.model.manifest import parse_manifest

__all__ = ["VERSION_MARK", "dir_contents", "is_dir_layout"]

VERSION_MARK = b"Directory Transport Version:"


def is_dir_layout(archive: Archive) -> bool:
    """Whether ``archive`` is a ``dir:`` layout (its ``version`` file says so)."""
    if not (archive.has_file("version") and archive.has_file("manifest.json")):
        return False
    return archive.read("version", cap=4096).startswith(VERSION_MARK)


def dir_contents(archive: Archive) -> ArchiveContents:
    """The one image of a ``dir:`` layout, every blob and child manifest checked.

    Raises:
        ArchiveError: a missing or mismatched blob, or a manifest that does not parse.
    """

    def locate(digest: Digest) -> str:
        child = f"{digest.hex}.manifest.json"
        return child if archive.has_file(child) else digest.hex

    try:
        top = parse_manifest(archive.read("manifest.json"))
    except ImgmirrorError as exc:
        raise ArchiveError(f"manifest.json: {exc}") from None
    notes: list[str] = []
    image = attrs.evolve(expand_image(archive, top, notes, locate), locate=locate)
    return ArchiveContents("dir", (image,), tuple(notes))
