"""A fault-injecting HTTP proxy in front of a real registry, driven by a seed.

``FaultProxy(("127.0.0.1", registry.port), FaultPlan(seed=7, rate=0.2))`` listens on
127.0.0.1 and relays each request to the registry on a fresh upstream connection, keeping the
``Host`` header (so the registry's ``Location`` URLs name the proxy). For each request it draws,
from ``random.Random(f"{seed}:{method} {path}:{n}")``, whether to inject one fault and where:

- ``reset-request``: a TCP RST after a random part of the request body reached the registry;
- ``reset-response`` / ``truncate``: a RST / a clean close at a random offset of the response
  (of its body when it has one, else of its head);
- ``stall``: the response stops at a random offset for ``plan.stall`` seconds, then resumes;
- ``drip``: from a random offset the response trickles at ``plan.drip_rate`` bytes/s for
  ``plan.drip`` seconds, then flows again. ``drip=math.inf`` never lets it flow again: with
  ``rate=1.0`` and ``drip_rate=1`` every reply drips a byte a second (a hostile or broken
  source), with ``drip_rate=20480`` and ``place="start"`` the proxy is a 20 KiB/s link;
- ``429`` / ``503``, each also ``-retry-after``: the proxy answers itself (registry-style JSON
  error body, ``Retry-After: plan.retry_after`` for the second form); the registry never sees
  the request;
- ``flip``: one byte of a content-addressed response body (a blob, or a manifest by digest,
  ``GET``) is inverted at a random offset, the rest relayed unchanged; the client must catch
  it with the digest. Any other request drawn for it passes untouched (nothing recorded).

``plan.only`` (a regex searched in the request key, e.g. ``"GET /v2/.*/blobs/"``) limits
the faults to the requests it matches; the others pass untouched. ``plan.upload_rate`` relays
every request body at that many bytes/s (a destination that takes uploads slowly).

``plan.place`` chooses where a response fault lands: ``"any"`` (in the body when there is one,
else in the head), ``"head"`` (inside the status line and headers), ``"body"`` (inside the
body; the head when there is none) or ``"start"`` (the first byte).

A proxy given ``limits`` (:class:`~tests.support.ratelimit.RegistryLimits`) also behaves as a
rate-limited public registry: requests past its token bucket, and manifest ``GET`` requests
past its pull quota, are answered ``429`` with ``Retry-After`` (the registry never sees them),
and answers to manifest requests carry Docker Hub's ``RateLimit-Limit``/``RateLimit-Remaining``.

The decision depends only on the seed, the request's method and path (upload UUIDs and query
strings left out, a PUT's ``digest`` kept) and how many such requests came before, so a run
with ``--jobs 1`` replays exactly; with parallel jobs each request key still gets the same fault.
With ``tls`` (a server context) the proxy ends TLS itself and speaks TLS to the registry
(``upstream_tls``), so faults land inside TLS connections too; without it a connection that
does not start with HTTP (a TLS hello) is relayed untouched, as the registry would see it.
``plan.agent`` limits faults to requests whose ``User-Agent`` contains it (the client under
test, not the checks beside it). Every fault that fired is in :attr:`FaultProxy.injected`.
Bounded:
sockets time out after ``IO_TIMEOUT``; the proxy stops by itself after ``plan.lifetime``
seconds and stops when its context manager exits.
"""

from __future__ import annotations

import contextlib
import random
import re
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from .httpwire import Head, Wire, WireError, reset
from .ratelimit import RegistryLimits

__all__ = ["FAULT_KINDS", "PLACES", "FaultPlan", "FaultProxy", "Injected"]

FAULT_KINDS = (
    "reset-request",
    "reset-response",
    "truncate",
    "stall",
    "drip",
    "429",
    "429-retry-after",
    "503",
    "503-retry-after",
    "flip",
)
PLACES = ("any", "head", "body", "start")
IO_TIMEOUT = 30.0
_UNKNOWN_LENGTH = 4096  # offsets into a chunked or read-to-close body are drawn below this
_UPLOAD = re.compile(r"/blobs/uploads/[^/]+")
_BY_DIGEST = re.compile(r"/v2/.+/(blobs|manifests)/sha256:[0-9a-f]{64}")
_PLAIN_TO_TLS = b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
_STATUS_TEXT = {
    429: ("Too Many Requests", "TOOMANYREQUESTS"),
    503: ("Service Unavailable", "UNAVAILABLE"),
}


