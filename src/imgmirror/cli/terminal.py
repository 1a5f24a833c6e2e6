"""How the CLI shows progress: a live rich display on a terminal, plain lines in logs.

On a terminal ([TerminalProgress][]): one line with the bytes done of the planned total,
the percentage, the current rate and the time left, then one line per blob in flight (largest
first, as many as the terminal's height allows), never wider than the terminal; each finished
blob leaves a line with its outcome above the display. Elsewhere ([LogProgress][]): a
plain line on stderr every few seconds, so CI logs show life. Both read a
[ProgressTally][imgmirror.progress.ProgressTally]; rich is imported only when a terminal display
starts.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TextIO

from imgmirror.errors import printable
from imgmirror.model.digest import Digest
from imgmirror.progress import Outcome, ProgressSnapshot, ProgressTally, Verb

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

    from imgmirror.model.manifest import Descriptor

__all__ = [
    "LogProgress",
    "TerminalProgress",
    "Ticker",
    "human_bytes",
    "human_seconds",
    "log_interval",
    "untrusted",
]

_ING = {"copy": "copying", "save": "saving", "push": "pushing"}
_BAD = frozenset({"failed", "interrupted"})
DEFAULT_INTERVAL = 5.0


def untrusted(text: str) -> str:
    """Text a registry or a file supplied (tags, artifact types, annotations, platforms), as
    the CLI prints it: every character a terminal would act on (ESC, BEL, CR, other C0/C1
    controls, bidi overrides) escaped as ``\\x1b``..., line breaks kept. Every command prints
    such text through this; error messages are escaped where they are rendered
    ([ImgmirrorError][imgmirror.errors.ImgmirrorError])."""
    return "\n".join(printable(line) for line in text.split("\n"))


def log_interval(interval: float | None = None) -> float:
    """Seconds between progress lines in a log: ``interval``, else
    ``$IMGMIRROR_PROGRESS_INTERVAL``, else 5."""
    if interval is None:
        interval = float(os.environ.get("IMGMIRROR_PROGRESS_INTERVAL") or DEFAULT_INTERVAL)
    return max(interval, 0.01)


def human_bytes(count: float) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"  # pragma: no cover - loop always returns


def human_seconds(seconds: float) -> str:
    """``75`` -> ``"1:15"``; ``3725`` -> ``"1:02:05"``."""
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def _short(digest: Digest) -> str:
    return str(digest)[:19]


def _stats(snap: ProgressSnapshot) -> list[str]:
    """The overall figures, most important first (narrow terminals keep a prefix)."""
    parts = [f"{snap.fraction * 100:3.0f}%", f"{human_bytes(snap.done)}/{human_bytes(snap.total)}"]
    if snap.rate is not None:
        parts.append(f"{human_bytes(snap.rate)}/s")
    if snap.eta is not None:
        parts.append(f"ETA {human_seconds(snap.eta)}")
    parts.append(f"{snap.blobs_done}/{snap.blobs_total} blobs")
    return parts


class TerminalProgress(ProgressTally):
    """The live display on a terminal (stderr by default)."""

    def __init__(self, console: Console | None = None) -> None:
        super().__init__()
        from rich.console import Console  # noqa: PLC0415 - only a terminal display needs rich

        self.console = console or Console(stderr=True)
        self._live: Live | None = None
        self._live_lock = threading.Lock()

    def _ensure_live(self) -> None:
        with self._live_lock:
            if self._live is None:
                from rich.live import Live  # noqa: PLC0415

                self._live = Live(
                    get_renderable=self._render,
                    console=self.console,
                    refresh_per_second=8,
                    transient=True,
                    redirect_stdout=False,
                    redirect_stderr=False,
                )
                self._live.start()

    def planned(self, blobs: Sequence[Descriptor], verb: Verb) -> None:
        """Totals known: start the display."""
        super().planned(blobs, verb)
        self._ensure_live()

    def blob_started(self, digest: Digest, size: int) -> None:
        """Show the blob in flight."""
        super().blob_started(digest, size)
        self._ensure_live()

    def blob_finished(self, digest: Digest, outcome: Outcome) -> None:
        """Leave a line for the blob above the display."""
        super().blob_finished(digest, outcome)
        self._print_outcome(digest, outcome)

    def _print_outcome(self, digest: Digest, outcome: Outcome) -> None:
        from rich.text import Text  # noqa: PLC0415

        size = self.size(digest)
        shown = human_bytes(size) if size is not None else ""
        style = "red" if outcome in _BAD else ("dim" if outcome in ("skipped", "mounted") else "")
        line = Text(f"  {_short(digest)}  {outcome:<11} {shown}", style=style)
        live = self._live
        # Live's refresh thread writes under its lock; a print from a worker thread must too,
        # or a refresh lands between the print's "clear the display" and its line (rich
        # positions the cursor when the print is rendered, not when it is written).
        with live._lock if live is not None else contextlib.nullcontext():
            self.console.print(line, no_wrap=True, overflow="ellipsis", crop=True)

    def close(self, *, interrupted: bool = False) -> None:
        """Stop the display; with ``interrupted``, blobs still in flight are shown as such."""
        if interrupted:
            for blob in self.snapshot().in_flight:
                self.blob_finished(blob.digest, "interrupted")
        with self._live_lock:
            if self._live is not None:
                self._live.stop()
                self._live = None

    def _render(self) -> RenderableType:
        from rich.console import Group  # noqa: PLC0415

        snap = self.snapshot()
        width = self.console.width
        lines = [self._row(_ING.get(snap.verb, snap.verb), snap.fraction, _stats(snap), width)]
        room = max(1, self.console.height - 3)
        for blob in snap.in_flight[:room]:
            fraction = blob.done / blob.size if blob.size else 1.0
            figures = [f"{human_bytes(blob.done)}/{human_bytes(blob.size)}"]
            lines.append(self._row(f"  {_short(blob.digest)}", fraction, figures, width))
        hidden = len(snap.in_flight) - room
        if hidden > 0:
            lines.append(self._row(f"  ... and {hidden} more in flight", None, [], width))
        return Group(*lines)

    @staticmethod
    def _row(label: str, fraction: float | None, parts: list[str], width: int) -> RenderableType:
        """``label [bar] parts...`` cut to ``width``: the bar takes what the text leaves."""
        from rich.progress_bar import ProgressBar  # noqa: PLC0415
        from rich.table import Table  # noqa: PLC0415
        from rich.text import Text  # noqa: PLC0415

        stats = ""
        for part in parts:  # drop the least important figures first
            candidate = f"{stats} {part}".strip()
            if len(label) + 1 + len(candidate) > width:
                break
            stats = candidate
        bar_width = min(40, width - len(label) - len(stats) - 2)
        if fraction is None or bar_width < 8:
            text = Text(f"{label} {stats}".rstrip(), no_wrap=True, overflow="ellipsis")
            text.truncate(width, overflow="ellipsis")
            return text
        grid = Table.grid(padding=(0, 1))
        grid.add_row(
            Text(label, no_wrap=True),
            ProgressBar(total=1.0, completed=fraction, width=bar_width),
            Text(stats, no_wrap=True),
        )
        return grid


class Ticker:
    """A line on ``stream`` every ``interval`` seconds (``$IMGMIRROR_PROGRESS_INTERVAL`` or
    5 s by default) from a daemon thread, ``line()`` asked each time, until [stop][Ticker.stop].
    What a piped command shows so that CI logs see life (copy's progress, sync's heartbeat).
    """

    def __init__(
        self, stream: TextIO, line: Callable[[], str], interval: float | None = None
    ) -> None:
        self.stream = stream
        self.line = line
        self.interval = log_interval(interval)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the lines (again: nothing more)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._tick, name="progress", daemon=True)
                self._thread.start()

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                self.stream.write(self.line() + "\n")
                self.stream.flush()

    def stop(self) -> None:
        """No more lines; returns once the thread has ended."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


