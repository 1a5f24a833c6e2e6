"""Write a planned archive into a regular file with several blobs fetched at once.

Every blob stored as the registry serves it has its size in its descriptor, so
[lay_out][] (pure) gives each entry its offset before any byte moves: headers, small files
and padding are written at once, then ``jobs`` threads each fetch a blob and write it at its
own offset (``pwrite``), verified by the opener as it streams. Layers stored decompressed
(legacy ``layer.tar``, uncompressed copies of zstd layers) have no size until they are read;
they go after everything else, one at a time, through [
stream_archive][imgmirror.archive.writer.
stream_archive]. Tar readers take entries in any order, so the archive loads the same.

A blob whose transfer breaks off is written again at the same offset, as the save's retry
policy allows (its attempts and deadline); a digest mismatch is never retried. The
first failure, Ctrl-C or a termination signal stops the other fetches at their next chunk. A
fetch stuck in a read is not waited for longer than a moment: the output file descriptor is
then left open (the file itself is removed) until the thread notices, so it can never be
reused for another file under the thread's feet.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence

import attrs

from imgmirror.archive.layout import ArchivePlan, BlobEntry, DirEntry, Entry, FileEntry, LinkEntry
from imgmirror.archive.output import Output
from imgmirror.archive.writer import (
    DONE,
    BlobOpener,
    fixed_bytes,
    padding,
    stream_archive,
    tar_header,
)
from imgmirror.errors import ImgmirrorError, TransferCancelled
from imgmirror.progress import NullProgress, ProgressListener
from imgmirror.transport.retry import RetryPolicy

__all__ = ["Layout", "Slot", "lay_out", "write_scattered"]

log = logging.getLogger("imgmirror")

_GRACE = 2.0  # seconds given to running fetches to notice a stop


@attrs.frozen
class Slot:
    """A blob's place in the archive: its data starts at ``offset``."""

    offset: int
    entry: BlobEntry


@attrs.frozen
class Layout:
    """Offsets of a plan: ``fixed`` bytes to write as they are, ``slots`` to fill with blobs,
    ``rest`` (entries of unknown size) to stream from ``end`` on."""

    fixed: tuple[tuple[int, bytes], ...]
    slots: tuple[Slot, ...]
    rest: tuple[Entry, ...]
    end: int


def lay_out(entries: Sequence[Entry]) -> Layout:
    """Give every entry of known size its offset, in plan order (pure)."""
    fixed: list[tuple[int, bytes]] = []
    slots: list[Slot] = []
    rest: list[Entry] = []
    pos = 0
    for entry in entries:
        if isinstance(entry, (DirEntry, LinkEntry, FileEntry)):
            record = fixed_bytes(entry)
        elif isinstance(entry, BlobEntry):
            header = tar_header(entry.path, size=entry.blob.size)
            fixed.append((pos, header))
            slots.append(Slot(pos + len(header), entry))
            pos += len(header) + entry.blob.size
            record = padding(entry.blob.size)
        else:
            rest.append(entry)
            continue
        if record:
            fixed.append((pos, record))
        pos += len(record)
    return Layout(tuple(fixed), tuple(slots), tuple(rest), pos)


@attrs.define
class _Fetcher:
    out: Output
    opener: BlobOpener
    progress: ProgressListener
    retry: RetryPolicy
    cancel: threading.Event = attrs.field(factory=threading.Event)

    def _once(self, slot: Slot) -> None:
        blob = slot.entry.blob
        pos = slot.offset
        with self.opener(slot.entry.origin, blob) as chunks:
            for chunk in chunks:  # runs to the end, so the opener's digest check fires
                if self.cancel.is_set():
                    raise TransferCancelled(f"blob {blob.digest}: stopped")
                self.out.pwrite(chunk, pos)
                pos += len(chunk)
                self.progress.blob_advanced(blob.digest, len(chunk))

    def fetch(self, slot: Slot) -> None:
        blob = slot.entry.blob
        self.progress.blob_started(blob.digest, blob.size)
        attempts = self.retry.start()
        while True:
            try:
                self._once(slot)
            except ImgmirrorError as exc:
                delay = attempts.after(exc)
                if delay is None or self.cancel.wait(delay):
                    self.progress.blob_finished(blob.digest, "failed")
                    raise
                log.info("blob %s: %s; writing it again", blob.digest, exc)
            else:
                self.progress.blob_finished(blob.digest, DONE)
                return


def _run(
    work: Callable[[Slot], None], slots: Iterable[Slot], jobs: int, stop: threading.Event
) -> tuple[list[threading.Thread], list[BaseException]]:
    """Start ``jobs`` daemon threads taking slots in order; the first failure sets ``stop``."""
    queue = deque(slots)
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        while not stop.is_set():
            with lock:
                if not queue:
                    return
                slot = queue.popleft()
            try:
                work(slot)
            except BaseException as exc:
                errors.append(exc)
                stop.set()
                return

    threads = [
        threading.Thread(target=worker, name=f"imgmirror-save-{i}", daemon=True)
        for i in range(max(1, min(jobs, len(queue))))
    ]
    for thread in threads:
        thread.start()
    return threads, errors


def _wait(threads: list[threading.Thread], stop: threading.Event, out: Output) -> None:
    """Wait for the fetches (interruptibly); on an interrupt, stop them and do not linger."""
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)
    except BaseException:
        stop.set()
        deadline = time.monotonic() + _GRACE
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in threads):
            out.abandon()
        raise


def write_scattered(
    plan: ArchivePlan,
    opener: BlobOpener,
    out: Output,
    *,
    jobs: int,
    progress: ProgressListener | None = None,
    retry: RetryPolicy | None = None,
) -> int:
    """Write ``plan`` into the regular file ``out``, ``jobs`` blobs at a time; returns its size.

    A blob whose transfer broke off is written again as ``retry`` allows (default: the
    library's policy); a digest mismatch never is.

    Raises:
        VerificationError: a blob is not what its digest says.
        ImgmirrorError: whatever ``opener`` raises, after the retries.
    """
    listener = progress or NullProgress()
    layout = lay_out(plan.entries)
    for offset, data in layout.fixed:
        out.pwrite(data, offset)
    policy = retry or RetryPolicy()
    fetcher = _Fetcher(out, opener, listener, policy)
    threads, errors = _run(fetcher.fetch, layout.slots, jobs, fetcher.cancel)
    _wait(threads, fetcher.cancel, out)
    if errors:
        raise errors[0]
    out.truncate(layout.end)
    rest = attrs.evolve(plan, entries=layout.rest)  # after the blobs: any order loads
    pieces = stream_archive(rest, opener, listener, patchable=True, start=layout.end, retry=policy)
    for piece in pieces:
        out.apply(piece)
    return out.size
