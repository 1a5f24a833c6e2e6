"""Run the CLI through fault proxies and check what every run left behind.

Shared by the short fault suite (``nox -s tests``) and the soak (``nox -s soak``):
:class:`FaultWorld` holds a source and a destination registry, each behind a
:class:`~tests.support.faultproxy.FaultProxy`, a multi-layer image at the source and an
``imgmirror save`` archive of it made without faults. :meth:`FaultWorld.copy`, ``save`` and
``push`` run the CLI as a subprocess (peak RSS from GNU ``time``) and assert the guarantees: exit 0,
or exit 1 with exactly one line on stderr and no traceback; whatever landed verifies with skopeo;
no save leaves a temp file; the imgmirror process stays under :data:`RSS_LIMIT`. A run may be
ended with SIGTERM after a delay: it must then exit 143 within :data:`TERM_LIMIT` seconds with
one line, ``imgmirror: terminated``.

A destination with TLS is reached through a proxy that ends TLS itself (the test CA's server
certificate), so faults land inside TLS too; one with token auth may have its token server
behind a proxy of its own (:func:`token_registry_behind`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import signal
import ssl
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .certs import TestPKI
from .faultproxy import FaultPlan, FaultProxy
from .images import Image, make_image, make_layer
from .registry import Registry, RegistryFactory
from .seed import RegistryClient, seed
from .tools import require_tool, skopeo, skopeo_copy, skopeo_digest

__all__ = [
    "RSS_LIMIT",
    "TERM_LIMIT",
    "FaultWorld",
    "Outcome",
    "layered_image",
    "tags_are_complete",
    "token_registry_behind",
]

RSS_LIMIT = 100 * 1024 * 1024
RUN_TIMEOUT = 120.0
#: Seconds from SIGTERM to the end of the process.
TERM_LIMIT = 10.0


@dataclass(frozen=True)
class Outcome:
    """One CLI run: which command, how it ended, its peak RSS and the faults it met."""

    command: str
    returncode: int
    stderr: str
    peak_rss: int
    seconds: float
    faults: int = 0
    stdout: str = ""
    label: str = ""
    """What kind of run: "" (faults that must be ridden out), "flip", "SIGTERM", "rerun"."""
    expect_ok: bool = True
    """Success is expected (counted in the soak's success rate)."""
    stopped_in: float | None = None
    """Seconds from SIGTERM to exit, when one was sent."""

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run_measured(
    args: list[str],
    workdir: Path,
    timeout: float = RUN_TIMEOUT,
    *,
    terminate_after: float | None = None,
) -> Outcome:
    """``python -m imgmirror ARGS`` under GNU time, for the peak RSS of that process alone;
    with ``terminate_after``, SIGTERM goes to it after that many seconds (if still running).

    (``wait4`` on a child forked from a large pytest process would count the parent's pages.)
    """
    out, err, rss = workdir / "stdout", workdir / "stderr", workdir / "rss"
    measure = [require_tool("time"), "-f", "%M", "-o", str(rss)]
    started = time.monotonic()
    stopped_in = None
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [*measure, sys.executable, "-m", "imgmirror", *args],
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
        try:
            if terminate_after is not None:
                stopped_in = _terminate_after(proc, terminate_after)
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    lines = rss.read_text().split() if rss.exists() else []
    return Outcome(
        command=args[0],
        returncode=proc.returncode,
        stderr=err.read_text(errors="replace"),
        stdout=out.read_text(errors="replace"),
        peak_rss=int(lines[-1]) * 1024 if lines and lines[-1].isdigit() else RSS_LIMIT,
        seconds=time.monotonic() - started,
        stopped_in=stopped_in,
    )


def _terminate_after(proc: subprocess.Popen[bytes], delay: float) -> float | None:
    """SIGTERM to imgmirror (GNU time's child) after ``delay`` s; seconds until it ended."""
    try:
        proc.wait(delay)
        return None  # done before the signal
    except subprocess.TimeoutExpired:
        pass
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    pids = children.read_text().split() if children.exists() else []
    if not pids:
        return None
    sent = time.monotonic()
    os.kill(int(pids[0]), signal.SIGTERM)
    try:
        proc.wait(TERM_LIMIT * 3)
    except subprocess.TimeoutExpired:
        return float("inf")  # the caller's wait kills it
    return time.monotonic() - sent


PROGRESS_LINE = re.compile(
    r"imgmirror: (copying|saving|pushing): |imgmirror: warning: \S+ is rate limiting: pausing "
)
TERMINATED = 128 + signal.SIGTERM


def check_outcome(outcome: Outcome, what: str) -> None:
    """Success, or a clean failure: exit 1 with one line on stderr (sync: one
    ``imgmirror: error:`` line per failed image), or 143 after SIGTERM with
    ``imgmirror: terminated`` within :data:`TERM_LIMIT`; no traceback; RSS bounded.

    The periodic progress lines of a piped run (``imgmirror: copying: ...``, every few
    seconds) and the notices that a registry is rate limiting (the injected 429s: the run
    slows down and says so) come before the error and are not part of it.
    """
    lines = [
        line
        for line in outcome.stderr.splitlines()
        if line.strip() and not PROGRESS_LINE.match(line)
    ]
    codes = (0, 1, TERMINATED) if outcome.stopped_in is not None else (0, 1)
    assert outcome.returncode in codes, f"{what}: exit {outcome.returncode}\n{outcome.stderr}"
    assert "Traceback" not in outcome.stderr, f"{what}: traceback\n{outcome.stderr}"
    if outcome.returncode == TERMINATED:
        assert lines == ["imgmirror: terminated"], f"{what}: stderr\n{outcome.stderr}"
        assert outcome.stopped_in is not None
        assert outcome.stopped_in <= TERM_LIMIT, f"{what}: {outcome.stopped_in:.1f} s to stop"
    elif outcome.returncode == 1 and outcome.command == "sync":
        assert lines, f"{what}: failed without a word"
        assert all(line.startswith("imgmirror: error: ") for line in lines), outcome.stderr
    elif not outcome.ok:
        assert len(lines) == 1, f"{what}: {len(lines)} lines on stderr\n{outcome.stderr}"
    assert outcome.peak_rss < RSS_LIMIT, f"{what}: peak RSS {outcome.peak_rss >> 20} MiB"


def layered_image(seed_value: int, layers: int = 5, size: int = 384 * 1024, big: int = 0) -> Image:
    """An image whose layers hold incompressible bytes (so bodies stay large on the wire);
    with ``big``, one more layer of that many bytes (above 1 MiB: uploaded in chunks)."""
    rng = random.Random(seed_value)  # noqa: S311 - test data
    parts = [
        make_layer({f"data/layer-{i}.bin": rng.randbytes(size // (i + 1))}) for i in range(layers)
    ]
    if big:
        parts.append(make_layer({"data/big.bin": rng.randbytes(big)}))
    return make_image(parts, marker=f"faults-{seed_value}")


def tags_are_complete(registry: Registry) -> list[str]:
    """Every tag of every repository with its manifest and all blobs; returns the tags seen."""
    seen: list[str] = []
    with RegistryClient(registry) as client:
        repos = client.request("GET", "/v2/_catalog?n=1000").json().get("repositories") or []
        for repo in repos:
            response = client.request("GET", f"/v2/{repo}/tags/list")
            if response.status_code == 404:  # blobs were uploaded, nothing was tagged
                continue
            for tag in response.json().get("tags") or []:
                client.assert_complete(repo, tag)
                seen.append(f"{repo}:{tag}")
    return seen


def token_registry_behind(
    factory: RegistryFactory, plan: FaultPlan, *, name: str = "dst"
) -> tuple[Registry, FaultProxy]:
    """A registry with TLS and token auth (push and pull need ``pusher:pushpass``) whose
    token realm is a fault proxy in front of its token server. Only imgmirror's token
    requests meet faults there (``plan.agent``), not the checks beside it."""
    server = factory.token_server(anonymous_pull=False)
    proxy = FaultProxy(
        ("127.0.0.1", server.port), dataclasses.replace(plan, agent="imgmirror/")
    ).start()
    realm = {"auth": {"token": {"realm": f"http://{proxy.host}/token"}}}
    registry = factory(
        auth="token", tls=True, token_server=server, extra_config=realm, name=name,
        log_level="warn",
    )  # fmt: skip
    return registry, proxy


def proxy_for(registry: Registry, plan: FaultPlan, pki: TestPKI | None) -> FaultProxy:
    """A started fault proxy in front of ``registry``; one that ends TLS for a TLS registry."""
    if not registry.tls:
        return FaultProxy(("127.0.0.1", registry.port), plan).start()
    assert pki is not None, "a TLS registry needs the test PKI for its proxy"
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(str(pki.server_cert), str(pki.server_key))
    return FaultProxy(
        ("127.0.0.1", registry.port), plan, tls=server, upstream_tls=registry.ssl_context()
    ).start()


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
    pki: TestPKI | None = None
    """For the proxy of a TLS destination."""
    token_proxy: FaultProxy | None = None
    """The proxy in front of the destination's token server (:func:`token_registry_behind`)."""

    def __enter__(self) -> FaultWorld:
        seed(self.source, "faults/src", "v1", self.image)
        self.archive = self.workdir / "clean.tar"
        clean = run_measured(
            ["save", "-q", f"{self.source.ref('faults/src', 'v1')}", "-o", str(self.archive)],
            self.workdir,
        )
        assert clean.ok, f"clean save failed: {clean.stderr}"
        self.src_proxy = proxy_for(self.source, self.plan, self.pki)
        self.dst_proxy = proxy_for(self.dest, self.plan, self.pki)
        return self

    def __exit__(self, *exc: object) -> None:
        for proxy in (self.src_proxy, self.dst_proxy, self.token_proxy):
            if proxy is not None:
                proxy.stop()

    def proxies(self) -> list[FaultProxy]:
        assert self.src_proxy is not None
        assert self.dst_proxy is not None
        extra = [self.token_proxy] if self.token_proxy is not None else []
        return [self.src_proxy, self.dst_proxy, *extra]

    @property
    def faults(self) -> int:
        return sum(len(proxy.injected) for proxy in self.proxies())

    def fault_counts(self) -> Counter[str]:
        return sum((proxy.counts() for proxy in self.proxies()), Counter())

    def dest_args(self) -> list[str]:
        """What a command writing to the destination needs: its CA, its credentials."""
        args = ["--ca-file", str(self.dest.ca_file)] if self.dest.ca_file else []
        creds = self.dest.default_creds
        return [*args, "--dest-creds", f"{creds[0]}:{creds[1]}"] if creds else args

    def _run(
        self,
        args: list[str],
        what: str,
        *,
        label: str = "",
        expect_ok: bool = True,
        terminate_after: float | None = None,
    ) -> Outcome:
        before = self.faults
        outcome = run_measured(
            [*args, "-q", *self.extra_args], self.workdir, terminate_after=terminate_after
        )
        outcome = dataclasses.replace(
            outcome, faults=self.faults - before, label=label, expect_ok=expect_ok
        )
        self.outcomes.append(outcome)
        stopped = "" if outcome.stopped_in is None else f", stopped {outcome.stopped_in:.1f} s"
        print(
            f"  {what}: exit {outcome.returncode} in {outcome.seconds:.1f} s{stopped}, "
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
        outcome = self._run(
            ["copy", self._src(), self._dst(f"faults/copy-{n}"), *self.dest_args()], f"copy {n}"
        )
        if outcome.ok:
            self.verify_landed(f"faults/copy-{n}")
        return outcome

    def push(self, n: int) -> Outcome:
        outcome = self._run(
            ["push", str(self.archive), self._dst(f"faults/push-{n}"), *self.dest_args()],
            f"push {n}",
        )
        if outcome.ok:
            self.verify_landed(f"faults/push-{n}")
        return outcome

    def save(self, n: int, *, label: str = "") -> Outcome:
        directory = self.workdir / f"save-{n}"
        directory.mkdir()
        output = directory / "image.tar"
        outcome = self._run(
            ["save", self._src(), "-o", str(output)],
            f"save {n} {label}".rstrip(),
            label=label,
            expect_ok=label == "",
        )
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
