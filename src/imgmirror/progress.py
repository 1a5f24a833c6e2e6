"""Progress events of long transfers, and the listener protocol operations report them to.

Operations call a [ProgressListener][] with their plan, then as blobs start, advance and
finish; the library default ignores them. [ProgressTally][] turns the events into totals,
a moving-window rate and the time left, for any renderer (the CLI's are in
[imgmirror.cli.terminal][imgmirror.cli.terminal]).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Literal

import attrs

from imgmirror.errors import TransferCancelled
from imgmirror.model.digest import Digest

if TYPE_CHECKING:
    from imgmirror.model.manifest import Descriptor

__all__ = [
    "InFlight",
    "NullProgress",
    "Outcome",
    "ProgressListener",
    "ProgressSnapshot",
    "ProgressTally",
    "Verb",
    "counted",
]

#: How a blob ended: moved (the operation's own verb), found already there (``skipped``),
#: mounted from another repository, or not made present.
Outcome = Literal["copied", "saved", "pushed", "skipped", "mounted", "failed", "interrupted"]

#: The operation a plan belongs to.
Verb = Literal["copy", "save", "push"]


class ProgressListener:
    """Receives transfer events; every method does nothing here, so a listener subclasses this
    and overrides what it needs. Called from worker threads: implementations must be safe.

    Order: `planned` once, before the first byte moves, with every blob the operation
    may transfer (so totals are known up front); then per blob ``blob_started`` /
    ``blob_advanced`` ... / ``blob_finished``. Outcomes are the operation's own verbs:
    ``copied``, ``saved``, ``pushed``, ``skipped``, ``mounted``, ``failed``, ``interrupted``.
    """

    def planned(self, blobs: Sequence[Descriptor], verb: Verb) -> None:
        """The operation will make these blobs present; ``verb`` is ``copy``/``save``/``push``."""

    def blob_started(self, digest: Digest, size: int) -> None:
        """A blob transfer began; ``size`` bytes are expected."""

    def blob_advanced(self, digest: Digest, nbytes: int) -> None:
        """``nbytes`` more bytes of the blob went through."""

    def blob_finished(self, digest: Digest, outcome: Outcome) -> None:
        """The blob is done: ``copied``/``saved``/``pushed``, ``skipped``, ``mounted``,
        ``failed`` or ``interrupted``."""


class NullProgress(ProgressListener):
    """A listener that ignores everything (the library default)."""


_DONE: frozenset[Outcome] = frozenset({"copied", "saved", "pushed", "skipped", "mounted"})
_NOT_MOVED: frozenset[Outcome] = frozenset({"skipped", "mounted"})


@attrs.frozen
class InFlight:
    """One blob being transferred: its digest, bytes through so far, and its size."""

    digest: Digest
    done: int
    size: int


@attrs.frozen
class ProgressSnapshot:
    """Where an operation stands: what [ProgressTally][] reports to a renderer.

    ``total`` counts the bytes that must move (planned blobs, less those found already there
    or mounted); ``rate`` is bytes per second over the last few seconds (None until known);
    ``eta`` the seconds left at that rate; ``in_flight`` is largest first.
    """

    verb: Verb
    done: int
    total: int
    blobs_done: int
    blobs_total: int
    rate: float | None
    eta: float | None
    in_flight: tuple[InFlight, ...]

    @property
    def fraction(self) -> float:
        """Done over total, in [0, 1] (1 when nothing needs to move)."""
        return 1.0 if self.total <= 0 else min(1.0, self.done / self.total)


class ProgressTally(ProgressListener):
    """A listener that keeps the totals: bytes done of the planned total, a moving-window
    rate, the time left and the blobs in flight. Renderers call `snapshot`.

    Bytes of a blob that failed or was interrupted do not count as done; a restarted blob
    starts again from zero. Thread safe.
    """

    def __init__(self, window: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.verb: Verb = "copy"
        self._window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._sizes: dict[Digest, int] = {}
        self._active: dict[Digest, int] = {}
        self._outcomes: dict[Digest, Outcome] = {}
        self._moved = 0  # bytes of blobs finished after a transfer
        self._total = 0
        self._through = 0  # every byte reported, for the rate
        self._samples: deque[tuple[float, int]] = deque([(clock(), 0)])

    def planned(self, blobs: Sequence[Descriptor], verb: Verb) -> None:
        """Set the totals from the plan."""
        with self._lock:
            self.verb = verb
            for blob in blobs:
                if blob.digest not in self._sizes:
                    self._sizes[blob.digest] = blob.size
                    self._total += blob.size
            self._samples = deque([(self._clock(), self._through)])

    def blob_started(self, digest: Digest, size: int) -> None:
        """Track the blob from zero (again, if it restarts)."""
        with self._lock:
            if digest not in self._sizes:
                self._sizes[digest] = size
                self._total += size
            elif self._outcomes.pop(digest, None) in _DONE:  # again, to another repository
                self._total += size
            self._active[digest] = 0

    def blob_advanced(self, digest: Digest, nbytes: int) -> None:
        """Count bytes through."""
        with self._lock:
            if digest in self._active:
                self._active[digest] += nbytes
            self._through += nbytes
            now = self._clock()
            if now - self._samples[-1][0] >= 0.1:
                self._samples.append((now, self._through))

    def blob_finished(self, digest: Digest, outcome: Outcome) -> None:
        """Move the blob out of flight; only a transferred blob's bytes count as done."""
        with self._lock:
            self._active.pop(digest, None)
            self._outcomes[digest] = outcome
            size = self._sizes.get(digest, 0)
            if outcome in _NOT_MOVED:
                self._total -= size
            elif outcome in _DONE:
                self._moved += size

    def outcome(self, digest: Digest) -> Outcome | None:
        """How the blob ended, if it did."""
        with self._lock:
            return self._outcomes.get(digest)

    def size(self, digest: Digest) -> int | None:
        """The blob's size, if planned or started."""
        with self._lock:
            return self._sizes.get(digest)

    def snapshot(self) -> ProgressSnapshot:
        """The totals now."""
        with self._lock:
            now = self._clock()
            samples = self._samples
            while len(samples) > 1 and now - samples[1][0] > self._window:
                samples.popleft()
            since, base = samples[0]
            elapsed = now - since
            rate = (self._through - base) / elapsed if elapsed >= 0.5 else None
            flying = sorted(
                (
                    InFlight(d, min(n, self._sizes[d]), self._sizes[d])
                    for d, n in self._active.items()
                ),
                key=lambda f: (-f.size, str(f.digest)),
            )
            done = self._moved + sum(f.done for f in flying)
            total = max(self._total, done)
            eta = (total - done) / rate if rate else None
            return ProgressSnapshot(
                verb=self.verb,
                done=done,
                total=total,
                blobs_done=sum(1 for o in self._outcomes.values() if o in _DONE),
                blobs_total=len(self._sizes),
                rate=rate,
                eta=eta,
                in_flight=tuple(flying),
            )


def counted(
    chunks: Iterable[bytes],
    digest: Digest,
    listener: ProgressListener,
    cancel: threading.Event | None = None,
) -> Iterator[bytes]:
    """Pass chunks through, reporting their sizes to ``listener``.

    Raises:
        TransferCancelled: ``cancel`` was set (another transfer failed, or Ctrl-C).
    """
    for chunk in chunks:
        if cancel is not None and cancel.is_set():
            raise TransferCancelled(f"transfer of {digest} stopped: the operation was cancelled")
        listener.blob_advanced(digest, len(chunk))
        yield chunk
