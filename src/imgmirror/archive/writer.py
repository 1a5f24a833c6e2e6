"""Turn an :class:`~imgmirror.archive.layout.ArchivePlan` into a stream of tar bytes.

:func:`stream_archive` yields the archive piece by piece: a header, then the entry's data as
it arrives from the blob opener (already verified against its descriptor by the opener), then
padding. Nothing is buffered beyond one chunk, so memory stays bounded whatever the layer
size, and no temporary files are used.

A tar header needs the entry's size before its data. Blobs stored as served have it in their
descriptor. A layer stored decompressed (legacy ``layer.tar``, or an uncompressed copy of a
zstd layer) does not, so it is read twice: a first pass decompresses and counts it while
checking its diff_id, a second pass writes it. Both passes verify the compressed digest; the
second checks the length again. That costs a second download of those layers only, and works
when the output is not seekable (a compressed archive, a pipe).
"""

from __future__ import annotations

import itertools
import tarfile
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import AbstractContextManager

from ..compression import decompress, detect
from ..digest import Digest
from ..errors import ArchiveError, VerificationError
from ..manifest import Descriptor
from ..progress import NullProgress, ProgressListener
from .layout import (
    ArchivePlan,
    BlobEntry,
    DirEntry,
    Entry,
    FileEntry,
    LayerTarEntry,
    LinkEntry,
    Origin,
)

__all__ = ["BlobOpener", "decompressed", "stream_archive", "tar_header"]

BlobOpener = Callable[[Origin, Descriptor], AbstractContextManager[Iterator[bytes]]]
"""Opens a blob for reading: a context manager yielding its verified chunks."""

_BLOCK = 512
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


def _padding(size: int) -> bytes:
    return b"\0" * (-size % _BLOCK)


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

    def __init__(self, opener: BlobOpener, progress: ProgressListener) -> None:
        self.opener = opener
        self.progress = progress

    def _data(self, entry: BlobEntry) -> Iterator[bytes]:
        blob = entry.blob
        self.progress.blob_started(blob.digest, blob.size)
        yield tar_header(entry.path, size=blob.size)
        with self.opener(entry.origin, blob) as chunks:
            for chunk in chunks:  # runs to the end, so the opener's digest check fires
                self.progress.blob_advanced(blob.digest, len(chunk))
                yield chunk
        yield _padding(blob.size)
        self.progress.blob_finished(blob.digest, "copied")

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

    def _layer_tar(self, entry: LayerTarEntry) -> Iterator[bytes]:
        blob = entry.blob
        self.progress.blob_started(blob.digest, blob.size)
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
        yield _padding(size)
        self.progress.blob_finished(blob.digest, "copied")

    def entry(self, entry: Entry) -> Iterator[bytes]:
        if isinstance(entry, DirEntry):
            yield tar_header(entry.path + "/", kind=tarfile.DIRTYPE)
        elif isinstance(entry, LinkEntry):
            yield tar_header(entry.path, kind=tarfile.SYMTYPE, link=entry.target)
        elif isinstance(entry, FileEntry):
            yield tar_header(entry.path, size=len(entry.data)) + entry.data
            yield _padding(len(entry.data))
        elif isinstance(entry, BlobEntry):
            yield from self._data(entry)
        else:
            yield from self._layer_tar(entry)


def stream_archive(
    plan: ArchivePlan, opener: BlobOpener, progress: ProgressListener | None = None
) -> Generator[bytes, None, None]:
    """The tar bytes of ``plan``, in pieces; blobs are read through ``opener`` as needed.

    Raises:
        VerificationError: a blob (or a decompressed layer) is not what its digest says.
        ArchiveError: a layer cannot be decompressed.
        ImgmirrorError: whatever ``opener`` raises (network, registry errors).
    """
    writer = _Writer(opener, progress or NullProgress())
    total = 0
    for entry in plan.entries:
        for piece in writer.entry(entry):
            total += len(piece)
            yield piece
    end = 2 * _BLOCK
    end += -(total + end) % _RECORD
    yield b"\0" * end
