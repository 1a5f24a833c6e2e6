"""Counting the requests one piece of work sends, across the threads it uses.

A sync reports, per image, how many requests it cost. The requests go through clients shared
by every image, so the count travels with the work instead: [metering][] puts a
[RequestTally][] in a context variable, [count][] (called by the connection for each
request sent) adds to the tally of the current context, and code that hands work to another
thread submits it with ``contextvars.copy_context().run`` so the tally follows. Outside
[metering][], [count][] does nothing. No I/O.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator

__all__ = ["RequestTally", "count", "metering"]


class RequestTally:
    """Requests sent and rate-limited answers received for one piece of work."""

    __slots__ = ("_lock", "rate_limited", "requests")

    def __init__(self) -> None:
        self.requests = 0
        self.rate_limited = 0
        self._lock = threading.Lock()

    def add(self, *, limited: bool) -> None:
        with self._lock:
            self.requests += 1
            self.rate_limited += limited


_current: contextvars.ContextVar[RequestTally | None] = contextvars.ContextVar(
    "imgmirror_request_tally", default=None
)


@contextlib.contextmanager
def metering(tally: RequestTally) -> Iterator[RequestTally]:
    """Count into ``tally`` every request sent in this context (and contexts copied from it)."""
    token = _current.set(tally)
    try:
        yield tally
    finally:
        _current.reset(token)


def count(*, limited: bool = False) -> None:
    """One request was answered (``limited``: with a rate limit)."""
    tally = _current.get()
    if tally is not None:
        tally.add(limited=limited)
