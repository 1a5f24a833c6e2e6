"""How hard a run may press one registry: its concurrency, a pause after a rate limit, a quota.

One [RegistryLimiter][] per registry host is shared by every client of it (the
[ClientPool][imgmirror.registry.pool.ClientPool] owns them), and every request a
[Connection][imgmirror.transport.connection.Connection] sends passes through it:

- **Concurrency, additive-increase/multiplicative-decrease.** At most ``limit`` requests are
  sent to the registry at once. A ``429`` (or a ``503`` with ``Retry-After``) halves the limit
  (down to one), once per rate-limit episode; every other answer adds ``1/limit`` back, so
  the limit grows by about one per round of requests, up to ``max_concurrency``.
- **A shared pause.** The same answer pauses every request to that registry, not only the
  one refused, for the ``Retry-After`` the registry gave (else ``pause`` seconds): the whole
  run backs off instead of each image retrying into the storm. Time spent waiting here is
  not taken from a request's retry budget.
- **A pull quota.** Docker Hub's ``RateLimit-Limit``/``RateLimit-Remaining`` (``100;w=21600``:
  100 pulls in a 6-hour window; only manifest ``GET`` requests count, a ``HEAD`` does not) are
  read from every answer. When a ``GET`` of a manifest would leave fewer than ``reserve``
  pulls, the limiter either waits for one pull to come free (``window / limit`` seconds) or,
  with ``on_quota="stop"``, raises [QuotaExhausted][imgmirror.errors.QuotaExhausted].

[RegistryLimiter][] also counts what went to its registry (requests, rate-limited
answers, seconds paused) for reports and metrics. Pure threading: no httpx here (headers
arrive as a mapping), so [.options][imgmirror.transport.options] can hold the policy value.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Literal

import attrs

from imgmirror.errors import QuotaExhausted

__all__ = ["LimiterStats", "QuotaPolicy", "RateLimitPolicy", "RegistryLimiter", "counts_as_pull"]

log = logging.getLogger("imgmirror")

QuotaPolicy = Literal["wait", "stop"]
_QUOTA = re.compile(r"^\s*(\d+)\s*(?:;\s*w\s*=\s*(\d+))?")


@attrs.frozen
class RateLimitPolicy:
    """How a run reacts to a registry's rate limits (one value, in ``ClientOptions``).

    Attributes:
        max_concurrency: requests in flight to one registry at first and at most.
        decrease: the factor the limit is multiplied by on a rate-limited answer.
        pause: seconds every request to the registry waits after a rate-limited answer
            that gave no ``Retry-After``.
        max_pause: cap on one pause (a ``Retry-After`` beyond it is cut to it).
        on_quota: ``"wait"`` for a pull to come free when the quota would run out, or
            ``"stop"`` with [QuotaExhausted][imgmirror.errors.QuotaExhausted].
        reserve: pulls of the quota left unused (for others behind the same address).
    """

    max_concurrency: int = 16
    decrease: float = 0.5
    pause: float = 1.0
    max_pause: float = 60.0
    on_quota: QuotaPolicy = "wait"
    reserve: int = 0


@attrs.frozen
class LimiterStats:
    """What went to one registry: requests sent, answers that were rate limits (429, or 503
    with ``Retry-After``), seconds requests spent paused, the lowest concurrency reached, and
    the last quota the registry announced (``None`` when it announced none)."""

    requests: int = 0
    rate_limited: int = 0
    paused_seconds: float = 0.0
    lowest_concurrency: int = 0
    quota_remaining: int | None = None
    quota_limit: int | None = None

    def since(self, before: LimiterStats) -> LimiterStats:
        """The counts added after ``before`` (the quota and the lowest limit as now)."""
        return attrs.evolve(
            self,
            requests=self.requests - before.requests,
            rate_limited=self.rate_limited - before.rate_limited,
            paused_seconds=self.paused_seconds - before.paused_seconds,
        )


def counts_as_pull(method: str, url: str) -> bool:
    """Whether Docker Hub counts the request against the pull quota: a manifest ``GET``."""
    return method == "GET" and "/manifests/" in url


def _quota(value: str | None) -> tuple[int, float | None] | None:
    """``"100;w=21600"`` -> ``(100, 21600.0)``; None when absent or unreadable."""
    match = _QUOTA.match(value or "")
    if match is None:
        return None
    window = match.group(2)
    return int(match.group(1)), float(window) if window else None


class RegistryLimiter:
    """The limits of one registry (see the module docstring); safe to share between threads.

    Args:
        registry: the registry host, for messages.
        policy: the reactions.
        clock: monotonic seconds; injectable for tests.
    """

    def __init__(
        self,
        registry: str,
        policy: RateLimitPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.policy = policy or RateLimitPolicy()
        self.clock = clock
        self._cond = threading.Condition()
        self._limit = float(self.policy.max_concurrency)
        self._in_flight = 0
        self._resume_at = 0.0
        self._remaining: int | None = None
        self._quota: int | None = None
        self._window: float | None = None
        self._next_pull = 0.0
        self._stats = LimiterStats(lowest_concurrency=self.policy.max_concurrency)

    @property
    def limit(self) -> int:
        """Requests allowed in flight now."""
        with self._cond:
            return max(1, int(self._limit))

    def stats(self) -> LimiterStats:
        """The counts so far."""
        with self._cond:
            return attrs.evolve(
                self._stats, quota_remaining=self._remaining, quota_limit=self._quota
            )

    @contextlib.contextmanager
    def slot(self, method: str, url: str) -> Iterator[float]:
        """Hold one of the registry's request slots while a request is sent; yields the
        seconds waited for it (paused, for a slot, or for the quota).

        Raises:
            QuotaExhausted: a counted request would exhaust the quota and the policy stops.
        """
        waited = self._acquire(counts_as_pull(method, url))
        try:
            yield waited
        finally:
            with self._cond:
                self._in_flight -= 1
                self._cond.notify_all()

    def _acquire(self, pull: bool) -> float:
        started = self.clock()
        with self._cond:
            while True:
                now = self.clock()
                delay = self._resume_at - now
                if pull and delay <= 0:
                    delay = self._quota_delay(now)
                if delay <= 0 and self._in_flight < max(1, int(self._limit)):
                    break
                self._cond.wait(min(delay, 0.5) if delay > 0 else 0.5)
            self._in_flight += 1
            self._stats = attrs.evolve(self._stats, requests=self._stats.requests + 1)
            if pull and self._remaining is not None:
                self._remaining -= 1  # until the answer says
                if self._next_pull:
                    self._next_pull = self.clock() + self._per_pull()
            waited = self.clock() - started
            if waited > 0:
                seconds = self._stats.paused_seconds + waited
                self._stats = attrs.evolve(self._stats, paused_seconds=seconds)
            return waited

    def _quota_delay(self, now: float) -> float:
        """Seconds a counted request must wait for the quota (0 or less: go); called locked.

        With the quota at its reserve, pulls are paced at one per ``window / limit`` seconds,
        the rate at which a sliding window frees them, until an answer shows more left.
        """
        policy = self.policy
        if self._remaining is None or self._remaining > policy.reserve:
            return 0.0
        if policy.on_quota == "stop":
            window = f" in its {self._window:g} s window" if self._window else ""
            raise QuotaExhausted(
                f"{self.registry}: the pull quota is used up: {max(self._remaining, 0)} of "
                f"{self._quota} pulls left{window}, {policy.reserve} kept in reserve",
                hint="run again when the window has passed, log in for a larger quota, or "
                "let the run wait for it (--on-quota wait)",
            )
        if not self._next_pull:
            self._next_pull = now + self._per_pull()
            log.warning(
                "%s: %d of %s pulls left; pacing manifest pulls at one per %.0f s",
                self.registry, max(self._remaining, 0), self._quota, self._per_pull(),
            )  # fmt: skip
        return self._next_pull - now

    def _per_pull(self) -> float:
        return (self._window or 3600.0) / max(self._quota or 1, 1)

    def observe(self, status: int, headers: Mapping[str, str], retry_after: float | None) -> None:
        """An answer arrived: adjust the limit, pause on a rate limit, note the quota."""
        announced = _quota(headers.get("ratelimit-remaining"))
        limited = status == 429 or (status == 503 and retry_after is not None)
        with self._cond:
            if announced is not None:
                self._remaining = announced[0]
                total = _quota(headers.get("ratelimit-limit"))
                if total is not None:
                    self._quota, self._window = total[0], total[1] or announced[1]
                if self._remaining > self.policy.reserve:
                    self._next_pull = 0.0
            if limited:
                self._rate_limited(retry_after)
            elif self._limit < self.policy.max_concurrency:
                self._limit = min(self._limit + 1 / self._limit, self.policy.max_concurrency)
            self._cond.notify_all()

    def _rate_limited(self, retry_after: float | None) -> None:
        """Halve the limit (once per episode) and pause every request; called locked."""
        policy = self.policy
        now = self.clock()
        pause = min(policy.pause if retry_after is None else retry_after, policy.max_pause)
        episode = now < self._resume_at
        self._resume_at = max(self._resume_at, now + pause)
        lowest = self._stats.lowest_concurrency
        if not episode:
            self._limit = max(1.0, self._limit * policy.decrease)
            lowest = min(lowest, int(self._limit))
            log.warning(
                "%s is rate limiting: pausing its requests for %.1f s, %d at once from now",
                self.registry, pause, int(self._limit),
            )  # fmt: skip
        self._stats = attrs.evolve(
            self._stats, rate_limited=self._stats.rate_limited + 1, lowest_concurrency=lowest
        )
