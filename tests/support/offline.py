"""A network namespace with no route out: only a /30 link to this machine, where relays
forward to the test registries on loopback. A command run inside it can reach the registries
and nothing else: no DNS, no default route, so any call to Sigstore's services (Rekor, Fulcio,
the TUF repository) would fail. Named after this worktree's helper (``h22-offline-PID``);
removed when the context manager exits. Root only (``ip netns add``)."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from benchmarks.netlab import DelayProxy

__all__ = ["SUBNET", "Offline", "offline_namespace"]

#: Used for nothing else (benchmarks/netlab.py uses 10.213.47.0/30).
SUBNET = ipaddress.ip_network("10.213.22.0/30")


@dataclass
class Offline:
    namespace: str
    host_ip: str
    relays: list[DelayProxy] = field(default_factory=list)

    def expose(self, port: int) -> str:
        """A relay on ``host_ip`` to ``127.0.0.1:port``; its ``host:port``."""
        relay = DelayProxy((self.host_ip, 0), ("127.0.0.1", port), 0.0).start()
        self.relays.append(relay)
        return relay.address

    def argv(self, command: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.namespace, *command]

    def routes(self) -> str:
        done = subprocess.run(
            ["ip", "-n", self.namespace, "route", "show", "table", "all"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return done.stdout

    @property
    def connections(self) -> int:
        return sum(r.connections for r in self.relays)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@contextlib.contextmanager
def offline_namespace() -> Iterator[Offline]:
    """Create the namespace and its link; remove both on exit."""
    host_ip, ns_ip = (str(a) for a in SUBNET.hosts())
    tag = f"{os.getpid() % 100000}"
    namespace, outside, inside = f"h22-offline-{tag}", f"h22o{tag}", f"h22i{tag}"
    _ip("netns", "add", namespace)
    lab = Offline(namespace, host_ip)
    try:
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        _ip("link", "set", inside, "netns", namespace)
        _ip("addr", "add", f"{host_ip}/{SUBNET.prefixlen}", "dev", outside)
        _ip("link", "set", outside, "up")
        _ip("-n", namespace, "addr", "add", f"{ns_ip}/{SUBNET.prefixlen}", "dev", inside)
        _ip("-n", namespace, "link", "set", inside, "up")
        _ip("-n", namespace, "link", "set", "lo", "up")
        yield lab
    finally:
        for relay in lab.relays:
            relay.stop()
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("link", "del", outside)
        _ip("netns", "del", namespace)
