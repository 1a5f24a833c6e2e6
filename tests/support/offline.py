"""A network namespace with no route out: only a /30 link to this machine, where relays
forward to the test registries on loopback (benchmarks/netlab.py's lab without delay). A
command run inside it can reach the registries and nothing else: no DNS, no default route,
so any call to Sigstore's services (Rekor, Fulcio, the TUF repository) would fail. Named after
this worktree's helper (``h22-offline-PID``), on a /30 of its own; removed when the context
manager exits. Root only (``ip netns add``)."""

from __future__ import annotations

import contextlib
import ipaddress
import subprocess
from collections.abc import Iterator

from benchmarks.netlab import Lab, latency_lab

__all__ = ["SUBNET", "offline_namespace", "routes"]

#: Used for nothing else (the benchmarks' lab uses 10.213.47.0/30).
SUBNET = ipaddress.ip_network("10.213.22.0/30")


@contextlib.contextmanager
def offline_namespace() -> Iterator[Lab]:
    """The namespace and its link (``lab.expose(port)``, ``lab.argv(cmd)``); removed on exit."""
    with latency_lab(0.0, subnet=SUBNET, names=("h22-offline", "h22o", "h22i")) as lab:
        yield lab


def routes(lab: Lab) -> str:
    """Every route the namespace has (all tables)."""
    done = subprocess.run(
        ["ip", "-n", lab.namespace, "route", "show", "table", "all"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout
