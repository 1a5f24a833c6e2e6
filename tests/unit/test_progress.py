"""The progress tally and its two renderings, driven by hand with a fake clock."""

from __future__ import annotations

import hashlib
import io
import re
import time

from rich.console import Console

from imgmirror.cli.terminal import LogProgress, TerminalProgress
from imgmirror.model.digest import Digest
from imgmirror.model.manifest import Descriptor
from imgmirror.progress import ProgressTally

MIB = 1024 * 1024


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def blob(n: int, size: int) -> Descriptor:
    digest = Digest("sha256", hashlib.sha256(str(n).encode()).hexdigest())
    return Descriptor(media_type="application/octet-stream", digest=digest, size=size)


def test_total_is_known_before_the_first_byte_and_skips_leave_it():
    clock = Clock()
    tally = ProgressTally(clock=clock)
    a, b, c = blob(1, 10 * MIB), blob(2, 30 * MIB), blob(3, 60 * MIB)
    tally.planned([a, b, c, a], "push")

    snap = tally.snapshot()
    assert (snap.verb, snap.done, snap.total, snap.blobs_total) == ("push", 0, 100 * MIB, 3)

    tally.blob_finished(c.digest, "mounted")  # nothing to move for it
    tally.blob_started(b.digest, b.size)
    tally.blob_advanced(b.digest, 10 * MIB)
    snap = tally.snapshot()
    assert (snap.done, snap.total, snap.blobs_done) == (10 * MIB, 40 * MIB, 1)
    assert snap.fraction == 0.25


def test_rate_is_a_moving_window_and_gives_an_eta():
    clock = Clock()
    tally = ProgressTally(window=5.0, clock=clock)
    big = blob(1, 1000 * MIB)
    tally.planned([big], "copy")
    tally.blob_started(big.digest, big.size)
    for _ in range(10):  # 10 MiB/s for ten seconds
        clock.now += 1
        tally.blob_advanced(big.digest, 10 * MIB)
    for _ in range(5):  # then 1 MiB/s: the window forgets the fast start
        clock.now += 1
        tally.blob_advanced(big.digest, 1 * MIB)
    snap = tally.snapshot()
    assert snap.rate is not None
    assert 0.9 * MIB < snap.rate < 2.9 * MIB
    assert snap.eta is not None
    assert snap.eta == (snap.total - snap.done) / snap.rate


def test_failed_bytes_do_not_count_and_a_restart_begins_at_zero():
    tally = ProgressTally(clock=Clock())
    a, b = blob(1, 10 * MIB), blob(2, 10 * MIB)
    tally.planned([a, b], "copy")
    tally.blob_started(a.digest, a.size)
    tally.blob_advanced(a.digest, 8 * MIB)
    tally.blob_started(a.digest, a.size)  # a broken transfer starts over
    tally.blob_advanced(a.digest, 1 * MIB)
    assert tally.snapshot().done == 1 * MIB
    tally.blob_finished(a.digest, "copied")
    tally.blob_started(b.digest, b.size)
    tally.blob_advanced(b.digest, 5 * MIB)
    tally.blob_finished(b.digest, "failed")

    snap = tally.snapshot()
    assert (snap.done, snap.total, snap.blobs_done, snap.in_flight) == (10 * MIB, 20 * MIB, 1, ())
    assert tally.outcome(b.digest) == "failed"


def visible_lines(drawn: str) -> list[str]:
    """What a terminal shows per line: escape sequences removed, split at CR and LF."""
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", drawn)
    return [line for line in re.split(r"[\r\n]", plain) if line]


def test_terminal_rendering_fits_the_width_and_bounds_the_blob_lines():
    blobs = [blob(n, (n + 1) * MIB) for n in range(12)]
    for width in (40, 160):
        out = io.StringIO()
        console = Console(file=out, width=width, height=8, force_terminal=True)
        progress = TerminalProgress(console)
        progress.planned(blobs, "save")
        for b in blobs:
            progress.blob_started(b.digest, b.size)
            progress.blob_advanced(b.digest, b.size // 2)
        progress.blob_finished(blobs[0].digest, "saved")
        console.print(progress._render())
        progress.close(interrupted=True)

        lines = visible_lines(out.getvalue())
        assert all(len(line) <= width for line in lines), (width, lines)
        shown = [line for line in lines if line.startswith("  sha256:") and "/" in line]
        largest = [str(b.digest)[:19] for b in reversed(blobs[1:])][:5]
        assert [line.split()[0] for line in shown[:5]] == largest  # largest first, 5 fit
        assert any("... and 6 more in flight" in line for line in lines)
        assert any(line.startswith("saving") and "%" in line for line in lines)
        assert sum("interrupted" in line for line in lines) == 11
        assert any("saved" in line for line in lines)


def test_log_lines_show_life():
    stream = io.StringIO()
    progress = LogProgress(stream, interval=0.01)
    a = blob(1, 4 * MIB)
    progress.planned([a], "push")
    progress.blob_started(a.digest, a.size)
    progress.blob_advanced(a.digest, 1 * MIB)
    deadline = 200
    while "imgmirror: pushing:" not in stream.getvalue() and deadline:
        time.sleep(0.01)
        deadline -= 1
    progress.close(interrupted=True)

    text = stream.getvalue()
    assert re.search(r"imgmirror: pushing:  25% 1\.0 MiB/4\.0 MiB .*0/1 blobs", text), text
    assert progress.outcome(a.digest) == "interrupted"


def test_log_lines_start_without_a_plan_too():
    stream = io.StringIO()
    progress = LogProgress(stream, interval=0.01)
    a = blob(1, 2 * MIB)
    progress.blob_started(a.digest, a.size)
    progress.blob_advanced(a.digest, 1 * MIB)
    deadline = 200
    while "imgmirror: copying:" not in stream.getvalue() and deadline:
        time.sleep(0.01)
        deadline -= 1
    progress.close()

    assert "imgmirror: copying:  50% 1.0 MiB/2.0 MiB" in stream.getvalue()
