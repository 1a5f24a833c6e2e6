"""Run the CLI as a person at a terminal would: on a pseudo-terminal of a given width."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
import tty

__all__ = ["run_on_terminal"]


def run_on_terminal(*args: str, columns: int = 100, stdout: bool = False) -> tuple[int, str]:
    """Run ``python -m imgmirror ARGS`` with stderr (and with ``stdout``, stdout too) on a
    pseudo-terminal ``columns`` wide; return its exit code and everything it wrote there.

    With ``stdout`` the terminal is raw (no CR added to line ends), so what is read is
    exactly what the CLI wrote.
    """
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    if stdout:
        tty.setraw(follower)
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["TERM"] = "xterm-256color"
    proc = subprocess.Popen(
        [sys.executable, "-m", "imgmirror", *args],
        stdout=follower if stdout else subprocess.DEVNULL,
        stderr=follower,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    os.close(follower)
    drawn = bytearray()
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        drawn += chunk
    os.close(leader)
    return proc.wait(timeout=60), drawn.decode(errors="replace")
