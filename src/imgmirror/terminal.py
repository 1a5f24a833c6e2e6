"""Progress on a terminal: one line per finished blob and a live total with its rate.

Used by the CLI when stderr is a TTY and ``--quiet`` is not given. Thread safe: workers report
from their own threads; redraws are throttled to ten a second.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from .digest import Digest
from .progress import ProgressListener

__all__ = ["TerminalProgress", "human_bytes"]


def human_bytes(count: float) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"  # pragma: no cover - loop always returns


class TerminalProgress(ProgressListener):
    """Renders transfer progress to a terminal stream."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()
        self._sizes: dict[Digest, int] = {}
        self._done: dict[Digest, int] = {}
        self._finished = 0
        self._start = time.monotonic()
        self._last_draw = 0.0

    def blob_started(self, digest: Digest, size: int) -> None:
        """Count a new blob in the totals."""
        with self._lock:
            self._sizes[digest] = size
            self._done[digest] = 0
            self._draw(force=True)

    def blob_advanced(self, digest: Digest, nbytes: int) -> None:
        """Add transferred bytes and redraw if due."""
        with self._lock:
            self._done[digest] = self._done.get(digest, 0) + nbytes
            self._draw()

    def blob_finished(self, digest: Digest, outcome: str) -> None:
        """Print the blob's line above the live total."""
        with self._lock:
            self._finished += 1
            size = self._sizes.get(digest)
            shown = human_bytes(size) if size is not None else ""
            self.stream.write(f"\r\x1b[K  {str(digest)[:19]}  {outcome:<8} {shown}\n")
            self._draw(force=True)

    def close(self) -> None:
        """Clear the live line."""
        with self._lock:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        moved = sum(self._done.values())
        total = sum(self._sizes.values())
        rate = moved / max(now - self._start, 1e-6)
        self.stream.write(
            f"\r\x1b[K  {self._finished} blobs done  {human_bytes(moved)} / {human_bytes(total)}"
            f"  {human_bytes(rate)}/s"
        )
        self.stream.flush()
