"""When and how long to wait before trying a registry request or a transfer again.

Pure policy: [RetryPolicy][] (a frozen value, like urllib3's ``Retry``) holds the one set
of transient statuses and the backoff (exponential with full jitter, or the server's
``Retry-After``), bounded both in attempts and in total waiting time. Every loop that retries
asks it, through an [Attempts][] tracker::

    attempts = policy.start()
    while True:
        try:
            return do_it()
        except ImgmirrorError as exc:
            delay = attempts.after(exc)
            if delay is None or cancel.wait(delay):
                raise

A transfer that can resume (a blob download with ``Range``, a chunked upload at the offset the
registry stored) asks [Attempts.resumed][] instead, telling it how far the attempt that
broke got: a gain of at least the minimum is progress and starts a fresh budget, a smaller one
counts as a failed attempt, so a peer that lets each connection move a few bytes cannot keep a
transfer alive. A transfer that starts over from nothing keeps its count, but an attempt that
moved at least the minimum does not eat into the time budget (``next_delay(progress=True)``).
Either way, the deadline is the time a request or transfer may spend without progress.

[Attempts.after][imgmirror.transport.retry.Attempts.after] decides for an error (transient,
never a digest mismatch, the server's ``Retry-After`` honoured); ``next_delay`` for a loop
that has decided already. Request sends, resumed downloads and uploads, blob transfers, a
push's streamed passes and an archive's rewritten entries all use this one shape, so
``ClientOptions.retry`` and its deadline mean the same everywhere. Nothing here sleeps or
does I/O; the clock and the random source are injectable for tests.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import attrs

from imgmirror.errors import VerificationError, is_transient

__all__ = ["RETRY_STATUSES", "Attempts", "RetryPolicy", "parse_retry_after"]

#: Statuses worth another try: timeouts, rate limits and the transient 5xx family.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Parse a ``Retry-After`` header: delta-seconds or an HTTP-date.

    Returns:
        Seconds to wait (never negative), or None when absent or unparsable.
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    import email.utils  # noqa: PLC0415 - 11 ms at start-up, needed only for dated Retry-After

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


@attrs.frozen
class RetryPolicy:
    """Bounded exponential backoff with jitter.

    Attributes:
        attempts: total tries per request or transfer, the first one included.
        backoff: base delay in seconds; attempt ``n`` waits up to ``backoff * 2**(n-1)``.
        max_delay: cap on a single wait, ``Retry-After`` included.
        deadline: cap on the time one request or transfer spends without progress, its
            failed attempts and the waits between them included.
        statuses: the HTTP statuses that are transient.
    """

    attempts: int = 5
    backoff: float = 0.25
    max_delay: float = 30.0
    deadline: float = 120.0
    statuses: frozenset[int] = RETRY_STATUSES

    def should_retry_status(self, status: int) -> bool:
        """Whether a response status is transient."""
        return status in self.statuses

    def delay(
        self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """The wait before attempt ``attempt + 1`` (``attempt`` counts from 1).

        A server-given ``Retry-After`` wins over the computed backoff, capped at ``max_delay``.
        """
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay)
        ceiling = min(self.max_delay, self.backoff * (2 ** (attempt - 1)))
        pick = (rng or random).uniform(ceiling / 2, ceiling)
        return float(pick)

    def allows(self, attempt: int, waited: float, next_delay: float) -> bool:
        """Whether another attempt fits in both the count and the time budget."""
        return attempt < self.attempts and waited + next_delay <= self.deadline

    def start(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> Attempts:
        """A tracker for one request or transfer, its first attempt under way."""
        return Attempts(self, clock, rng)


class Attempts:
    """The retry budget of one request or transfer (see [RetryPolicy.start][]).

    The budget in time counts from [RetryPolicy.start][] (or the last progress),
    attempts included, so a loop whose attempts are slow stops once the deadline has passed;
    a resumed transfer that makes progress gets a fresh budget (`resumed`).
    """

    __slots__ = ("_clock", "_rng", "_started", "attempt", "policy", "waited")

    def __init__(
        self, policy: RetryPolicy, clock: Callable[[], float], rng: random.Random | None
    ) -> None:
        self.policy = policy
        self.attempt = 1
        self.waited = 0.0
        self._clock = clock
        self._rng = rng
        self._started = clock()

    def next_delay(
        self, retry_after: float | None = None, *, progress: bool = False
    ) -> float | None:
        """The attempt under way failed: how long to wait before the next, or None to give up.

        Args:
            retry_after: the server's ``Retry-After`` in seconds, if it sent one.
            progress: the attempt moved the transfer on before it failed (and the next one
                starts over): the time budget counts from now; the attempt still counts.
        """
        if progress:
            self._started = self._clock()
        policy = self.policy
        delay = policy.delay(self.attempt, retry_after, self._rng)
        elapsed = self._clock() - self._started
        if self.attempt >= policy.attempts or elapsed + delay > policy.deadline:
            return None
        self.attempt += 1
        self.waited += delay
        return delay

    def after(self, exc: BaseException, *, progress: bool = False) -> float | None:
        """The attempt under way failed with ``exc``: how long to wait before the next, or
        None to give up (not transient, a digest or size mismatch, a stall, or the budget is
        spent). ``progress``: as for `next_delay`."""
        if isinstance(exc, VerificationError) or not is_transient(exc):
            return None
        return self.next_delay(getattr(exc, "retry_after", None), progress=progress)

    def resumed(self, gained: int, minimum: int) -> float | None:
        """A resumable transfer broke off after moving ``gained`` bytes in the attempt under
        way: at least ``minimum`` is progress (a fresh budget, then the first backoff), less
        counts as a failed attempt. Returns the wait before resuming, or None to give up."""
        if gained >= max(minimum, 1):
            self.reset()
        return self.next_delay()

    def paused(self, seconds: float) -> None:
        """``seconds`` went on waiting for the registry's limits, not on this request: they
        do not count against the deadline."""
        self._started += seconds

    def reset(self) -> None:
        """Progress was made (a resumed transfer moved bytes): start a fresh budget."""
        self.attempt = 1
        self.waited = 0.0
        self._started = self._clock()
