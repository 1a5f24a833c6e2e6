"""Stall detection: a transfer that moves too few bytes for too long fails.

A socket read timeout catches a peer that sends nothing; it does not catch one that drips a
byte a second, which keeps a transfer alive forever. :class:`StallWatch` counts the bytes of
a transfer in windows of ``window`` seconds and reports a stall when a whole window moved
fewer than ``min_rate`` bytes per second. :func:`watched` applies it to a stream of chunks
(a download as it arrives, an upload body as the socket takes it). Pure: the clock is
injectable and nothing here does I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

__all__ = ["StallWatch", "watched"]


class StallWatch:
    """Counts the bytes of one transfer against a floor rate (see the module docstring).

    Args:
        window: seconds over which the rate is measured (the stall timeout).
        min_rate: bytes per second below which a window counts as stalled.
        clock: monotonic seconds; injectable for tests.
    """

    __slots__ = ("_clock", "_moved", "_start", "min_rate", "window")

    def __init__(
        self, window: float, min_rate: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window = window
        self.min_rate = min_rate
        self._clock = clock
        self._start = clock()
        self._moved = 0

    def moved(self, count: int) -> bool:
        """Account for ``count`` more bytes; True when the window just ended stalled."""
        self._moved += count
        now = self._clock()
        elapsed = now - self._start
        if elapsed < self.window:
            return False
        stalled = self._moved < self.min_rate * elapsed
        self._start, self._moved = now, 0
        return stalled


def watched(
    chunks: Iterable[bytes], watch: StallWatch, stalled: Callable[[], Exception]
) -> Iterator[bytes]:
    """Pass ``chunks`` through; raise ``stalled()`` when ``watch`` reports a stall.

    A chunk is yielded after it is counted, so for an upload body (pulled by the socket writer)
    the time between two chunks is the time the socket took to send the previous one.
    """
    for chunk in chunks:
        if watch.moved(len(chunk)):
            raise stalled()
        yield chunk