@dataclass(frozen=True)
class FaultPlan:
    """What to inject and how often; every field bounded."""

    seed: int
    rate: float = 0.1
    kinds: tuple[str, ...] = FAULT_KINDS
    stall: float = 1.0
    drip: float = 0.5
    drip_rate: int = 4096
    place: str = "any"
    only: str | None = None
    upload_rate: int | None = None
    retry_after: int = 1
    max_faults: int | None = None
    lifetime: float = 300.0
    agent: str | None = None

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown or not self.kinds:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; pick from {FAULT_KINDS}")
        if self.place not in PLACES:
            raise ValueError(f"unknown place {self.place!r}; pick from {PLACES}")
        if self.drip_rate < 1:
            raise ValueError("drip_rate is in bytes per second, at least 1")

    def decide(self, key: str, n: int) -> tuple[str, float] | None:
        """The fault for the ``n``-th request with ``key`` and where it lands (0..1), or None."""
        if self.only is not None and not re.search(self.only, key):
            return None
        rng = random.Random(f"{self.seed}:{key}:{n}")  # noqa: S311 - replayable, not secret
        if rng.random() >= self.rate:
            return None
        return rng.choice(self.kinds), rng.random()


@dataclass(frozen=True)
class Injected:
    """One fault that fired: its kind, the request it hit and the byte offset where."""

    kind: str
    key: str
    offset: int


def request_key(head: Head) -> str:
    """``METHOD path`` without upload UUIDs or query, plus a PUT's ``digest``."""
    parts = urlsplit(head.target)
    key = f"{head.method} {_UPLOAD.sub('/blobs/uploads/*', parts.path)}"
    digest = parse_qs(parts.query).get("digest")
    return f"{key}?digest={digest[0]}" if digest else key


