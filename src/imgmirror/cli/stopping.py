"""Stopping a command on SIGINT, SIGTERM or SIGHUP: at once, and with nothing half-written.

[stop_on_signals][] turns the first of these signals into [Terminated][] (a
``KeyboardInterrupt``) in the main thread, which unwinds the command the way Ctrl-C does: its
``finally`` blocks remove temporary files and archives not renamed into place, and the CLI
exits 128 + the signal (130, 143, 129). Worker threads do not see that exception, so the
signal also wakes a watcher thread (``signal.set_wakeup_fd``, so that nothing runs inside the
interrupted main thread but the raise) which calls
[imgmirror.transport.sockets.interrupt][imgmirror.transport.sockets.interrupt]:
every socket is shut down, the transfers blocked on them fail with ``TransferCancelled`` at
once (a registry that drips keeps nobody waiting), and nothing new is sent, so no manifest is
pushed, and no tag set, once the process is going down. Further signals while the command
unwinds are ignored; should unwinding take longer than [STOP_GRACE][] seconds, the process
ends anyway.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
from collections.abc import Iterator

from imgmirror.transport.sockets import interrupt

__all__ = ["STOP_GRACE", "STOP_SIGNALS", "Terminated", "stop_on_signals"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: Seconds a command may take to unwind after a stop signal before the process just ends.
STOP_GRACE = 5.0

_installed = threading.Event()


class Terminated(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP arrived: unwound like Ctrl-C, exit status 128 + the signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum

    @property
    def what(self) -> str:
        return "interrupted" if self.signum == signal.SIGINT else "terminated"


def _watch(reader: socket.socket, done: threading.Event) -> None:
    """Wait for a stop signal's byte; interrupt every transfer; end the process if the command
    has not unwound within the grace period."""
    with reader:
        while True:
            try:
                data = reader.recv(64)
            except OSError:
                return
            if not data or done.is_set():
                return
            stops = [n for n in data if n in STOP_SIGNALS]
            if stops:
                break
    interrupt()
    if not done.wait(STOP_GRACE):
        with contextlib.suppress(OSError):
            os.write(2, b"imgmirror: still stopping; exiting now\n")
        os._exit(128 + stops[0])


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Run the block so that a stop signal ends it at once (see the module docstring)."""
    if threading.current_thread() is not threading.main_thread() or _installed.is_set():
        yield
        return
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    done = threading.Event()
    stopping: list[int] = []

    def handler(signum: int, frame: object) -> None:
        if not stopping:  # later signals: the command is unwinding already
            stopping.append(signum)
            raise Terminated(signum)

    watcher = threading.Thread(
        target=_watch, args=(reader, done), name="imgmirror-signals", daemon=True
    )
    watcher.start()
    old = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    old_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    _installed.set()
    try:
        yield
    finally:
        _installed.clear()
        signal.set_wakeup_fd(old_fd)
        for sig, previous in old.items():
            signal.signal(sig, previous)
        done.set()
        writer.close()  # the watcher's recv ends
