"""The short fault suite: copy, save and push through fault-injecting proxies.

A fixed seed and a moderate fault rate over a multi-layer image (the long version is
``nox -s soak``, tests/integration/test_soak.py). Every run must succeed or fail with one line
on stderr and exit 1; whatever landed must verify with skopeo; no tag may point at a missing
blob; no save may leave a temp file; the CLI process stays under 100 MB.

:data:`SURVIVED` lists the fault kinds every run must ride out (succeed despite them); the
other kinds may still end a run, cleanly. docs/reliability.md says which and why.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.faultproxy import FAULT_KINDS, FaultPlan
from tests.support.faultrun import FaultWorld, layered_image, tags_are_complete
from tests.support.registry import RegistryFactory

SEED = 20261130
SURVIVED = ("stall", "drip")


def _world(
    registry_factory: RegistryFactory, tmp_path: Path, kinds: tuple[str, ...], rate: float
) -> FaultWorld:
    plan = FaultPlan(
        seed=SEED, rate=rate, kinds=kinds, stall=0.5, drip=0.3, retry_after=1, lifetime=120
    )
    return FaultWorld(
        source=registry_factory(name="src", log_level="warn"),
        dest=registry_factory(name="dst", log_level="warn"),
        plan=plan,
        workdir=tmp_path,
        image=layered_image(SEED),
    )


@pytest.fixture
def every_fault(registry_factory: RegistryFactory, tmp_path: Path) -> Iterator[FaultWorld]:
    with _world(registry_factory, tmp_path, FAULT_KINDS, 0.15) as world:
        yield world


@pytest.fixture
def survived_faults(registry_factory: RegistryFactory, tmp_path: Path) -> Iterator[FaultWorld]:
    with _world(registry_factory, tmp_path, SURVIVED, 0.3) as world:
        yield world


def test_every_fault_kind_ends_a_run_cleanly(every_fault: FaultWorld) -> None:
    for n in range(2):
        every_fault.copy(n)
        every_fault.save(n)
        every_fault.push(n)
    print(every_fault.table())
    assert every_fault.faults >= 8, every_fault.table()
    tags_are_complete(every_fault.dest)


def test_runs_ride_out_the_survived_faults(survived_faults: FaultWorld) -> None:
    survived_faults.copy(0)
    survived_faults.save(0)
    survived_faults.push(0)
    print(survived_faults.table())
    assert survived_faults.faults >= 4, survived_faults.table()
    failed = [o.stderr for o in survived_faults.outcomes if not o.ok]
    assert not failed, f"{failed}\n{survived_faults.table()}"
    assert len(tags_are_complete(survived_faults.dest)) == 2
