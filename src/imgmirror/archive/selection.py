"""Choose images of an archive by name, and say which images an archive holds.

``FILE:REF`` (or ``image=REF``) selects one image of a multi-image archive. REF is matched
against each image's names (``alpine:3.19`` is ``docker.io/library/alpine:3.19``), its bare
tags (what an OCI layout's ``org.opencontainers.image.ref.name`` gives, such as ``3.19``),
and its digest. Pure code.
"""

from __future__ import annotations

import attrs

from imgmirror.archive.contents import DockerImage, OciImage
from imgmirror.errors import ArchiveError, InvalidReference
from imgmirror.model.reference import Reference

__all__ = ["describe", "local_name", "select_image"]

Image = OciImage | DockerImage


def _label(image: Image) -> str:
    if image.names:
        return ", ".join(str(n) for n in image.names)
    tags = image.tags if isinstance(image, OciImage) else ()
    if tags:
        return ", ".join(tags)
    return str(image.top.digest) if isinstance(image, OciImage) else str(image.config_digest)


def describe(images: tuple[Image, ...]) -> str:
    """The images, one label each (their names, else bare tags, else digest), ``; ``-joined."""
    return "; ".join(_label(i) for i in images)


def _digest(image: Image) -> str:
    return str(image.top.digest) if isinstance(image, OciImage) else str(image.config_digest)


def _narrowed(image: Image, wanted: str) -> Image | None:
    """``image`` keeping only what ``wanted`` names, or None if it does not name it."""
    if wanted == _digest(image):
        return image
    if isinstance(image, OciImage) and wanted in image.tags:
        return attrs.evolve(image, tags=(wanted,))
    try:
        ref = Reference.parse(wanted)
    except InvalidReference:
        return None
    matching = tuple(n for n in image.names if n == ref)
    if not matching:
        return None
    return attrs.evolve(image, names=matching)


def select_image(images: tuple[Image, ...], wanted: str) -> Image:
    """The one image ``wanted`` names (a name, a bare tag or a digest), with only that name.

    Raises:
        ArchiveError: no image, or several, match ``wanted``.
    """
    found = [n for n in (_narrowed(i, wanted) for i in images) if n is not None]
    if len(found) == 1:
        return found[0]
    what = "no image" if not found else f"{len(found)} images"
    raise ArchiveError(
        f"the archive has {what} named {wanted!r}; it holds: {describe(images)}",
        hint="select one by a name, tag or digest listed",
    )


def local_name(ref: Reference) -> bool:
    """Whether ``ref`` is a podman local name (``localhost/...`` with no port): no registry."""
    return ref.registry == "localhost"
