"""The sockets under every registry connection: I/O that ends when its transfer stalls, and a
process-wide interrupt.

httpx bounds each socket read and write (``ClientOptions.timeout``); a peer that drips a byte a
second passes every such bound, in a reply head as well as in a body. [install][] puts a
network backend under an httpx client whose streams consult the calling thread's limit (httpx
does a request's I/O in the thread that sends it or reads its body): under [limited][] or
[watched][], every connect, TLS handshake, read and write feeds its bytes and the seconds
it blocked to a [StallWatch][imgmirror.transport.stall.StallWatch], blocks no longer than the watch
has left, and
raises the error the caller named once the watch counts the transfer stalled. While a reply is
awaited and the peer is still taking a request body out of the kernel's send queue (a slow
destination; Linux ``TIOCOUTQ``), what it takes counts as moved: the reply cannot come before
the body is all there.

[interrupt][] ends every transfer of the process at once (the CLI does on SIGTERM and
SIGINT): open sockets are shut down, so threads blocked on them wake up, and from then on
every read, write, connect and [pause][] raises
[TransferCancelled][imgmirror.errors.TransferCancelled]. Nothing new is sent after it, so no upload
or
manifest is started once the process is going down.
"""

from __future__ import annotations

import contextlib
import fcntl
import socket
import struct
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

try:
    import termios
except ImportError:  # pragma: no cover - not on this platform: no send-queue credit
    termios = None  # type: ignore[assignment]

if TYPE_CHECKING:
    import httpcore
    import httpx

from imgmirror.errors import TransferCancelled
from imgmirror.transport.stall import StallWatch

__all__ = ["clear_interrupt", "install", "interrupt", "limited", "pause", "watched"]

Stalled = Callable[[], Exception]
_T = TypeVar("_T")

#: What a socket operation raises when it fails (httpcore maps OSError and timeouts to these),
#: and httpcore's read timeout; set by [install][]. httpx loads httpcore only when its
#: first client is built, so this module does too: ``imgmirror.copy`` touched at start-up
#: costs no httpcore. The wrappers below follow httpcore's backend and stream interfaces
#: without inheriting from them for the same reason.
_FAILURES: tuple[type[Exception], ...] = ()
_READ_TIMEOUT: type[Exception] = TimeoutError
#: Seconds a read waits at a time while the peer is still taking our request body.
_SLICE = 0.5
_TIOCOUTQ: int | None = getattr(termios, "TIOCOUTQ", None)
#: Largest piece of a write sent under one bound (the bound is measured again after each).
_WRITE_PIECE = 64 * 1024

_local = threading.local()
_interrupted = threading.Event()
_live_lock = threading.Lock()
_live: weakref.WeakSet[_Stream] = weakref.WeakSet()


def _cancelled() -> TransferCancelled:
    return TransferCancelled("transfer stopped: the process was interrupted")


def _limit() -> tuple[StallWatch, Stalled] | None:
    limit: tuple[StallWatch, Stalled] | None = getattr(_local, "limit", None)
    return limit


@contextlib.contextmanager
def limited(watch: StallWatch, stalled: Stalled) -> Iterator[None]:
    """Put the calling thread's socket I/O under ``watch``; ``stalled()`` is raised on a stall."""
    previous = _limit()
    _local.limit = (watch, stalled)
    try:
        yield
    finally:
        _local.limit = previous


def watched(chunks: Iterable[bytes], watch: StallWatch, stalled: Stalled) -> Iterator[bytes]:
    """``chunks`` (a response body), each one read under ``watch``."""
    iterator = iter(chunks)
    while True:
        previous = _limit()
        _local.limit = (watch, stalled)
        try:
            chunk = next(iterator)
        except StopIteration:
            return
        finally:
            _local.limit = previous
        yield chunk


def interrupt() -> None:
    """End every transfer of this process now (see the module docstring)."""
    _interrupted.set()
    with _live_lock:
        streams = list(_live)
    for stream in streams:
        stream.abort()


def clear_interrupt() -> None:
    """Allow transfers again after [interrupt][] (a long-lived process that goes on)."""
    _interrupted.clear()


def pause(seconds: float) -> None:
    """Sleep ``seconds`` (a retry's backoff); [TransferCancelled][] once interrupted."""
    if _interrupted.wait(seconds):
        raise _cancelled()