class LogProgress(ProgressTally):
    """A plain line every ``interval`` seconds on a stream (an error stays the one line the
    CLI prints after it). ``interval`` defaults to ``$IMGMIRROR_PROGRESS_INTERVAL`` or 5 s.
    """

    def __init__(self, stream: TextIO | None = None, interval: float | None = None) -> None:
        super().__init__()
        self.stream = stream or sys.stderr
        self._ticker = Ticker(self.stream, lambda: self.line(self.snapshot()), interval)

    @property
    def interval(self) -> float:
        """Seconds between lines."""
        return self._ticker.interval

    def planned(self, blobs: Sequence[Descriptor], verb: Verb) -> None:
        """Start the periodic lines."""
        super().planned(blobs, verb)
        self._ticker.start()

    def blob_started(self, digest: Digest, size: int) -> None:
        """Start the periodic lines, if the operation announced no plan."""
        super().blob_started(digest, size)
        self._ticker.start()

    @staticmethod
    def line(snap: ProgressSnapshot) -> str:
        """``imgmirror: copying: 42% 21.0 MiB/50.0 MiB 3.5 MiB/s ETA 0:08 2/7 blobs``."""
        return f"imgmirror: {_ING.get(snap.verb, snap.verb)}: {' '.join(_stats(snap))}"

    def close(self, *, interrupted: bool = False) -> None:
        """Stop the periodic lines (blobs still in flight count as interrupted)."""
        if interrupted:
            for blob in self.snapshot().in_flight:
                self.blob_finished(blob.digest, "interrupted")
        self._ticker.stop()
