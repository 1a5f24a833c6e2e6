"""The fault soak's world: everything a mirror meets, behind fault proxies, each run checked.

:class:`SoakWorld` extends :class:`~tests.support.faultrun.FaultWorld` (copy, save and push of
a layered image with one layer above the single-request limit) with the shared world of
:mod:`tests.support.sharedworld` at the source: ``sync`` of a sync file with several entries
(``all-tags``, ``semver``, ``tags-regex``, ``tags``) and signatures carried, copies of a
multi-platform index and of a signed image sharing blobs with the others. The destination
has TLS and token auth, its token server behind a fault proxy of its own
(:func:`~tests.support.faultrun.token_registry_behind`).

Runs come in four kinds (:attr:`Outcome.label`): under the plan's faults, which imgmirror must
ride out (success expected, counted in :meth:`SoakWorld.success_rate`); under byte flips of
content-addressed bodies only (``flip``: each run succeeds or fails naming the digest
mismatch, and nothing wrong lands); ended by SIGTERM after a random delay (``SIGTERM``: exit
143 within the limit, nothing half-written); and the same sync run again after it
(``rerun``: success expected). After every run, every tag in the repositories it wrote is
read back with skopeo and must hold the source digest with all its blobs; after a success
every tag it should have written must be there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
from collections.abc import Iterator
from dataclasses import dataclass

from .faultproxy import FAULT_KINDS
from .faultrun import FaultWorld, Outcome
from .seed import RegistryClient
from .sharedworld import SharedWorld
from .tools import skopeo_copy, skopeo_digest

__all__ = ["RIDDEN_OUT", "SoakWorld"]

#: Fault kinds a run must ride out (flips are a run kind of their own).
RIDDEN_OUT = tuple(kind for kind in FAULT_KINDS if kind != "flip")
MISMATCH = "expected sha256:"


@dataclass
class SoakWorld(FaultWorld):
    """See the module docstring; ``shared`` is seeded at the source by the caller."""

    shared: SharedWorld | None = None
    sync_rate: float = 0.1
    """The fault rate of a sync run (hundreds of requests each)."""

    # -- plans -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def plan_of(self, **changes: object) -> Iterator[None]:
        """Every proxy under the plan with ``changes`` for the runs inside."""
        saved = [(proxy, proxy.plan) for proxy in self.proxies()]
        for proxy, plan in saved:
            proxy.plan = dataclasses.replace(plan, **changes)  # type: ignore[arg-type]
        try:
            yield
        finally:
            for proxy, plan in saved:
                proxy.plan = plan

    # -- runs ------------------------------------------------------------------------------

    def sync(self, n: int, *, label: str = "", terminate_after: float | None = None) -> Outcome:
        """Sync the shared world into ``sync-<n>/``, then read back what landed."""
        assert self.shared is not None
        assert self.src_proxy is not None
        assert self.dst_proxy is not None
        path = self.workdir / f"sync-{n}.yaml"
        expected = self.shared.sync_file(
            path, f"{self.dst_proxy.host}/sync-{n}", referrers=True,
            source_host=self.src_proxy.host,
        )  # fmt: skip
        with self.plan_of(rate=self.sync_rate) if label != "flip" else contextlib.nullcontext():
            outcome = self._run(
                ["sync", str(path), "--json", "--jobs", "8", *self.dest_args()],
                f"sync {n} {label}".rstrip(),
                label=label,
                expect_ok=label in ("", "rerun"),
                terminate_after=terminate_after,
            )
        self.landed_right(expected, complete=outcome.ok)
        _flip_caught(outcome)
        return outcome

    def copy_shared(self, n: int, *, label: str = "") -> list[Outcome]:
        """A multi-platform index, and a signed image with a big layer and its signature."""
        assert self.shared is not None
        assert self.src_proxy is not None
        assert self.dst_proxy is not None
        world, outcomes = self.shared, []
        for name, tag in (("multi", "latest"), ("app0", "2.0.0")):
            source = f"{self.src_proxy.host}/{world.source_repo(name)}:{tag}"
            repo = f"shared-{n}{label}/{name}"
            outcome = self._run(
                ["copy", "--referrers", source, f"{self.dst_proxy.host}/{repo}:{tag}",
                 *self.dest_args()],
                f"copy {name}:{tag} {n} {label}".rstrip(),
                label=label,
                expect_ok=label == "",
            )  # fmt: skip
            digest = world.tags[name][tag]
            wanted = {f"{repo}:{tag}": digest}
            if digest in world.signatures:
                sig = world.signatures[digest]
                wanted[f"{repo}:{sig}"] = world.tags[name][sig]
            self.landed_right(wanted, complete=outcome.ok)
            if outcome.ok and name == "multi":
                target = self.workdir / f"index-{n}{label}"
                skopeo_copy(self.dest.ref(repo, tag), f"dir:{target}", src_registry=self.dest)
            _flip_caught(outcome)
            outcomes.append(outcome)
        return outcomes

    def flipped(self, n: int, rate: float) -> list[Outcome]:
        """Copies, a save and a sync under byte flips of content-addressed bodies only."""
        with self.plan_of(kinds=("flip",), rate=rate):
            outcomes = self.copy_shared(n, label="flip")
            outcomes.append(self.save(n + 10_000, label="flip"))
            outcomes.append(self.sync(n + 10_000, label="flip"))
        return outcomes

    def terminated_then_rerun(self, n: int, rng: random.Random) -> tuple[Outcome, Outcome]:
        """A sync ended by SIGTERM after a random delay, then the same sync again."""
        first = self.sync(n + 20_000, label="SIGTERM", terminate_after=rng.uniform(0.5, 3.0))
        return first, self.sync(n + 20_000, label="rerun")

    # -- checks ----------------------------------------------------------------------------

    def landed_right(self, expected: dict[str, str], *, complete: bool) -> None:
        """Every tag present in the repositories of ``expected`` is one of them, holds its
        digest (skopeo) with every child and blob; with ``complete``, all are there."""
        by_repo: dict[str, set[str]] = {}
        for ref in expected:
            repo, tag = ref.rsplit(":", 1)
            by_repo.setdefault(repo, set()).add(tag)
        with RegistryClient(self.dest) as client:
            for repo, wanted in sorted(by_repo.items()):
                response = client.request("GET", f"/v2/{repo}/tags/list", scope_repo=repo)
                present = set(response.json().get("tags") or []) if response.is_success else set()
                assert present <= wanted, f"{repo}: unexpected tags {present - wanted}"
                if complete:
                    assert present == wanted, f"{repo}: missing tags {wanted - present}"
                for tag in sorted(present):
                    ref, digest = f"{repo}:{tag}", expected[f"{repo}:{tag}"]
                    assert client.assert_complete(repo, tag) == digest, f"{ref}: wrong digest"
                    assert skopeo_digest(self.dest.ref(repo, tag), self.dest) == digest, ref

    def success_rate(self) -> tuple[int, int]:
        """(runs that succeeded, runs where success was expected)."""
        expected = [o for o in self.outcomes if o.expect_ok]
        return sum(o.ok for o in expected), len(expected)

    def soak_table(self) -> str:
        """The fault table, then outcomes by command and run kind."""
        lines = [self.table()]
        kinds = sorted({(o.command, o.label) for o in self.outcomes})
        for command, label in kinds:
            runs = [o for o in self.outcomes if (o.command, o.label) == (command, label)]
            ok = sum(o.ok for o in runs)
            stops = [o.stopped_in for o in runs if o.stopped_in is not None]
            stopped = f", SIGTERM to exit at most {max(stops):.1f} s" if stops else ""
            lines.append(
                f"  {command} {label or 'faults'}: {len(runs)} runs, {ok} ok, "
                f"{sum(o.faults for o in runs)} faults met, "
                f"longest {max(o.seconds for o in runs):.1f} s{stopped}"
            )
        ok, expected = self.success_rate()
        lines.append(f"  faults in chunked uploads (PATCH): {len(self.chunk_faults())}")
        lines.append(f"  success where expected: {ok} of {expected}")
        return "\n".join(lines)

    def chunk_faults(self) -> list[str]:
        """Faults that hit the PATCH of a chunked upload (a layer above 1 MiB)."""
        return [f.kind for p in self.proxies() for f in p.injected if f.key.startswith("PATCH ")]


def _flip_caught(outcome: Outcome) -> None:
    """A run under flips that failed says why: the digest did not match."""
    if outcome.label == "flip" and not outcome.ok:
        assert MISMATCH in outcome.stderr, f"a flip ended the run otherwise:\n{outcome.stderr}"
