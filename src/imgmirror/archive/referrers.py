"""Referrers in an OCI layout: how ``save --referrers`` lists them in ``index.json`` and how
``push`` finds them again.

A referrer is stored the way oras stores one in a layout: its manifest and blobs under
``blobs/``, and an entry in ``index.json`` with its descriptor and ``artifactType`` but no
image name (neither ``io.containerd.image.name`` nor ``org.opencontainers.image.ref.name``),
so ``docker load`` and ``ctr import`` load the images and leave the referrers alone. Two
annotations on that entry say what it hangs off: [SUBJECT_ANNOTATION][] (the subject's
digest) and, for a cosign tag-style signature (which has no ``subject`` field),
[TAG_ANNOTATION][] (the tag it was found under). [read_referrers][] finds them again,
each checked against the archive (manifest verified, every blob present).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from imgmirror.archive.images import expand_image, load_manifest
from imgmirror.archive.reader import Archive
from imgmirror.errors import ArchiveError, ImgmirrorError, InvalidDigest
from imgmirror.model.digest import Digest
from imgmirror.model.imagetree import ImageTree
from imgmirror.model.manifest import Descriptor
from imgmirror.model.referrers import Referrer, annotations_of, artifact_type_of, subject_of

__all__ = [
    "SUBJECT_ANNOTATION",
    "TAG_ANNOTATION",
    "SavedReferrer",
    "StoredReferrer",
    "index_entry",
    "is_referrer_entry",
    "read_referrers",
]

#: On a referrer's ``index.json`` entry: the digest of the manifest it refers to.
SUBJECT_ANNOTATION = "dev.imgmirror.referrer.subject"
#: On a referrer's ``index.json`` entry: the cosign tag it is stored under (``sha256-….sig``).
TAG_ANNOTATION = "dev.imgmirror.referrer.tag"


@attrs.frozen
class SavedReferrer:
    """A referrer to write into an archive: what it is, and its manifests."""

    referrer: Referrer
    tree: ImageTree


@attrs.frozen
class StoredReferrer:
    """A referrer found in an archive.

    Attributes:
        referrer: what it is and what it refers to (``tag`` for a cosign tag-style one).
        tree: its manifests, None when the archive lacks some of it (``problem`` says what).
        blobs: the blobs the archive holds for it.
    """

    referrer: Referrer
    tree: ImageTree | None
    blobs: tuple[Descriptor, ...] = ()
    problem: str | None = None

    def describe(self) -> str:
        """``referrer sha256:… (type) of sha256:…`` for messages."""
        r = self.referrer
        return f"referrer {r.digest} ({r.artifact_type}) of {r.subject}"


def index_entry(referrer: Referrer) -> dict[str, Any]:
    """The ``index.json`` entry of a saved referrer."""
    annotations = {SUBJECT_ANNOTATION: str(referrer.subject)}
    if referrer.tag:
        annotations[TAG_ANNOTATION] = referrer.tag
    d = referrer.descriptor
    return {
        "mediaType": d.media_type,
        "digest": str(d.digest),
        "size": d.size,
        "artifactType": referrer.artifact_type,
        "annotations": annotations,
    }


def is_referrer_entry(descriptor: Descriptor) -> bool:
    """Whether an ``index.json`` entry is a referrer imgmirror stored (not an image)."""
    return SUBJECT_ANNOTATION in descriptor.annotations


def _subject(descriptor: Descriptor) -> Digest:
    text = descriptor.annotations[SUBJECT_ANNOTATION]
    try:
        return Digest.parse(text)
    except InvalidDigest:
        raise ArchiveError(
            f"index.json: referrer {descriptor.digest} names the subject {text!r}, "
            "which is not a digest"
        ) from None


def _stored(archive: Archive, descriptor: Descriptor) -> StoredReferrer:

    subject = _subject(descriptor)
    tag = descriptor.annotations.get(TAG_ANNOTATION)
    plain = Descriptor(descriptor.media_type, descriptor.digest, descriptor.size)
    manifest = load_manifest(archive, descriptor)
    if manifest is None:
        referrer = Referrer(plain, descriptor.media_type, subject, tag)
        missing = f"its manifest {descriptor.digest} is missing from the archive"
        return StoredReferrer(referrer, None, problem=missing)
    try:
        named = subject_of(manifest.raw)
    except ImgmirrorError as exc:
        raise ArchiveError(f"referrer {descriptor.digest}: {exc}") from None
    if (named is None and tag is None) or (named is not None and named != subject):
        raise ArchiveError(
            f"index.json lists {descriptor.digest} as a referrer of {subject}, but its "
            f"subject is {named or 'missing'}",
            hint="the archive's index.json is inconsistent; save it again",
        )
    plain = attrs.evolve(plain, annotations=annotations_of(manifest.raw))
    referrer = Referrer(plain, artifact_type_of(manifest.raw, manifest.media_type), subject, tag)
    try:
        image = expand_image(archive, manifest, [])
    except ArchiveError as exc:
        return StoredReferrer(referrer, None, problem=exc.message)
    return StoredReferrer(referrer, ImageTree(image.top, image.children), image.blobs)


def read_referrers(archive: Archive, entries: Sequence[Descriptor]) -> tuple[StoredReferrer, ...]:
    """The referrers ``entries`` (``index.json`` entries with [SUBJECT_ANNOTATION][])
    describe, each digest once; an incomplete one carries a ``problem`` instead of a tree.

    Raises:
        ArchiveError: an entry is malformed, or contradicts the manifest it points at.
    """
    seen: dict[Digest, StoredReferrer] = {}
    for descriptor in entries:
        if descriptor.digest not in seen:
            seen[descriptor.digest] = _stored(archive, descriptor)
    return tuple(seen.values())