def status_reply(
    status: int,
    retry_after: int | None,
    *,
    head: bool = False,
    headers: tuple[tuple[str, str], ...] = (),
) -> bytes:
    """A registry-style error reply (headers only for a ``HEAD`` request)."""
    reason, code = _STATUS_TEXT[status]
    body = f'{{"errors":[{{"code":"{code}","message":"injected by the fault proxy"}}]}}'.encode()
    lines = [
        f"HTTP/1.1 {status} {reason}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in headers),
    ]
    if retry_after is not None:
        lines.append(f"Retry-After: {retry_after}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (b"" if head else body)


class _Closed(Exception):
    """The fault ended the client connection."""


class FaultProxy:
    """A running proxy; use as a context manager or call :meth:`start` and :meth:`stop`."""

    def __init__(
        self,
        upstream: tuple[str, int],
        plan: FaultPlan,
        limits: RegistryLimits | None = None,
        *,
        tls: ssl.SSLContext | None = None,
        upstream_tls: ssl.SSLContext | None = None,
    ) -> None:
        self.upstream = upstream
        self.plan = plan
        self.limits = limits
        self.tls = tls
        self.upstream_tls = upstream_tls
        self.injected: list[Injected] = []
        self.requests = 0
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        if plan.upload_rate is not None:  # a slow link buffers little: the sender sees it
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._deadline = 0.0

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._listener.getsockname()[1]}"

    def counts(self) -> Counter[str]:
        with self._lock:
            return Counter(fault.kind for fault in self.injected)

    def start(self) -> FaultProxy:
        self._deadline = time.monotonic() + self.plan.lifetime
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self._listener.close()
        with self._lock:
            for sock in list(self._sockets):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- serving ---------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            client.settimeout(IO_TIMEOUT)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()
        self._stop.set()
        self._listener.close()

    def _track(self, sock: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._sockets.add(sock)
            else:
                self._sockets.discard(sock)

    def _serve(self, client: socket.socket) -> None:
        self._track(client, True)
        try:
            first = client.recv(1, socket.MSG_PEEK)
            if first and not first.isalpha() and self.tls is not None:  # a TLS hello: end it
                self._track(client, False)
                client = self.tls.wrap_socket(client, server_side=True)
                self._track(client, True)
            elif first and not first.isalpha():  # not HTTP: relay it untouched
                self._tunnel(client)
                return
            elif self.tls is not None:  # plain HTTP to a TLS port: what Go's server answers
                Wire(client).read_head()
                client.sendall(_PLAIN_TO_TLS)
                client.shutdown(socket.SHUT_WR)
                return
            wire = Wire(client)
            while not self._stop.is_set():
                head = wire.read_head()
                if head is None or not self._exchange(client, wire, head):
                    break
        except (OSError, WireError, _Closed):
            pass
        finally:
            self._track(client, False)
            client.close()

    def _tunnel(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self.upstream, timeout=IO_TIMEOUT)
        self._track(upstream, True)
        back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
        back.start()
        try:
            _pump(client, upstream)
            back.join(IO_TIMEOUT)
        finally:
            self._track(upstream, False)
            upstream.close()

    def _connect(self) -> socket.socket:
        upstream = socket.create_connection(self.upstream, timeout=IO_TIMEOUT)
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.upstream_tls is None:
            return upstream
        return self.upstream_tls.wrap_socket(upstream, server_hostname=self.upstream[0])

    def _decide(self, head: Head) -> tuple[str, float, str] | None:
        key = request_key(head)
        with self._lock:
            self.requests += 1
            n = self._seen[key]
            self._seen[key] += 1
            full = self.plan.max_faults is not None and len(self.injected) >= self.plan.max_faults
        agent = self.plan.agent
        if full or (agent is not None and agent not in (head.header("User-Agent") or "")):
            return None
        choice = self.plan.decide(key, n)
        if choice is None:
            return None
        if choice[0] == "flip" and not (
            head.method == "GET" and _BY_DIGEST.fullmatch(urlsplit(head.target).path)
        ):
            return None  # only a body a digest protects is flipped
        return choice[0], choice[1], key

    def _record(self, kind: str, key: str, offset: int) -> None:
        with self._lock:
            self.injected.append(Injected(kind, key, offset))

    def _exchange(self, client: socket.socket, wire: Wire, head: Head) -> bool:
        """Relay one request and its response; False when the client connection is done."""
        if self.limits is not None and self._refused(client, wire, head, self.limits):
            return True
        fault = self._decide(head)
        kind, where, key = fault if fault else ("", 0.0, "")
        request_body = head.body_kind()
        if kind[:3] in ("429", "503"):
            for _ in wire.body(request_body):
                pass
            retry_after = self.plan.retry_after if kind.endswith("retry-after") else None
            self._record(kind, key, 0)
            client.sendall(status_reply(int(kind[:3]), retry_after, head=head.method == "HEAD"))
            return True
        upstream = self._connect()
        self._track(upstream, True)
        try:
            upstream.sendall(_closing(head))
            if kind == "reset-request":
                self._cut_request(wire, request_body, upstream, where, key)
                reset(client)
                raise _Closed
            for piece in wire.body(request_body):
                self._send_up(upstream, piece)
            return self._respond(client, Wire(upstream), head, fault)
        finally:
            self._track(upstream, False)
            upstream.close()

    def _send_up(self, upstream: socket.socket, piece: bytes) -> None:
        """Relay a piece of a request body, at ``plan.upload_rate`` if there is one."""
        rate = self.plan.upload_rate
        if rate is None:
            upstream.sendall(piece)
            return
        step = max(1, rate // 20)
        for start in range(0, len(piece), step):
            if self._stop.wait(step / rate):
                raise _Closed
            upstream.sendall(piece[start : start + step])

    def _refused(
        self, client: socket.socket, wire: Wire, head: Head, limits: RegistryLimits
    ) -> bool:
        """Answer for the registry when its limits refuse the request."""
        path = urlsplit(head.target).path
        refusal = limits.admit(head.method, path)
        if refusal is None:
            return False
        for _ in wire.body(head.body_kind()):
            pass
        self._record(refusal.reason, request_key(head), 0)
        reply = status_reply(refusal.status, None, head=head.method == "HEAD",
                             headers=refusal.headers)  # fmt: skip
        client.sendall(reply)
        return True

    def _cut_request(
        self, wire: Wire, kind: tuple[str, int], upstream: socket.socket, where: float, key: str
    ) -> None:
        total = kind[1] if kind[0] == "length" else _UNKNOWN_LENGTH
        offset = int(where * total)
        sent = 0
        for piece in wire.body(kind):
            if sent + len(piece) > offset:
                upstream.sendall(piece[: offset - sent])
                break
            upstream.sendall(piece)
            sent += len(piece)
        self._record("reset-request", key, offset)
        reset(upstream)

    def _respond(
        self,
        client: socket.socket,
        upstream: Wire,
        request: Head,
        fault: tuple[str, float, str] | None,
    ) -> bool:
        head = upstream.read_head()
        if head is None:
            raise WireError("the registry closed without answering")
        body = head.body_kind(request_method=request.method)
        raw = head.raw
        if self.limits is not None:
            raw = _with_headers(raw, self.limits.headers_for(urlsplit(request.target).path))
        pieces = _chain(raw, upstream.body(body))
        if fault is not None and fault[0] == "flip" and not (body[0] == "length" and body[1]):
            fault = None  # no body to flip (a redirect, an error without one)
        if fault is None:
            for piece in pieces:
                client.sendall(piece)
        else:
            kind, where, key = fault
            offset = _offset(len(head.raw), body, where, self.plan.place)
            self._relay_with_fault(client, pieces, kind, offset, key)
        closing = (head.header("Connection") or "").lower() == "close"
        asked_close = (request.header("Connection") or "").lower() == "close"
        return body[0] != "eof" and not closing and not asked_close

    def _relay_with_fault(
        self, client: socket.socket, pieces: Iterator[bytes], kind: str, offset: int, key: str
    ) -> None:
        sent = 0
        for piece in pieces:
            if sent <= offset < sent + len(piece):
                cut = offset - sent
                client.sendall(piece[:cut])
                self._record(kind, key, offset)
                if kind == "reset-response":
                    reset(client)
                    raise _Closed
                if kind == "truncate":
                    client.shutdown(socket.SHUT_WR)
                    raise _Closed
                if kind == "stall":
                    self._stop.wait(self.plan.stall)
                    client.sendall(piece[cut:])
                elif kind == "flip":
                    client.sendall(bytes([piece[cut] ^ 0xFF]) + piece[cut + 1 :])
                else:  # drip
                    self._drip(client, _chain(piece[cut:], pieces))
                    return
            else:
                client.sendall(piece)
            sent += len(piece)

    def _drip(self, client: socket.socket, pieces: Iterator[bytes]) -> None:
        rate = self.plan.drip_rate
        step = max(1, rate // 20)  # 20 sends a second, or one byte at a time below 20 B/s
        pause = step / rate
        until = time.monotonic() + self.plan.drip
        for piece in pieces:
            view = memoryview(piece)
            while view and time.monotonic() < until and not self._stop.is_set():
                client.sendall(view[:step])
                view = view[step:]
                self._stop.wait(pause)
            if self._stop.is_set():
                raise _Closed
            client.sendall(view)


def _pump(src: socket.socket, dst: socket.socket) -> None:
    """Copy ``src`` to ``dst`` until ``src`` closes, then close ``dst``'s sending side."""
    with contextlib.suppress(OSError):
        while data := src.recv(64 * 1024):
            dst.sendall(data)
        dst.shutdown(socket.SHUT_WR)


def _closing(head: Head) -> bytes:
    """The request head with ``Connection: close``: one upstream connection per request."""
    lines = [head.first]
    lines += [f"{k}: {v}" for k, v in head.headers if k.lower() != "connection"]
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _with_headers(raw: bytes, headers: tuple[tuple[str, str], ...]) -> bytes:
    """A response head with ``headers`` added before its blank line."""
    if not headers:
        return raw
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers).encode("latin-1")
    return raw[:-2] + extra + b"\r\n"


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _offset(head_len: int, body: tuple[str, int], where: float, place: str = "any") -> int:
    """Where a response fault lands (see ``FaultPlan.place``): by default inside the body
    when there is one, else in the head."""
    mode, length = body
    if place == "start":
        return 0
    if place == "head" or (mode == "length" and length == 0):
        return int(where * head_len)
    span = length if mode == "length" else _UNKNOWN_LENGTH
    return head_len + int(where * span)
