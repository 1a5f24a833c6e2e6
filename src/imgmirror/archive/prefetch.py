"""Fetch the next blobs of an archive ahead of the writer, through bounded buffers, in order.

An output that cannot seek (a compressed archive, a pipe, a device) must receive the archive
in order. [prefetching][] wraps a blob opener so that when the writer opens a blob, the
next ``jobs - 1`` blobs of the plan start downloading too, each into a buffer of at most
[buffered_chunks][] chunks ([BUFFERED][] in all, shared out); the writer then drains
them one after the other. Memory stays bounded whatever ``jobs`` is, every byte is still
verified by the wrapped opener, and a failure, Ctrl-C or the end of the save stops every
fetch.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections import deque
from collections.abc import Iterator, Sequence

import attrs

from imgmirror.archive.layout import Origin
from imgmirror.archive.writer import BlobOpener
from imgmirror.errors import TransferCancelled
from imgmirror.model.digest import Digest
from imgmirror.model.manifest import Descriptor

__all__ = ["BUFFERED", "buffered_chunks", "prefetching"]

#: Chunks (of at most 1 MiB) held in all by the blobs fetched ahead of the writer.
BUFFERED = 48


def buffered_chunks(jobs: int) -> int:
    """Chunks each of the ``jobs - 1`` blobs fetched ahead may hold (at least 2)."""
    return max(2, BUFFERED // max(1, jobs - 1))


_END = object()
_POLL = 0.2


@attrs.define
class _Feed:
    """One blob downloading into a bounded queue on its own thread."""

    origin: Origin
    blob: Descriptor
    stop: threading.Event
    chunks: queue.Queue[object]

    def _put(self, item: object) -> bool:
        while not self.stop.is_set():
            try:
                self.chunks.put(item, timeout=_POLL)
            except queue.Full:
                continue
            return True
        return False

    def run(self, opener: BlobOpener) -> None:
        try:
            with opener(self.origin, self.blob) as chunks:
                for chunk in chunks:
                    if not self._put(chunk):
                        return
            self._put(_END)
        except BaseException as exc:
            self._put(exc)

    def read(self) -> Iterator[bytes]:
        while True:
            try:
                item = self.chunks.get(timeout=_POLL)
            except queue.Empty:
                if self.stop.is_set():
                    raise TransferCancelled(f"blob {self.blob.digest}: stopped") from None
                continue
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, bytes)
            yield item


class _Prefetcher:
    def __init__(self, opener: BlobOpener, order: Sequence[tuple[Origin, Descriptor]], jobs: int):
        self.opener = opener
        self.upcoming = deque(order)
        self.jobs = jobs
        self.feeds: dict[Digest, _Feed] = {}
        self.stop = threading.Event()

    def _start_ahead(self) -> None:
        while self.upcoming and len(self.feeds) < self.jobs:
            origin, blob = self.upcoming.popleft()
            if blob.digest in self.feeds:
                continue
            feed = _Feed(origin, blob, self.stop, queue.Queue(buffered_chunks(self.jobs)))
            self.feeds[blob.digest] = feed
            threading.Thread(
                target=feed.run, args=(self.opener,), name="imgmirror-prefetch", daemon=True
            ).start()

    @contextlib.contextmanager
    def open(self, origin: Origin, blob: Descriptor) -> Iterator[Iterator[bytes]]:
        self._start_ahead()
        feed = self.feeds.pop(blob.digest, None)
        self._start_ahead()
        if feed is None:  # not planned ahead (a layer read decompressed): fetched directly
            with self.opener(origin, blob) as chunks:
                yield chunks
        else:
            yield feed.read()


@contextlib.contextmanager
def prefetching(
    opener: BlobOpener, order: Sequence[tuple[Origin, Descriptor]], jobs: int
) -> Iterator[BlobOpener]:
    """An opener that fetches the blobs of ``order`` up to ``jobs`` at a time, in that order.

    Blobs must be opened in ``order``; others are opened directly. Leaving the context
    stops every fetch still running.
    """
    if jobs <= 1 or len(order) <= 1:
        yield opener
        return
    fetcher = _Prefetcher(opener, order, jobs)
    try:
        yield fetcher.open
    finally:
        fetcher.stop.set()
