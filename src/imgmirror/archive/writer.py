"""Turn an [ArchivePlan][imgmirror.archive.layout.ArchivePlan] into a stream of tar bytes.

[stream_archive][] yields the archive piece by piece: a header, then the entry's data as
it arrives from the blob opener (already verified against its descriptor by the opener), then
padding. Nothing is buffered beyond one chunk, so memory stays bounded whatever the layer
size, and no temporary files are used.

A tar header needs the entry's size before its data. Blobs stored as served have it in their
descriptor. A layer stored decompressed (legacy ``layer.tar``, or an uncompressed copy of a
zstd layer) does not. When the output is a plain file (``patchable``), such a layer is read
once: a placeholder header goes first, the data streams while its diff_id is checked and its
length counted, and a [HeaderFixup][] then tells the caller to write the real header over
the placeholder. When the output cannot seek (a compressed archive, a pipe), the layer is read
twice instead: a first pass decompresses and counts it while checking its diff_id, a second
pass writes it. Both passes verify the compressed digest; the second checks the length again.

A seekable output also lets a blob whose transfer broke off (connection reset, truncated body,
a 5xx) be written again: a [Rewind][] cuts the output back to the entry's header and the
blob is fetched anew, up to three times. A digest mismatch is never retried.
"""

from __future__ import annotations

import itertools
import logging
import tarfile
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Literal, overload

import attrs

from imgmirror.archive.layout import (
    ArchivePlan,
    BlobEntry,
    DirEntry,
    Entry,
    FileEntry,
    LayerTarEntry,
    LinkEntry,
    Origin,
)
from imgmirror.errors import ArchiveError, ImgmirrorError, VerificationError
from imgmirror.model.compression import decompress, detect
from imgmirror.model.digest import Digest
from imgmirror.model.manifest import Descriptor
from imgmirror.progress import NullProgress, Outcome, ProgressListener
from imgmirror.transport.retry import RetryPolicy

__all__ = [
    "DONE",
    "BlobOpener",
    "HeaderFixup",
    "Piece",
    "Rewind",
    "decompressed",
    "fixed_bytes",
    "padding",
    "stream_archive",
    "tar_header",
]

log = logging.getLogger("imgmirror")

BlobOpener = Callable[[Origin, Descriptor], AbstractContextManager[Iterator[bytes]]]
"""Opens a blob for reading: a context manager yielding its verified chunks."""

_BLOCK = 512
DONE: Outcome = "saved"  # the outcome reported for a blob written into the archive
_RECORD = 20 * _BLOCK  # GNU/BSD tar pad the archive to a multiple of this
_MTIME = 0


def tar_header(path: str, *, size: int = 0, kind: bytes = tarfile.REGTYPE, link: str = "") -> bytes:
    """A tar header (PAX extensions only when a name or size needs them)."""
    info = tarfile.TarInfo(path)
    info.type = kind
    info.size = size if kind == tarfile.REGTYPE else 0
    info.mtime = _MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if kind == tarfile.DIRTYPE:
        info.mode = 0o755
    elif kind == tarfile.SYMTYPE:
        info.mode = 0o777
        info.linkname = link
    else:
        info.mode = 0o644
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


@attrs.frozen
class HeaderFixup:
    """Write ``header`` at byte ``offset`` of the output (over a placeholder), then go on."""

    offset: int
    header: bytes


@attrs.frozen
class Rewind:
    """Cut the output back to ``offset`` (an entry that broke off is about to be rewritten)."""

    offset: int


Piece = bytes | HeaderFixup | Rewind
"""What [stream_archive][] yields: archive bytes, or an instruction to a seekable output."""


def _fixed_header(path: str, size: int) -> bytes | None:
    """A single 512-byte header (GNU base-256 size above 8 GiB), or None if the name is long."""
    info = tarfile.TarInfo(path)
    info.size = size
    info.mtime = _MTIME
    info.mode = 0o644
    info.uname = info.gname = ""
    header = info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")
    return header if len(header) == _BLOCK else None


def padding(size: int) -> bytes:
    """The zeros that follow ``size`` bytes of entry data."""
    return b"\0" * (-size % _BLOCK)


def fixed_bytes(entry: DirEntry | LinkEntry | FileEntry) -> bytes:
    """The whole tar record of an entry that needs no blob: header, data, padding."""
    if isinstance(entry, DirEntry):
        return tar_header(entry.path + "/", kind=tarfile.DIRTYPE)
    if isinstance(entry, LinkEntry):
        return tar_header(entry.path, kind=tarfile.SYMTYPE, link=entry.target)
    size = len(entry.data)
    return tar_header(entry.path, size=size) + entry.data + padding(size)


