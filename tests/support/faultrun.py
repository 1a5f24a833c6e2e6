"""Run the CLI through fault proxies and check what every run left behind.

Shared by the short fault suite (``nox -s tests``) and the soak (``nox -s soak``):
:class:`FaultWorld` holds a source and a destination registry, each behind a
:class:`~tests.support.faultproxy.FaultProxy`, a multi-layer image at the source and an
``imgmirror save`` archive of it made without faults. :meth:`FaultWorld.copy`, ``save`` and
``push`` run the CLI as a subprocess (peak RSS from GNU ``time``) and assert the guarantees: exit 0,
or exit 1 with exactly one line on stderr and no traceback; whatever landed verifies with skopeo;
no save leaves a temp file; the imgmirror process stays under :data:`RSS_LIMIT`.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .faultproxy import FaultPlan, FaultProxy
from .images import Image, make_image, make_layer
from .registry import Registry
from .seed import RegistryClient, seed
from .tools import require_tool, skopeo, skopeo_copy, skopeo_digest

__all__ = ["RSS_LIMIT", "FaultWorld", "Outcome", "layered_image", "tags_are_complete"]

RSS_LIMIT = 100 * 1024 * 1024
RUN_TIMEOUT = 120.0


@dataclass(frozen=True)
class Outcome:
    """One CLI run: which command, how it ended, its peak RSS and the faults it met."""

    command: str
    returncode: int
    stderr: str
    peak_rss: int
    seconds: float
    faults: int

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run_measured(args: list[str], workdir: Path, timeout: float = RUN_TIMEOUT) -> Outcome:
    """``python -m imgmirror ARGS`` under GNU time, for the peak RSS of that process alone.

    (``wait4`` on a child forked from a large pytest process would count the parent's pages.)
    """
    out, err, rss = workdir / "stdout", workdir / "stderr", workdir / "rss"
    measure = [require_tool("time"), "-f", "%M", "-o", str(rss)]
    started = time.monotonic()
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [*measure, sys.executable, "-m", "imgmirror", *args],
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    lines = rss.read_text().split() if rss.exists() else []
    return Outcome(
        command=args[0],
        returncode=proc.returncode,
        stderr=err.read_text(errors="replace"),
        peak_rss=int(lines[-1]) * 1024 if lines and lines[-1].isdigit() else RSS_LIMIT,
        seconds=time.monotonic() - started,
        faults=0,
    )


PROGRESS_LINE = re.compile(r"imgmirror: (copying|saving|pushing): ")


def check_outcome(outcome: Outcome, what: str) -> None:
    """Success, or a clean failure: exit 1, one line on stderr, no traceback; RSS bounded.

    The periodic progress lines of a piped run (``imgmirror: copying: ...``, every few
    seconds) come before the error and are not part of it.
    """
    lines = [
        line
        for line in outcome.stderr.splitlines()
        if line.strip() and not PROGRESS_LINE.match(line)
    ]
    assert outcome.returncode in (0, 1), f"{what}: exit {outcome.returncode}\n{outcome.stderr}"
    assert "Traceback" not in outcome.stderr, f"{what}: traceback\n{outcome.stderr}"
    if not outcome.ok:
        assert len(lines) == 1, f"{what}: {len(lines)} lines on stderr\n{outcome.stderr}"
    assert outcome.peak_rss < RSS_LIMIT, f"{what}: peak RSS {outcome.peak_rss >> 20} MiB"


def layered_image(seed_value: int, layers: int = 5, size: int = 384 * 1024) -> Image:
    """An image whose layers hold incompressible bytes (so bodies stay large on the wire)."""
    rng = random.Random(seed_value)  # noqa: S311 - test data
    parts = [
        make_layer({f"data/layer-{i}.bin": rng.randbytes(size // (i + 1))}) for i in range(layers)
    ]
    return make_image(parts, marker=f"faults-{seed_value}")


def tags_are_complete(registry: Registry) -> list[str]:
    """Every tag of every repository with its manifest and all blobs; returns the tags seen."""
    seen: list[str] = []
    with RegistryClient(registry, anonymous=True) as client:
        repos = client.request("GET", "/v2/_catalog?n=1000").json().get("repositories") or []
        for repo in repos:
            response = client.request("GET", f"/v2/{repo}/tags/list")
            if response.status_code == 404:  # blobs were uploaded, nothing was tagged
                continue
            for tag in response.json().get("tags") or []:
                client.assert_complete(repo, tag)
                seen.append(f"{repo}:{tag}")
    return seen


@dataclass
class FaultWorld:
    """Two registries behind fault proxies, a source image and a clean archive of it."""

    source: Registry
    dest: Registry
    plan: FaultPlan
    workdir: Path
    image: Image
    extra_args: tuple[str, ...] = ()
    outcomes: list[Outcome] = field(default_factory=list)
    src_proxy: FaultProxy | None = None
    dst_proxy: FaultProxy | None = None
    archive: Path | None = None

    def __enter__(self) -> FaultWorld:
        seed(self.source, "faults/src", "v1", self.image)
        self.archive = self.workdir / "clean.tar"
        clean = run_measured(
            ["save", "-q", f"{self.source.ref('faults/src', 'v1')}", "-o", str(self.archive)],
            self.workdir,
        )
        assert clean.ok, f"clean save failed: {clean.stderr}"
        self.src_proxy = FaultProxy(("127.0.0.1", self.source.port), self.plan).start()
        self.dst_proxy = FaultProxy(("127.0.0.1", self.dest.port), self.plan).start()
        return self

    def __exit__(self, *exc: object) -> None:
        for proxy in (self.src_proxy, self.dst_proxy):
            if proxy is not None:
                proxy.stop()

    @property
    def faults(self) -> int:
        assert self.src_proxy is not None
        assert self.dst_proxy is not None
        return len(self.src_proxy.injected) + len(self.dst_proxy.injected)

    def fault_counts(self) -> Counter[str]:
        assert self.src_proxy is not None
        assert self.dst_proxy is not None
        return self.src_proxy.counts() + self.dst_proxy.counts()

    def _run(self, args: list[str], what: str) -> Outcome:
        before = self.faults
        outcome = run_measured([*args, "-q", *self.extra_args], self.workdir)
        outcome = Outcome(**{**outcome.__dict__, "faults": self.faults - before})
        self.outcomes.append(outcome)
        print(
            f"  {what}: exit {outcome.returncode} in {outcome.seconds:.1f} s, "
            f"{outcome.faults} faults, {outcome.stderr.strip()[:300]}"
        )
        check_outcome(outcome, what)
        return outcome

    def _src(self) -> str:
        assert self.src_proxy is not None
        return f"{self.src_proxy.host}/faults/src:v1"

    def _dst(self, repo: str) -> str:
        assert self.dst_proxy is not None
        return f"{self.dst_proxy.host}/{repo}:v1"

    def copy(self, n: int) -> Outcome:
        outcome = self._run(["copy", self._src(), self._dst(f"faults/copy-{n}")], f"copy {n}")
        if outcome.ok:
            self.verify_landed(f"faults/copy-{n}")
        return outcome

    def push(self, n: int) -> Outcome:
        outcome = self._run(["push", str(self.archive), self._dst(f"faults/push-{n}")], f"push {n}")
        if outcome.ok:
            self.verify_landed(f"faults/push-{n}")
        return outcome

    def save(self, n: int) -> Outcome:
        directory = self.workdir / f"save-{n}"
        directory.mkdir()
        output = directory / "image.tar"
        outcome = self._run(["save", self._src(), "-o", str(output)], f"save {n}")
        left = sorted(p.name for p in directory.iterdir())
        assert left == (["image.tar"] if outcome.ok else []), f"save {n} left {left}"
        if outcome.ok:
            skopeo("copy", f"docker-archive:{output}", f"dir:{directory / 'check'}")
            config = json.loads((directory / "check" / "manifest.json").read_bytes())["config"]
            assert config["digest"] == self.image.config.digest
        return outcome

    def verify_landed(self, repo: str) -> None:
        """The tag has the source's digest, and skopeo can copy it whole."""
        ref = self.dest.ref(repo, "v1")
        assert skopeo_digest(ref, self.dest) == self.image.digest, f"{ref}: digest differs"
        target = self.workdir / f"verify-{repo.replace('/', '-')}"
        skopeo_copy(ref, f"dir:{target}", src_registry=self.dest, all_images=False)

    def table(self) -> str:
        """Faults injected by kind, and outcomes by command (for the soak's report)."""
        lines = [f"seed {self.plan.seed}, rate {self.plan.rate}: {self.faults} faults injected"]
        for kind, count in sorted(self.fault_counts().items()):
            lines.append(f"  {kind:<16} {count:>5}")
        for command in ("copy", "save", "push"):
            runs = [o for o in self.outcomes if o.command == command]
            if not runs:
                continue
            ok = sum(o.ok for o in runs)
            rss = max(o.peak_rss for o in runs) >> 20
            faults = sum(o.faults for o in runs)
            lines.append(
                f"  {command}: {len(runs)} runs, {ok} ok, {len(runs) - ok} clean failures, "
                f"{faults} faults met, peak RSS {rss} MiB, "
                f"longest {max(o.seconds for o in runs):.1f} s"
            )
        return "\n".join(lines)
