"""Stall detection: a transfer that moves too few bytes for too long fails.

A socket read timeout catches a peer that sends nothing; it does not catch one that drips a
byte a second, which keeps a transfer alive forever. [StallWatch][] is fed, for one
transfer, the bytes each socket read or write moved and the seconds it spent blocked waiting
on the peer ([.sockets][imgmirror.transport.sockets] measures them), and counts the transfer stalled
once a whole
window of ``window`` such seconds (the first one counted from the start) moved fewer than
``min_rate * window`` bytes. Only time spent waiting on the network counts: a consumer that is
slow (a destination taking the bytes at its own pace, a disk) and the retry policy's backoff
are not the peer's fault. One watch covers one request with its retries, or one blob with its
resumes: a reconnect does not start the clock again. [StallWatch.remaining][] tells the
socket layer how long the next read or write may block, so a peer that drips a reply head or
goes silent is cut off on time, not one read timeout later.

Pure: nothing here reads a clock or does I/O.
"""

from __future__ import annotations

import collections

__all__ = ["StallWatch"]

#: Buckets per window: the window slides in steps of ``window / _SLOTS``.
_SLOTS = 8


class StallWatch:
    """Counts the bytes of one transfer against a floor rate (see the module docstring).

    Args:
        window: seconds of waiting over which the rate is measured (the stall timeout).
        min_rate: bytes per second below which a whole window counts as stalled.
    """

    __slots__ = ("_buckets", "_needed", "_now", "_slot", "min_rate", "window")

    def __init__(self, window: float, min_rate: float) -> None:
        self.window = window
        self.min_rate = min_rate
        self._needed = min_rate * window
        self._slot = window / _SLOTS
        self._now = 0.0  # seconds spent waiting on the peer so far
        #: [waiting time of its first byte, of its last byte, bytes], oldest first
        self._buckets: collections.deque[list[float]] = collections.deque()

    def moved(self, count: int, seconds: float) -> bool:
        """``count`` more bytes moved in ``seconds`` of waiting; True when the transfer is
        stalled."""
        self._now += max(0.0, seconds)
        now = self._now
        if count:
            buckets = self._buckets
            if buckets and now - buckets[-1][0] < self._slot:
                last = buckets[-1]
                last[1] = now
                last[2] += count
            else:
                buckets.append([now, now, float(count)])
                while buckets[0][1] + self.window <= now:
                    buckets.popleft()
        return self._deadline() <= now

    def _deadline(self) -> float:
        """The waiting time at which the transfer is stalled if nothing more moves."""
        total = 0.0
        for _, last, count in reversed(self._buckets):
            total += count
            if total >= self._needed:
                return last + self.window
        return self.window

    def remaining(self) -> float:
        """Seconds of waiting left before the transfer is stalled (<= 0: it is)."""
        return self._deadline() - self._now

    def stalled(self) -> bool:
        return self.remaining() <= 0
