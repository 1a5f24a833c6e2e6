"""Run a function over items on a bounded thread pool, stopping at the first failure.

Blob transfers are I/O bound, so threads are enough. When one item fails, items not yet started
are cancelled, running ones are asked to stop through a shared event, and the first error is
raised once they have returned.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextvars import copy_context
from typing import TypeVar

__all__ = ["LinkedEvent", "run_parallel"]

T = TypeVar("T")
R = TypeVar("R")


def run_parallel(
    function: Callable[[T], R],
    items: Iterable[T],
    jobs: int,
    *,
    cancel: threading.Event | None = None,
) -> list[R]:
    """Apply ``function`` to every item with at most ``jobs`` at once; results in order.

    When a call fails, or the caller is interrupted (Ctrl-C), items not started are dropped
    and ``cancel`` is set, so running transfers that watch it stop at their next chunk.

    Raises:
        BaseException: the first exception any call raised.
    """
    work = list(items)
    if not work:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(work)))) as pool:
        futures: list[Future[R]] = [
            pool.submit(copy_context().run, function, item) for item in work
        ]  # each in the caller's context: its request tally follows
        try:
            _, pending = wait(futures, return_when=FIRST_EXCEPTION)
        except BaseException:
            pending = {f for f in futures if not f.done()}
            _stop(pending, cancel)
            raise
        if pending:
            _stop(pending, cancel)
        for future in futures:
            if future.done() and not future.cancelled() and future.exception() is not None:
                raise future.exception()  # type: ignore[misc]
    return [future.result() for future in futures]


class LinkedEvent(threading.Event):
    """An event that also counts as set once its ``parent`` is: one image of many stops on
    its own failure (this event) or when the whole run is cancelled (the parent)."""

    def __init__(self, parent: threading.Event | None) -> None:
        super().__init__()
        self.parent = parent

    def is_set(self) -> bool:
        return super().is_set() or (self.parent is not None and self.parent.is_set())

    def wait(self, timeout: float | None = None) -> bool:
        if self.parent is None:
            return super().wait(timeout)
        step = 0.2 if timeout is None else min(0.2, timeout)
        remaining = timeout
        while not self.is_set():
            if remaining is not None and remaining <= 0:
                return False
            super().wait(step if remaining is None else min(step, remaining))
            remaining = None if remaining is None else remaining - step
        return True


def _stop(pending: Iterable[Future[R]], cancel: threading.Event | None) -> None:
    for future in pending:
        future.cancel()
    if cancel is not None:
        cancel.set()
