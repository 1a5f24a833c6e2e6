"""A network with latency on this machine: a namespace, a veth pair and a delay proxy.

This kernel has no netem, so latency comes from a proxy of our own. :func:`latency_lab` (root
only) creates a network namespace joined to this one by a veth pair with addresses from
:data:`SUBNET`, a /30 used for nothing else (``host_ip`` here, ``ns_ip`` inside), and returns
a :class:`Lab`. ``lab.expose(port)`` starts a :class:`DelayProxy` on ``host_ip`` that relays
to ``127.0.0.1:port`` and holds every chunk ``delay`` seconds in each direction (so a round
trip costs ``2 * delay``, and a new connection one round trip more, for the handshake);
``lab.argv(cmd)`` runs a command inside the namespace, where the
only reachable address is ``host_ip``. A registry serving TLS behind the proxy gives a TLS
registry at a non-loopback address, 50 ms away (certificates: ``make_pki(dir,
extra_ips=[lab.host_ip])``). Everything is removed when the context manager exits::

    with latency_lab(delay=0.025) as lab:
        src = lab.expose(registry.port)          # "10.213.47.1:PORT"
        run(lab.argv(["imgmirror", "copy", f"{src}/repo:tag", ...]))
        print(lab.proxies[0].connections)        # TCP connections the client opened
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import queue
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SUBNET", "DelayProxy", "Lab", "latency_lab", "reclaim_stale_labs"]

SUBNET = ipaddress.ip_network("10.213.47.0/30")
RECV = 256 * 1024


class DelayProxy:
    """A TCP relay that delivers every chunk ``delay`` seconds after it arrived, each way."""

    def __init__(self, listen: tuple[str, int], upstream: tuple[str, int], delay: float) -> None:
        self.upstream = upstream
        self.delay = delay
        self.connections = 0
        self._stop = threading.Event()
        self._listener = socket.create_server(listen)
        self._listener.settimeout(0.2)
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        host, port = self._listener.getsockname()[:2]
        return f"{host}:{port}"

    def start(self) -> DelayProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._pair, args=(client,), daemon=True).start()

    def _pair(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.upstream, timeout=30)
        except OSError:
            client.close()
            return
        for sock in (client, server):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(None)
        with self._lock:
            self._sockets.update((client, server))
        # The client's connect() returned at once; hold its first bytes one more round trip,
        # as the TCP handshake would have cost it on a real network.
        handshake = time.monotonic() + 2 * self.delay
        threads = [
            threading.Thread(target=self._direction, args=(client, server, handshake), daemon=True),
            threading.Thread(target=self._direction, args=(server, client, 0.0), daemon=True),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with self._lock:
            self._sockets.difference_update((client, server))
        client.close()
        server.close()

    def _direction(self, src: socket.socket, dst: socket.socket, not_before: float) -> None:
        """Read from ``src`` at once; a writer delivers each chunk ``delay`` after it arrived
        (and not before ``not_before + delay``)."""
        pending: queue.Queue[tuple[float, bytes]] = queue.Queue()
        writer = threading.Thread(target=self._deliver, args=(pending, dst), daemon=True)
        writer.start()
        try:
            while True:
                data = src.recv(RECV)
                pending.put((max(time.monotonic(), not_before) + self.delay, data))
                if not data:
                    break
        except OSError:
            pending.put((0.0, b""))
        writer.join()

    def _deliver(self, pending: queue.Queue[tuple[float, bytes]], dst: socket.socket) -> None:
        while True:
            due, data = pending.get()
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                dst.sendall(data)
            except OSError:
                return


@dataclass
class Lab:
    """A namespace joined to this one; see :func:`latency_lab`."""

    namespace: str
    host_ip: str
    ns_ip: str
    delay: float
    proxies: list[DelayProxy] = field(default_factory=list)

    def expose(self, port: int, upstream_host: str = "127.0.0.1") -> str:
        """A delay proxy on ``host_ip`` in front of ``upstream_host:port``; ``host:port``."""
        proxy = DelayProxy((self.host_ip, 0), (upstream_host, port), self.delay).start()
        self.proxies.append(proxy)
        return proxy.address

    def argv(self, command: Sequence[str]) -> list[str]:
        """``command`` run inside the namespace."""
        return ["ip", "netns", "exec", self.namespace, *command]

    @property
    def connections(self) -> int:
        """TCP connections opened through every proxy so far."""
        return sum(p.connections for p in self.proxies)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reclaim_stale_labs(names: tuple[str, str]) -> None:
    """Remove the labs of runs that were killed before their clean-up ran.

    A lab's namespace is ``NAME-PID`` and its outer link ``LINKPID`` (``names``), PID being the
    process that made it. If that process is gone, the namespace, the link, its
    ``/etc/netns/NAME-PID`` directory and any process still inside (registries, containerd,
    relays) are left-overs, and go. A lab whose maker still runs belongs to another run, and
    stays (the address check then says so).
    """
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    for line in listed.stdout.splitlines():
        namespace = line.split(" ", 1)[0]
        tag = namespace.removeprefix(f"{names[0]}-")
        if tag == namespace or not tag.isdigit() or _alive(int(tag)):
            continue
        argv = ["ip", "netns", "pids", namespace]
        pids = subprocess.run(argv, check=False, capture_output=True, text=True)
        for pid in pids.stdout.split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("link", "del", f"{names[1]}{tag}")
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("netns", "del", namespace)
        shutil.rmtree(Path("/etc/netns") / namespace, ignore_errors=True)


@contextlib.contextmanager
def latency_lab(
    delay: float = 0.025,
    *,
    subnet: ipaddress.IPv4Network | ipaddress.IPv6Network = SUBNET,
    names: tuple[str, str, str] = ("imgm-lat", "imlh", "imln"),
) -> Iterator[Lab]:
    """Create the namespace and veth pair (root only); remove them on exit. ``subnet`` and
    ``names`` (namespace, outer and inner link prefixes) let a test run its own beside it."""
    if os.geteuid() != 0:
        raise PermissionError("the latency lab needs root (ip netns add)")
    host_ip, ns_ip = (str(a) for a in subnet.hosts())
    reclaim_stale_labs((names[0], names[1]))
    in_use = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True, check=True)
    if f" {host_ip}/" in in_use.stdout:
        raise RuntimeError(f"{host_ip} is already in use here (another latency lab running?)")
    tag = str(os.getpid())
    namespace, outside, inside = f"{names[0]}-{tag}", f"{names[1]}{tag}", f"{names[2]}{tag}"
    _ip("netns", "add", namespace)
    lab = Lab(namespace, host_ip, ns_ip, delay)
    try:
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        _ip("link", "set", inside, "netns", namespace)
        _ip("addr", "add", f"{host_ip}/{subnet.prefixlen}", "dev", outside)
        _ip("link", "set", outside, "up")
        _ip("-n", namespace, "addr", "add", f"{ns_ip}/{subnet.prefixlen}", "dev", inside)
        _ip("-n", namespace, "link", "set", inside, "up")
        _ip("-n", namespace, "link", "set", "lo", "up")
        yield lab
    finally:
        for proxy in lab.proxies:
            proxy.stop()
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("link", "del", outside)
        _ip("netns", "del", namespace)
