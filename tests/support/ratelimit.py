"""A registry's rate limits, as the fault proxy enforces them in front of a real registry.

:class:`RegistryLimits` decides per request, as Docker Hub and other public registries do:

- a token bucket (``rate`` requests per second, bursts of ``burst``): a request that finds
  it empty is answered ``429`` (or ``status``) with ``Retry-After: retry_after``;
- optionally a pull quota like Docker Hub's (``quota`` manifest ``GET`` requests in a sliding
  window of ``window`` seconds; a ``HEAD`` does not count): every answer to a manifest request
  carries ``RateLimit-Limit: quota;w=window`` and ``RateLimit-Remaining: n;w=window``, and a
  ``GET`` past the quota is answered ``429`` with ``Retry-After`` until a pull comes free.

Thread-safe; the clock is injectable. Everything it refused is counted in
:attr:`RegistryLimits.refused`, every pull in :attr:`RegistryLimits.pulls`.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Refusal", "RegistryLimits"]


@dataclass(frozen=True)
class Refusal:
    """What to answer instead of relaying: a status, its headers, and why (for counting)."""

    status: int
    headers: tuple[tuple[str, str], ...]
    reason: str


@dataclass
class RegistryLimits:
    """The limits of one registry (see the module docstring)."""

    rate: float = 1000.0
    burst: int = 1000
    retry_after: int = 1
    status: int = 429
    quota: int | None = None
    window: float = 60.0
    clock: Callable[[], float] = time.monotonic
    refused: Counter[str] = field(default_factory=Counter)
    pulls: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens = float(self.burst)
        self._filled = self.clock()
        self._recent: deque[float] = deque()

    def admit(self, method: str, path: str) -> Refusal | None:
        """None to relay the request, else the answer the registry gives instead."""
        with self._lock:
            now = self.clock()
            self._tokens = min(self.burst, self._tokens + (now - self._filled) * self.rate)
            self._filled = now
            if self._tokens < 1:
                self.refused["throttled"] += 1
                retry = (("Retry-After", str(self.retry_after)),)
                return Refusal(self.status, retry, "throttled")
            self._tokens -= 1
            if not self._counts(method, path):
                return None
            self._expire(now)
            if len(self._recent) >= self.quota:  # type: ignore[operator]
                self.refused["quota"] += 1
                wait = max(1, int(self._recent[0] + self.window - now + 0.999))
                return Refusal(429, (("Retry-After", str(wait)), *self._headers()), "quota")
            self._recent.append(now)
            self.pulls += 1
            return None

    def headers_for(self, path: str) -> tuple[tuple[str, str], ...]:
        """The quota headers an answer to ``path`` carries (none without a quota)."""
        if self.quota is None or "/manifests/" not in path:
            return ()
        with self._lock:
            self._expire(self.clock())
            return self._headers()

    def _counts(self, method: str, path: str) -> bool:
        return self.quota is not None and method == "GET" and "/manifests/" in path

    def _expire(self, now: float) -> None:
        while self._recent and self._recent[0] <= now - self.window:
            self._recent.popleft()

    def _headers(self) -> tuple[tuple[str, str], ...]:
        left = max(0, (self.quota or 0) - len(self._recent))
        window = f"{self.window:g}"
        return (
            ("RateLimit-Limit", f"{self.quota};w={window}"),
            ("RateLimit-Remaining", f"{left};w={window}"),
        )