def decompressed(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The chunks decompressed according to their magic bytes (passed through if plain)."""
    iterator = iter(chunks)
    head = b""
    for chunk in iterator:
        head += chunk
        if len(head) >= 8:
            break
    yield from decompress(itertools.chain((head,), iterator), detect(head))


class _Writer:
    """Produces the bytes of each entry kind."""

    def __init__(
        self, opener: BlobOpener, progress: ProgressListener, patchable: bool, retry: RetryPolicy
    ) -> None:
        self.opener = opener
        self.progress = progress
        self.patchable = patchable
        self.retry = retry
        self.written = 0  # bytes the caller has taken so far (kept by stream_archive)

    def _data(self, entry: BlobEntry) -> Iterator[bytes]:
        blob = entry.blob
        self.progress.blob_started(blob.digest, blob.size)
        yield tar_header(entry.path, size=blob.size)
        with self.opener(entry.origin, blob) as chunks:
            for chunk in chunks:  # runs to the end, so the opener's digest check fires
                self.progress.blob_advanced(blob.digest, len(chunk))
                yield chunk
        yield padding(blob.size)
        self.progress.blob_finished(blob.digest, DONE)

    def _measure(self, entry: LayerTarEntry) -> int:
        """Pass one: decompress, check the diff_id, count the bytes."""
        hasher = entry.diff_id.hasher()
        count = 0
        with self.opener(entry.origin, entry.blob) as chunks:
            for piece in decompressed(chunks):
                hasher.update(piece)
                count += len(piece)
        actual = Digest(entry.diff_id.algorithm, hasher.hexdigest())
        if actual != entry.diff_id:
            raise VerificationError(f"diff_id of layer {entry.blob.digest}", entry.diff_id, actual)
        return count

    def _layer_tar_once(self, entry: LayerTarEntry, placeholder: bytes) -> Iterator[Piece]:
        """One pass: placeholder header, data (diff_id checked), then the real header."""
        blob = entry.blob
        offset = self.written
        yield placeholder
        hasher = entry.diff_id.hasher()
        size = 0
        with self.opener(entry.origin, blob) as chunks:
            for piece in decompressed(chunks):
                hasher.update(piece)
                size += len(piece)
                self.progress.blob_advanced(blob.digest, len(piece))
                yield piece
        actual = Digest(entry.diff_id.algorithm, hasher.hexdigest())
        if actual != entry.diff_id:
            raise VerificationError(f"diff_id of layer {blob.digest}", entry.diff_id, actual)
        yield padding(size)
        header = _fixed_header(entry.path, size)
        assert header is not None  # same name as the placeholder, and sizes always fit
        yield HeaderFixup(offset, header)
        self.progress.blob_finished(blob.digest, DONE)

    def _layer_tar(self, entry: LayerTarEntry) -> Iterator[Piece]:
        blob = entry.blob
        self.progress.blob_started(blob.digest, blob.size)
        placeholder = _fixed_header(entry.path, 0) if self.patchable else None
        if placeholder is not None:
            yield from self._layer_tar_once(entry, placeholder)
            return
        size = self._measure(entry)
        yield tar_header(entry.path, size=size)
        written = 0
        with self.opener(entry.origin, blob) as chunks:
            for piece in decompressed(chunks):
                written += len(piece)
                if written > size:
                    break
                self.progress.blob_advanced(blob.digest, len(piece))
                yield piece
        if written != size:
            raise ArchiveError(
                f"layer {blob.digest} decompressed to {written} bytes, not {size}, "
                "the second time it was read"
            )
        yield padding(size)
        self.progress.blob_finished(blob.digest, DONE)

    def entry(self, entry: Entry) -> Iterator[Piece]:
        if isinstance(entry, (DirEntry, LinkEntry, FileEntry)):
            yield fixed_bytes(entry)
        elif isinstance(entry, BlobEntry):
            yield from self._retrying(entry.blob, lambda: self._data(entry))
        else:
            yield from self._retrying(entry.blob, lambda: self._layer_tar(entry))

    def _retrying(
        self, blob: Descriptor, produce: Callable[[], Iterator[Piece]]
    ) -> Iterator[Piece]:
        """Write an entry; in a seekable output, one whose transfer broke off is rewritten.

        A digest or diff_id mismatch is never retried; neither is anything when the output
        cannot seek back.
        """
        attempts = self.retry.start()
        while True:
            start = self.written
            try:
                yield from produce()
            except ImgmirrorError as exc:
                delay = attempts.after(exc) if self.patchable else None
                if delay is None:
                    raise
                log.info("blob %s: %s; writing it again in %.1fs", blob.digest, exc, delay)
                time.sleep(delay)
                yield Rewind(start)
            else:
                return


@overload
def stream_archive(
    plan: ArchivePlan,
    opener: BlobOpener,
    progress: ProgressListener | None = None,
    *,
    patchable: Literal[False] = False,
    start: int = 0,
    retry: RetryPolicy | None = None,
) -> Generator[bytes, None, None]: ...


@overload
def stream_archive(
    plan: ArchivePlan,
    opener: BlobOpener,
    progress: ProgressListener | None = None,
    *,
    patchable: bool,
    start: int = 0,
    retry: RetryPolicy | None = None,
) -> Generator[Piece, None, None]: ...


def stream_archive(
    plan: ArchivePlan,
    opener: BlobOpener,
    progress: ProgressListener | None = None,
    *,
    patchable: bool = False,
    start: int = 0,
    retry: RetryPolicy | None = None,
) -> Generator[Piece, None, None]:
    """The tar bytes of ``plan``, in pieces; blobs are read through ``opener`` as needed.

    With ``patchable`` (the caller writes to a file it can seek in), decompressed layers are
    read once and [HeaderFixup][] pieces ask the caller to rewrite a header in place;
    without it, only bytes are yielded. ``start`` is where the first entry lands in the
    output (entries already written before it, see
    [imgmirror.archive.scatter][imgmirror.archive.scatter]).
    With ``patchable``, an entry whose transfer broke off is written again as ``retry``
    allows (default: the library's policy).

    Raises:
        VerificationError: a blob (or a decompressed layer) is not what its digest says.
        ArchiveError: a layer cannot be decompressed.
        ImgmirrorError: whatever ``opener`` raises (network, registry errors).
    """
    writer = _Writer(opener, progress or NullProgress(), patchable, retry or RetryPolicy())
    writer.written = start
    for entry in plan.entries:
        for piece in writer.entry(entry):
            if isinstance(piece, bytes):
                writer.written += len(piece)
            elif isinstance(piece, Rewind):
                writer.written = piece.offset
            yield piece
    end = 2 * _BLOCK
    end += -(writer.written + end) % _RECORD
    yield b"\0" * end
