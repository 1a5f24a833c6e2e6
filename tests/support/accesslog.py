"""Count the requests a test registry served, from its access log.

The distribution registry writes one combined-log line per request
(``127.0.0.1 - - [...] "HEAD /v2/x/manifests/1 HTTP/1.1" 200 ...``); :func:`requests_since`
returns them from a byte offset taken with :func:`log_offset`, so a test can count exactly what
one run sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tests.support.registry import Registry

_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>/\S*) HTTP/[0-9.]+" (?P<status>\d{3})')


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    status: int

    @property
    def kind(self) -> str:
        """``manifests``, ``blobs``, ``tags``, ``uploads``, ``ping`` or ``other``."""
        if self.path.rstrip("/") == "/v2":
            return "ping"
        for kind in ("manifests", "blobs/uploads", "blobs", "tags"):
            if f"/{kind}/" in self.path:
                return "uploads" if kind == "blobs/uploads" else kind
        return "other"


def log_offset(registry: Registry) -> int:
    """The current size of the registry's log."""
    return registry.log_path.stat().st_size


def requests_since(registry: Registry, offset: int = 0) -> list[Request]:
    """The requests logged after ``offset``."""
    with registry.log_path.open("rb") as handle:
        handle.seek(offset)
        text = handle.read().decode(errors="replace")
    return [
        Request(m["method"], m["path"], int(m["status"]))
        for line in text.splitlines()
        if (m := _LINE.search(line)) is not None and not line.startswith("time=")
    ]
