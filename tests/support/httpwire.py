"""Just enough HTTP/1.1 framing to relay messages byte for byte between two sockets.

The test proxies (:mod:`tests.support.faultproxy`) read a request or response head, decide what
to do, then pass the body on as it arrives: ``Content-Length``, ``chunked`` or read-to-close.
Nothing is decoded or rewritten; pieces are yielded exactly as they were on the wire.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["Head", "Wire", "WireError", "reset"]

MAX_HEAD = 64 * 1024
RECV = 64 * 1024


class WireError(Exception):
    """The peer sent something this relay does not understand (or closed mid-message)."""


@dataclass(frozen=True)
class Head:
    """A request or status line with its headers, and the raw bytes they came in."""

    raw: bytes
    first: str
    headers: tuple[tuple[str, str], ...]

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    @property
    def method(self) -> str:
        return self.first.split(" ", 1)[0]

    @property
    def target(self) -> str:
        parts = self.first.split(" ")
        return parts[1] if len(parts) > 1 else ""

    @property
    def status(self) -> int:
        parts = self.first.split(" ")
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0

    def body_kind(self, *, request_method: str | None = None) -> tuple[str, int]:
        """``("length", n)``, ``("chunked", 0)`` or ``("eof", 0)``.

        ``request_method`` marks this head as a response to that request (HEAD requests and
        1xx/204/304 responses carry no body; a response without framing runs to the close).
        """
        if request_method is not None and (
            request_method == "HEAD" or self.status in (204, 304) or self.status < 200
        ):
            return "length", 0
        if "chunked" in (self.header("Transfer-Encoding") or "").lower():
            return "chunked", 0
        length = self.header("Content-Length")
        if length is not None:
            return "length", int(length)
        return ("eof", 0) if request_method is not None else ("length", 0)


def parse_head(raw: bytes) -> Head:
    lines = raw.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise WireError(f"bad header line {line!r}")
        headers.append((name.strip(), value.strip()))
    return Head(raw=raw, first=lines[0], headers=tuple(headers))


class Wire:
    """A socket with a read buffer."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def _fill(self) -> bool:
        data = self.sock.recv(RECV)
        self.buf += data
        return bool(data)

    def read_head(self) -> Head | None:
        """The next head, or None when the peer closed cleanly between messages."""
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                raw = bytes(self.buf[: end + 4])
                del self.buf[: end + 4]
                return parse_head(raw)
            if len(self.buf) > MAX_HEAD:
                raise WireError("head larger than 64 KiB")
            if not self._fill():
                if self.buf:
                    raise WireError("closed in the middle of a head")
                return None

    def _take(self, limit: int) -> bytes:
        if not self.buf and not self._fill():
            raise WireError("closed in the middle of a body")
        piece = bytes(self.buf[:limit])
        del self.buf[:limit]
        return piece

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            if len(self.buf) > MAX_HEAD or not self._fill():
                raise WireError("bad chunk framing")
        end = self.buf.index(b"\r\n") + 2
        line = bytes(self.buf[:end])
        del self.buf[:end]
        return line

    def body(self, kind: tuple[str, int]) -> Iterator[bytes]:
        """The body's raw pieces, framing included, as they arrive."""
        mode, length = kind
        if mode == "length":
            while length > 0:
                piece = self._take(min(length, RECV))
                length -= len(piece)
                yield piece
        elif mode == "chunked":
            yield from self._chunked()
        else:
            while True:
                if self.buf:
                    yield self._take(RECV)
                elif not self._fill():
                    return

    def _chunked(self) -> Iterator[bytes]:
        while True:
            line = self._line()
            yield line
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    trailer = self._line()
                    yield trailer
                    if trailer == b"\r\n":
                        return
            remaining = size + 2
            while remaining > 0:
                piece = self._take(min(remaining, RECV))
                remaining -= len(piece)
                yield piece


def reset(sock: socket.socket) -> None:
    """Close ``sock`` with a TCP RST (SO_LINGER 0) instead of a FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
