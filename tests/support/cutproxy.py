"""A loopback TCP proxy that cuts one connection once, at a given byte offset.

Put it in front of a real registry to break a transfer in the middle: ``direction="down"``
counts the bytes the registry sends (a blob download), ``"up"`` the bytes the client sends (an
upload body). Only connections whose traffic in that direction contains ``match`` count; the
first one to pass ``offset`` bytes is closed there, every other connection is relayed whole.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Literal

__all__ = ["CutProxy", "cut_proxy"]


class CutProxy:
    def __init__(
        self, upstream: tuple[str, int], direction: Literal["up", "down"], offset: int, match: bytes
    ) -> None:
        self.upstream = upstream
        self.direction = direction
        self.offset = offset
        self.match = match
        self.cuts = 0
        self.relayed = 0  # bytes relayed in the watched direction, over all connections
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._listener.getsockname()[1]}"

    def serve(self) -> None:
        self._listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            server = socket.create_connection(self.upstream)
            self._sockets += [client, server]
            cut = [False]
            up = threading.Thread(
                target=self._pump, args=(client, server, self.direction == "up", cut), daemon=True
            )
            down = threading.Thread(
                target=self._pump, args=(server, client, self.direction == "down", cut), daemon=True
            )
            up.start()
            down.start()

    def _claim(self) -> bool:
        with self._lock:
            if self.cuts:
                return False
            self.cuts = 1
            return True

    def _pump(self, src: socket.socket, dst: socket.socket, watched: bool, cut: list[bool]) -> None:
        seen = 0
        matched = False
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if watched and not cut[0] and not self.cuts:
                    matched = matched or self.match in data
                    if matched and seen + len(data) >= self.offset and self._claim():
                        dst.sendall(data[: self.offset - seen])
                        cut[0] = True
                        break
                    seen += len(data) if matched else 0
                if watched:
                    self.relayed += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


@contextlib.contextmanager
def cut_proxy(
    upstream: str, direction: Literal["up", "down"], offset: int, match: bytes
) -> Iterator[CutProxy]:
    """Serve a :class:`CutProxy` to ``upstream`` (``host:port``) until the block ends."""
    host, port = upstream.rsplit(":", 1)
    proxy = CutProxy((host, int(port)), direction, offset, match)
    thread = threading.Thread(target=proxy.serve, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.close()
        thread.join(5)
