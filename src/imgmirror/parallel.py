"""Run a function over items on a bounded thread pool, stopping at the first failure.

Blob transfers are I/O bound, so threads are enough. When one item fails, items not yet started
are cancelled and the first error is raised once the running ones have finished.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TypeVar

__all__ = ["run_parallel"]

T = TypeVar("T")
R = TypeVar("R")


def run_parallel(function: Callable[[T], R], items: Iterable[T], jobs: int) -> list[R]:
    """Apply ``function`` to every item with at most ``jobs`` at once; results in order.

    Raises:
        BaseException: the first exception any call raised.
    """
    work = list(items)
    if not work:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(work)))) as pool:
        futures: list[Future[R]] = [pool.submit(function, item) for item in work]
        _, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in pending:
            future.cancel()
        for future in futures:
            if future.done() and not future.cancelled() and future.exception() is not None:
                raise future.exception()  # type: ignore[misc]
    return [future.result() for future in futures]
