"""The fault soak (``nox -s soak``, not in the default run): everything a mirror meets, under
at least 200 injected faults, every result read back with skopeo.

A plain-HTTP source holding a layered image (one layer above the single-request upload limit,
so uploads go in chunks and are resumed) and the shared world (tests/support/sharedworld.py:
repositories on common bases, aliased tags, multi-platform indexes, cosign signatures), and a
destination with TLS and token auth whose token server sits behind a proxy of its own; every
connection goes through a fault proxy (the destination's ends TLS itself, so faults land
inside TLS). Each round runs (tests/support/soakrun.py): copy, save and push of the layered
image; copies of an index and of a signed image with referrers; a sync of the shared world
(``all-tags``, ``semver``, ``tags-regex``, ``tags`` entries, signatures carried); the same
copies, a save and a sync under byte flips of content-addressed bodies; and a sync ended by
SIGTERM after a random delay, then run again. Rounds go on until :data:`MIN_FAULTS` faults
fired (at least :data:`MIN_ROUNDS` rounds, at most :data:`BUDGET` seconds).

The soak fails when any run breaks the fault suite's guarantees (tests/support/faultrun.py),
when a run reports success but skopeo finds a tag it wrote missing, incomplete or with another
digest, when a flip ends a run other than by a digest mismatch, when SIGTERM takes longer than
``TERM_LIMIT`` to end a run, when no fault met a chunked upload, or when fewer than
:data:`FLOOR` of the runs that should ride out their faults succeed. Replay a run with
``IMGMIRROR_SOAK_SEED=<seed> nox -s soak``.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from tests.support.certs import TestPKI
from tests.support.faultproxy import FaultPlan
from tests.support.faultrun import layered_image, tags_are_complete, token_registry_behind
from tests.support.registry import RegistryFactory
from tests.support.sharedworld import seed_shared_world
from tests.support.soakrun import RIDDEN_OUT, SoakWorld

MIN_FAULTS = 200
MIN_ROUNDS = 3
BUDGET = 300.0
RATE = float(os.environ.get("IMGMIRROR_SOAK_RATE", "0.35"))
SYNC_RATE = float(os.environ.get("IMGMIRROR_SOAK_SYNC_RATE", "0.1"))
FLIP_RATE = 0.3
# The /v2/ probe is retried on 429/503 like every request, so a run that should ride out its
# faults does: 21 of 21 in the soak runs that set this floor.
FLOOR = float(os.environ.get("IMGMIRROR_SOAK_FLOOR", "0.95"))
BIG = 3 * 1024 * 1024 // 2  # above ClientOptions.monolithic_bytes (1 MiB)


@pytest.mark.soak
@pytest.mark.timeout(BUDGET + 600)
def test_soak(registry_factory: RegistryFactory, test_pki: TestPKI, tmp_path: Path) -> None:
    seed = int(os.environ.get("IMGMIRROR_SOAK_SEED") or random.SystemRandom().randrange(10**9))
    print(f"\nsoak seed {seed} (replay: IMGMIRROR_SOAK_SEED={seed} nox -s soak)")
    plan = FaultPlan(
        seed=seed, rate=RATE, kinds=RIDDEN_OUT, stall=0.5, drip=0.3, retry_after=1,
        lifetime=BUDGET + 600,
    )  # fmt: skip
    source = registry_factory(name="src", log_level="warn")
    dest, token_proxy = token_registry_behind(registry_factory, plan)
    world = SoakWorld(
        source=source, dest=dest, plan=plan, workdir=tmp_path,
        image=layered_image(seed, layers=6, big=BIG), pki=test_pki, token_proxy=token_proxy,
        shared=seed_shared_world(source, seed=seed, signed=True, big=BIG), sync_rate=SYNC_RATE,
    )  # fmt: skip
    rng = random.Random(seed)  # noqa: S311 - replayable delays
    started = time.monotonic()
    with world:
        try:
            n = 0
            while n < MIN_ROUNDS or (
                world.faults < MIN_FAULTS and time.monotonic() - started < BUDGET
            ):
                world.copy(n)
                world.save(n)
                world.push(n)
                world.copy_shared(n)
                world.sync(n)
                world.flipped(n, FLIP_RATE)
                world.terminated_then_rerun(n, rng)
                n += 1
            tags_are_complete(world.dest)
        finally:
            print(world.soak_table())
            print(f"  {time.monotonic() - started:.0f} s in all")
    ok, expected = world.success_rate()
    assert ok >= FLOOR * expected, f"only {ok} of {expected} runs rode out their faults"
    assert world.faults >= MIN_FAULTS, f"only {world.faults} faults within {BUDGET:.0f} s"
    assert world.fault_counts()["flip"] > 0, "no byte was flipped"
    assert world.chunk_faults(), "no fault met a chunked upload"
    assert any(o.stopped_in is not None for o in world.outcomes), "SIGTERM never met a run"
