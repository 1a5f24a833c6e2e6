"""When and how long to wait before trying a registry request again.

Pure policy: :class:`RetryPolicy` decides whether a failed attempt may be repeated and
computes the delay (exponential backoff with full jitter, or the server's ``Retry-After``),
bounded both in attempts and in total time. The client's send loop asks it; nothing here
sleeps or does I/O.
"""

from __future__ import annotations

import email.utils
import random
import time

import attrs

__all__ = ["RETRY_STATUSES", "RetryPolicy", "parse_retry_after"]

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
        attempts: total tries per request, the first one included.
        backoff: base delay in seconds; attempt ``n`` waits up to ``backoff * 2**n``.
        max_delay: cap on a single wait, ``Retry-After`` included.
        deadline: cap on the total time spent waiting for one request.
    """

    attempts: int = 5
    backoff: float = 0.25
    max_delay: float = 30.0
    deadline: float = 120.0

    def should_retry_status(self, status: int) -> bool:
        """Whether a response status is transient."""
        return status in RETRY_STATUSES

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
