"""The nightly job's costs in ``nox -s bench``: what reports cost a no-op, and a 429 storm.

``python -m benchmarks.syncjob`` starts registries on loopback and measures:

* **the no-op's added cost**: a sync over 1,000 tags (one repository, ``all-tags``) is run
  once, then, round after round in alternating order, the no-op re-run with and without
  ``--report FILE.json --metrics FILE.prom``: wall and CPU seconds (medians), and the
  requests each sent (from the registries' access logs: they must be equal). Beside it, the
  in-process cost of building and writing both files for those 1,000 results;
* **the 429 run**: 40 images (sharing a layer) read through the fault proxy acting as a
  throttled registry (a token bucket of 30 requests/s, bursts of 6, ``429`` with
  ``Retry-After: 1``), 8 jobs, with the run-wide limiter and with it switched off (only each
  request's own retries): seconds, rate-limited answers, requests, failed images.

The section it writes into ``docs/benchmarks.md`` replaces the previous one (between the
``sync-job-bench`` markers).
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import attrs
from tests.support.accesslog import log_offset, requests_since
from tests.support.certs import make_pki
from tests.support.faultproxy import FaultPlan, FaultProxy
from tests.support.images import make_image
from tests.support.ratelimit import RegistryLimits
from tests.support.registry import Registry, RegistryFactory
from tests.support.seed import RegistryClient as Seeder

import imgmirror.api.sync
from imgmirror.syncing.outputs import write_metrics, write_report
from imgmirror.syncing.report import SyncReport
from imgmirror.transport.limiter import RateLimitPolicy
from imgmirror.transport.options import connection_options

from .measure import imgmirror_argv
from .syncbench import ROOT, _with_cpu, publish, push_images, small_images

START, END = "<!-- sync-job-bench -->", "<!-- /sync-job-bench -->"
#: The limiter switched off: no shared pause, no concurrency cut (each request retries alone).
NO_LIMITER = RateLimitPolicy(max_concurrency=10**6, decrease=1.0, pause=0.0, max_pause=0.0)


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.syncjob", description=__doc__)
    parser.add_argument("--tags", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=40, help="images of the 429 run")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-write", action="store_true")
    return parser.parse_args(argv)


def _seed_tags(src: Registry, tags: int) -> None:
    image = make_image(marker="syncjob")
    with Seeder(src) as client:
        client.push_image("job/app", image)
        for i in range(tags):
            client.push_manifest("job/app", f"1.0.{i}", image.manifest, image.media_type)


def _noop(path: Path, dst: Registry, src: Registry, extra: list[str]) -> dict[str, float]:
    marks = (log_offset(src), log_offset(dst))
    run, cpu = _with_cpu(imgmirror_argv("sync", str(path), "--json", *extra))
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    if summary["failed"] or summary["copied"]:
        raise RuntimeError(f"not a clean no-op: {summary}")
    sent = len(requests_since(src, marks[0]) + requests_since(dst, marks[1]))
    return {"seconds": run.seconds, "cpu": cpu, "requests": sent}


def noop_cost(factory: RegistryFactory, scratch: Path, tags: int, rounds: int) -> dict[str, float]:
    """The no-op over ``tags`` tags with and without the two files."""
    src, dst = factory(name="noop-src"), factory(name="noop-dst")
    _seed_tags(src, tags)
    path = scratch / "noop.yaml"
    path.write_text(
        f"defaults: {{to: {dst.host}/m}}\n"
        f"images:\n  - repository: {src.host}/job/app\n    all-tags: true\n"
    )
    imgmirror.api.sync.sync(path, jobs=8)
    files = ["--report", str(scratch / "r.json"), "--metrics", str(scratch / "m.prom")]
    runs: dict[str, list[dict[str, float]]] = {"plain": [], "files": []}
    for n in range(rounds):
        order = [("plain", []), ("files", files)]
        for name, extra in order[n % 2 :] + order[: n % 2]:
            runs[name].append(_noop(path, dst, src, extra))
    report = imgmirror.api.sync.sync(path, jobs=8)
    started = time.perf_counter()
    write_report(report, scratch / "lib.json")
    write_metrics(report, scratch / "lib.prom")
    in_process = time.perf_counter() - started

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[name])

    return {
        "plain": median("plain", "seconds"), "files": median("files", "seconds"),
        "plain_cpu": median("plain", "cpu"), "files_cpu": median("files", "cpu"),
        "plain_requests": median("plain", "requests"),
        "files_requests": median("files", "requests"), "in_process": in_process,
    }  # fmt: skip


def storm(factory: RegistryFactory, scratch: Path, count: int) -> dict[str, dict[str, float]]:
    """The 429 run, with the limiter and without."""
    src = factory(name="storm-src")
    names = push_images(src, small_images(count, "storm"))
    out: dict[str, dict[str, float]] = {}
    for label, policy in (("limiter", RateLimitPolicy()), ("per-request retries", NO_LIMITER)):
        dst = factory(name=f"storm-dst-{len(out)}")
        limits = RegistryLimits(rate=30.0, burst=6, retry_after=1)
        with FaultProxy(("127.0.0.1", src.port), FaultPlan(seed=0, rate=0.0), limits) as proxy:
            path = scratch / f"storm{len(out)}.yaml"
            entries = "".join(f"  - {proxy.host}/{name}\n" for name in names)
            path.write_text(f"defaults: {{to: {dst.host}/m}}\nimages:\n{entries}")
            options = attrs.evolve(connection_options(), rate_limit=policy)
            run = functools.partial(imgmirror.api.sync.sync, path, jobs=8, options=options)
            out[label] = _timed(run, proxy.host, limits)
    return out


def _timed(run: Callable[[], SyncReport], host: str, limits: RegistryLimits) -> dict[str, float]:
    started = time.perf_counter()
    report = run()
    stats = report.registries.get(host)
    return {
        "seconds": time.perf_counter() - started,
        "rate_limited": limits.refused["throttled"],
        "requests": stats.requests if stats else 0,
        "failed": report.failed,
        "copied": report.copied,
    }


def render(noop: dict[str, float], storms: dict[str, dict[str, float]], tags: int,
           images: int) -> str:  # fmt: skip
    """The section for docs/benchmarks.md."""
    added = noop["files"] - noop["plain"]
    lines = [
        START,
        "## The nightly job: reports on a no-op, and a 429 storm (loopback)",
        "",
        f"A no-op sync over {tags} tags (one repository, `all-tags`), with and without "
        "`--report FILE.json --metrics FILE.prom`, medians of alternating rounds:",
        "",
        "| no-op | wall | CPU s | requests |",
        "|---|---|---|---|",
        f"| plain | {noop['plain']:.2f} s | {noop['plain_cpu']:.2f} | "
        f"{noop['plain_requests']:.0f} |",
        f"| with both files | {noop['files']:.2f} s | {noop['files_cpu']:.2f} | "
        f"{noop['files_requests']:.0f} |",
        "",
        f"- Added: {added:+.2f} s wall, {noop['files_cpu'] - noop['plain_cpu']:+.2f} CPU-s "
        f"(target ≤ 1 s), and {noop['files_requests'] - noop['plain_requests']:+.0f} "
        "requests (target 0). Building and writing both files for the "
        f"{tags} results in process: {noop['in_process'] * 1000:.0f} ms.",
        "",
        f"{images} images read through a registry that allows 30 requests/s (bursts of 6) "
        "and answers the rest `429` with `Retry-After: 1`, `--jobs 8`:",
        "",
        "| run | seconds | 429s | requests | copied | failed |",
        "|---|---|---|---|---|---|",
    ]
    for label, got in storms.items():
        lines.append(
            f"| {label} | {got['seconds']:.1f} | {got['rate_limited']:.0f} | "
            f"{got['requests']:.0f} | {got['copied']:.0f} | {got['failed']:.0f} |"
        )
    ours, alone = storms["limiter"], storms["per-request retries"]
    lines += [
        "",
        f"- The limiter sent {ours['requests']:.0f} requests of which {ours['rate_limited']:.0f} "
        f"were refused; each request retrying alone sent {alone['requests']:.0f}, "
        f"{alone['rate_limited']:.0f} refused. Pausing the whole run for each `Retry-After` "
        "is what the registry asks for (one that bans clients ignoring it sees fewer "
        "refusals); the time is set by the registry's rate, not by the client.",
        END,
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run both measurements and write the section."""
    args = _args(argv)
    run_dir = Path(tempfile.mkdtemp(prefix="imgmirror-syncjob-"))
    factory = RegistryFactory(run_dir, make_pki(run_dir / "pki"))
    scratch = run_dir / "scratch"
    scratch.mkdir()
    try:
        noop = noop_cost(factory, scratch, args.tags, args.rounds)
        storms = storm(factory, scratch, args.images)
    finally:
        factory.stop_all()
        shutil.rmtree(run_dir, ignore_errors=True)
    publish(render(noop, storms, args.tags, args.images), args.output, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
