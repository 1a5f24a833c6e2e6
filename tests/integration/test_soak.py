"""The fault soak (``nox -s soak``, not in the default run): at least 200 injected faults.

Rounds of copy, save and push of a multi-layer image through fault proxies with every fault
kind, until :data:`MIN_FAULTS` faults fired or :data:`BUDGET` seconds passed. Each run is held to
the fault suite's guarantees (tests/integration/test_faults.py); the seed and a table of faults
against outcomes are printed. Replay a run with ``IMGMIRROR_SOAK_SEED=<seed> nox -s soak``.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from tests.support.faultproxy import FaultPlan
from tests.support.faultrun import FaultWorld, layered_image, tags_are_complete
from tests.support.registry import RegistryFactory

MIN_FAULTS = 200
BUDGET = 240.0
RATE = float(os.environ.get("IMGMIRROR_SOAK_RATE", "0.35"))


@pytest.mark.soak
@pytest.mark.timeout(BUDGET + 300)
def test_soak(registry_factory: RegistryFactory, tmp_path: Path) -> None:
    seed = int(os.environ.get("IMGMIRROR_SOAK_SEED") or random.SystemRandom().randrange(10**9))
    print(f"\nsoak seed {seed} (replay: IMGMIRROR_SOAK_SEED={seed} nox -s soak)")
    plan = FaultPlan(
        seed=seed, rate=RATE, stall=0.5, drip=0.3, retry_after=1, lifetime=BUDGET + 120
    )
    world = FaultWorld(
        source=registry_factory(name="src", log_level="warn"),
        dest=registry_factory(name="dst", log_level="warn"),
        plan=plan,
        workdir=tmp_path,
        image=layered_image(seed, layers=6),
    )
    started = time.monotonic()
    with world:
        try:
            n = 0
            while world.faults < MIN_FAULTS and time.monotonic() - started < BUDGET:
                world.copy(n)
                world.save(n)
                world.push(n)
                n += 1
            tags_are_complete(world.dest)
        finally:
            print(world.table())
            print(f"  {time.monotonic() - started:.0f} s in all")
    assert world.faults >= MIN_FAULTS, f"only {world.faults} faults within {BUDGET:.0f} s"
