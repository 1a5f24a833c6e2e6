"""run_parallel stops the others at the first failure; counted() honours the cancel event."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from imgmirror.errors import TransferCancelled
from imgmirror.model.digest import Digest
from imgmirror.progress import NullProgress, counted
from imgmirror.registry.parallel import run_parallel


def test_results_keep_the_order_of_items():
    assert run_parallel(lambda n: n * n, range(10), jobs=3) == [n * n for n in range(10)]


def test_first_failure_cancels_running_transfers():
    cancel = threading.Event()
    stopped: list[str] = []
    digest = Digest.of(b"x")

    def work(item: int) -> int:
        if item == 0:
            time.sleep(0.05)
            raise ValueError("blob 0 failed")
        endless = itertools.repeat(b"chunk")
        try:
            for _ in counted(endless, digest, NullProgress(), cancel):
                time.sleep(0.001)
        except TransferCancelled:
            stopped.append(f"item {item}")
            raise
        return item

    with pytest.raises(ValueError, match="blob 0 failed"):
        run_parallel(work, range(4), jobs=4, cancel=cancel)

    assert cancel.is_set()
    assert sorted(stopped) == ["item 1", "item 2", "item 3"]