def _bounded(
    operation: Callable[[float | None], _T],
    timeout: float | None,
    taken: Callable[[], int] | None = None,
) -> _T:
    """Run one socket operation under the thread's limit (if any) and the interrupt;
    ``taken`` says, after a read timed out, how much of our writes the peer took meanwhile."""
    if _interrupted.is_set():
        raise _cancelled()
    limit = _limit()
    if limit is None:
        try:
            return operation(timeout)
        except _FAILURES:
            if _interrupted.is_set():
                raise _cancelled() from None
            raise
    watch, stalled = limit
    remaining = watch.remaining()
    if remaining <= 0:
        raise stalled()
    bound = remaining if timeout is None else min(timeout, remaining)
    started = time.monotonic()
    try:
        result = operation(bound)
    except _FAILURES as exc:
        credit = taken() if taken is not None and isinstance(exc, _READ_TIMEOUT) else 0
        watch.moved(credit, time.monotonic() - started)
        if _interrupted.is_set():
            raise _cancelled() from None
        if watch.stalled():
            raise stalled() from None
        raise
    moved = len(result) if isinstance(result, bytes) else 0
    watch.moved(moved, time.monotonic() - started)
    if _interrupted.is_set():
        raise _cancelled()
    return result


class _Stream:
    """A network stream (httpcore's ``NetworkStream`` interface) whose every operation goes
    through [_bounded][]."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner
        self._wrote = False  # a write since the send queue was last seen empty
        self._unsent = 0  # bytes in the send queue at the last look
        with _live_lock:
            _live.add(self)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        def receive(bound: float | None) -> bytes:
            return self._inner.read(max_bytes, bound)

        if not self._wrote or _limit() is None or not self._queued():
            return _bounded(receive, timeout)
        # The peer is still taking our request body: wait in slices, counting what it takes
        # as moved and as a sign of life (a per-read timeout counts quiet time only).
        quiet = 0.0
        while True:
            piece = _SLICE if timeout is None else max(0.0, min(_SLICE, timeout - quiet))
            before = self._unsent
            try:
                return _bounded(receive, piece, self._taken)
            except _READ_TIMEOUT:
                quiet = 0.0 if self._unsent < before else quiet + piece
                if timeout is not None and quiet >= timeout:
                    raise

    def _outq(self) -> int | None:
        """Bytes we wrote that the peer has not acknowledged yet (None: cannot tell)."""
        sock = self._inner.get_extra_info("socket")
        if _TIOCOUTQ is None or not isinstance(sock, socket.socket):
            return None
        try:
            raw = fcntl.ioctl(sock.fileno(), _TIOCOUTQ, b"\0\0\0\0")
        except (OSError, ValueError):
            return None
        queued: int = struct.unpack("i", raw)[0]
        return queued

    def _queued(self) -> bool:
        """Whether some of our writes still wait for the peer (and note how many)."""
        queued = self._outq()
        self._unsent = queued or 0
        if not queued:
            self._wrote = False
        return bool(queued)

    def _taken(self) -> int:
        """Bytes of our writes the peer took since the last look."""
        before = self._unsent
        self._queued()
        return max(0, before - self._unsent)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        for start in range(0, len(buffer), _WRITE_PIECE):
            piece = buffer[start : start + _WRITE_PIECE]

            def send(bound: float | None, piece: bytes = piece) -> bytes:
                self._inner.write(piece, bound)
                return piece  # its length counts as moved

            _bounded(send, timeout)
        self._wrote = True

    def close(self) -> None:
        with _live_lock:
            _live.discard(self)
        self._inner.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> _Stream:
        with _live_lock:
            _live.discard(self)
        inner = _bounded(
            lambda bound: self._inner.start_tls(ssl_context, server_hostname, bound), timeout
        )
        return _Stream(inner)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)

    def abort(self) -> None:
        """Shut the socket down from another thread: a read or write blocked on it returns."""
        sock = self._inner.get_extra_info("socket")
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Backend:
    """httpcore's backend (its ``NetworkBackend`` interface), its streams wrapped in
    [_Stream][]."""

    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> _Stream:
        stream = _bounded(
            lambda bound: self._inner.connect_tcp(host, port, bound, local_address, socket_options),
            timeout,
        )
        return _Stream(stream)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> _Stream:
        stream = _bounded(
            lambda bound: self._inner.connect_unix_socket(path, bound, socket_options), timeout
        )
        return _Stream(stream)

    def sleep(self, seconds: float) -> None:
        pause(seconds)


def install(client: httpx.Client) -> None:
    """Put [_Backend][] under every connection pool of ``client`` (its own transport and
    the proxy transports httpx mounted from the environment).

    httpx has no public way to choose the network backend (httpcore has); its transports keep
    their pool in ``_pool``. Should that change, the client keeps working with httpx's own
    per-read timeouts, and the stall tests in tests/integration/test_stalls.py fail.
    """
    import httpcore  # noqa: PLC0415 - loaded with httpx's first client, not at start-up

    global _FAILURES, _READ_TIMEOUT  # noqa: PLW0603 - httpcore's classes, known once it loads
    _FAILURES = (httpcore.NetworkError, httpcore.TimeoutException)
    _READ_TIMEOUT = httpcore.ReadTimeout
    mounts = getattr(client, "_mounts", {})
    for transport in (getattr(client, "_transport", None), *mounts.values()):
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if isinstance(backend, httpcore.NetworkBackend) and not isinstance(backend, _Backend):
            pool._network_backend = _Backend(backend)  # type: ignore[union-attr]
