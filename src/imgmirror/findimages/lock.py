"""The lock: each image pinned to the digest its tag had at the source, and a sync pinned to it.

The format (docs/find-images.md) is a plain image list, so ``imgmirror sync --images LOCK
--to PREFIX`` reads it as it is: a header line ``# imgmirror lock v1``, ``#`` comments, and
one ``NAME:TAG@DIGEST`` line per image, sorted (``NAME`` as find-images wrote it; an image
written without a tag gets ``:latest``, one written with a digest is kept as written).
``imgmirror sync FILE --lock LOCK`` pins every ``image:`` entry of a sync file to its line
([pin_spec][]): the sync then copies that digest and tags it, whatever the tag has
become since. Pure: callers pass text.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from imgmirror.errors import InvalidSyncFile
from imgmirror.model.digest import Digest
from imgmirror.model.reference import Reference
from imgmirror.syncing.file import SyncSpec, listed_references

__all__ = ["HEADER", "Lock", "format_lock", "parse_lock", "pin_spec", "pinned_line"]

HEADER = "# imgmirror lock v1"


def _key(ref: Reference) -> tuple[str, str]:
    return ref.name, ref.tag or "latest"


@attrs.frozen
class Lock:
    """Pinned images: ``(registry/repository, tag)`` to digest, and each line as written."""

    digests: Mapping[tuple[str, str], Digest]
    lines: tuple[str, ...]

    def digest_of(self, image: str | Reference) -> Digest | None:
        """The digest ``image`` (by tag) is pinned to, if the lock has it."""
        ref = Reference.parse(image) if isinstance(image, str) else image
        if ref.digest is not None:
            return ref.digest
        return self.digests.get(_key(ref))


def pinned_line(image: str, digest: Digest) -> str:
    """The lock line of ``image`` (as written) resolved to ``digest``."""
    ref = Reference.parse(image, default_tag=None)
    if ref.digest is not None:
        return image
    last = image.rsplit("/", 1)[-1]
    return f"{image}@{digest}" if ":" in last else f"{image}:latest@{digest}"


def format_lock(pinned: Mapping[str, Digest], comment: str = "") -> str:
    """The lock text for ``{image as written: digest}``."""
    lines = sorted({pinned_line(image, digest) for image, digest in pinned.items()})
    head = [HEADER, *(f"# {line}" for line in comment.splitlines() if line)]
    return "\n".join([*head, *lines]) + "\n"


def parse_lock(text: str, origin: str) -> Lock:
    """Read a lock.

    Raises:
        InvalidSyncFile: no header, or a line that is not ``NAME:TAG@DIGEST``.
    """
    if not text.startswith(HEADER):
        raise InvalidSyncFile(f"{origin}:1: not an imgmirror lock (no {HEADER!r} line)",
                              hint="write one with imgmirror find-images --lock")  # fmt: skip
    digests: dict[tuple[str, str], Digest] = {}
    lines = []
    for number, content, ref in listed_references(text, origin):
        if ref.digest is None:
            raise InvalidSyncFile(f"{origin}:{number}: {content!r} has no digest")
        if ref.tag is not None:
            digests[_key(ref)] = ref.digest
        lines.append(content)
    return Lock(digests, tuple(lines))


def pin_spec(spec: SyncSpec, lock: Lock, origin: str) -> SyncSpec:
    """``spec`` with every ``image:`` entry named by tag pinned to the lock's digest (the
    tag kept: the destination is tagged with it). ``repository:`` entries select tags at
    run time and are left as they are.

    Raises:
        InvalidSyncFile: an image entry the lock does not have (the lock is out of date).
    """
    entries = []
    for entry in spec.entries:
        if entry.selector is not None or entry.source.digest is not None:
            entries.append(entry)
            continue
        digest = lock.digest_of(entry.source)
        if digest is None:
            raise InvalidSyncFile(
                f"{entry.origin}: {entry.source} is not in the lock {origin}",
                hint="run imgmirror find-images --lock again, or drop the lock",
            )
        entries.append(attrs.evolve(entry, source=attrs.evolve(entry.source, digest=digest)))
    return attrs.evolve(spec, entries=tuple(entries))
