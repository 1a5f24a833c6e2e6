"""save against copy over a link whose every connection is bandwidth-limited.

A CDN or a distant registry often limits each connection, not the host: then what matters is
how many blobs move at once. :class:`Throttle` is a loopback TCP proxy in front of the source
registry that sends each connection's replies at most ``rate`` bytes per second (requests go
through unthrottled). :func:`throttled_save` times ``imgmirror copy`` and ``imgmirror save``
of the same image through it, in turn; the target is save within 1.2x of copy.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path

from .images import BenchImage
from .measure import CommandFailed, Samples, imgmirror_argv, run_timed
from .scenarios import SRC_REPO, Bench, Row

__all__ = ["RATE", "Throttle", "throttled_save"]

#: Bytes per second per connection.
RATE = 20 * 1024 * 1024
_CHUNK = 64 * 1024


class Throttle:
    """A loopback TCP proxy to ``upstream`` (``host:port``), replies limited per connection."""

    def __init__(self, upstream: str, rate: int = RATE) -> None:
        host, _, port = upstream.rpartition(":")
        self.upstream = (host.strip("[]"), int(port))
        self.rate = rate
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.listener.getsockname()[1]}"

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            threading.Thread(target=self._pump, args=(client, server, 0), daemon=True).start()
            threading.Thread(
                target=self._pump, args=(server, client, self.rate), daemon=True
            ).start()

    def _pump(self, source: socket.socket, target: socket.socket, rate: int) -> None:
        started, sent = time.monotonic(), 0
        try:
            while data := source.recv(_CHUNK):
                target.sendall(data)
                sent += len(data)
                if rate:
                    time.sleep(max(0.0, started + sent / rate - time.monotonic()))
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def close(self) -> None:
        self.stopped.set()
        self.listener.close()


def throttled_save(bench: Bench, image: BenchImage, rounds: int, rate: int = RATE) -> Row:
    """``save`` and ``copy`` of ``image`` from behind :class:`Throttle`, ``rounds`` each."""
    row = Row("throttled save", image)
    copies = Samples()
    throttle = Throttle(bench.source.host, rate)
    src = f"{throttle.host}/{SRC_REPO}/{image.name}:latest"
    archive = Path(bench.scratch) / "throttled.tar"
    try:
        for number in range(rounds):
            repo = f"throttled/{image.name}-{number}-{time.monotonic_ns()}"
            save = imgmirror_argv("save", "--quiet", src, "-o", str(archive))
            copy = imgmirror_argv("copy", "--quiet", src, f"{bench.destination.host}/{repo}:1")
            steps = [(row.imgmirror, save), (copies, copy)]
            for samples, argv in steps[number % 2 :] + steps[: number % 2]:
                samples.add(run_timed(argv))
            if not archive.is_file():
                raise CommandFailed("throttled save wrote no archive")
            archive.unlink()
    finally:
        throttle.close()
    ratio = row.imgmirror.median / copies.median
    row.facts.update(copy_seconds=copies.median, save_to_copy=ratio, rate=rate)
    row.notes.append(
        f"through a proxy sending each connection {rate / 1024 / 1024:.0f} MiB/s: save "
        f"{row.imgmirror.median:.2f} s, copy {copies.median:.2f} s (save/copy {ratio:.2f})"
    )
    return row
