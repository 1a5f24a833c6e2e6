"""The latency scenario: imgmirror against skopeo with 25 ms each way, over TLS (root only).

``python -m benchmarks.latency`` (run by ``nox -s bench`` as root) starts a source registry
serving TLS on loopback, seeds a pause image and a 30-layer image, and exposes it through
:func:`benchmarks.netlab.latency_lab` at a non-loopback address 50 ms (round trip) away; the
tools run inside the lab's namespace. Each run gets a fresh destination registry behind its
own delay proxy. Per tool it reports the median time of the rounds (tools interleaved, first
tool swapped every round), the requests both registries logged and the TCP connections the
tool opened, for: pause cold, the 30-layer image cold, and a repeat copy of the 30-layer image
whose tag is already at the destination. Writes docs/benchmarks-latency.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.certs import make_pki
from tests.support.images import build_pause_binary, make_image, make_layer, pause_image
from tests.support.registry import Registry, RegistryFactory
from tests.support.seed import seed

from .measure import (
    imgmirror_argv,
    remove_skopeo_cache,
    run_timed,
    skopeo_argv,
    startup_floor,
)
from .netlab import SUBNET, Lab, latency_lab
from .syncbench import publish

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
#: The markers of this module's section of docs/benchmarks-latency.md (the sync one follows).
START, END = "<!-- latency -->", "<!-- /latency -->"
TOOLS = ("imgmirror", "skopeo")
_REQUEST = re.compile(rb'"(GET|HEAD|POST|PUT|PATCH|DELETE) /v2/')


@dataclass
class Result:
    """One scenario, one tool: every round's (seconds, requests, connections)."""

    seconds: list[float] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    connections: list[int] = field(default_factory=list)

    def cell(self) -> str:
        med = statistics.median
        return (
            f"{med(self.seconds):.2f} s, {med(self.requests):.0f} req, "
            f"{med(self.connections):.0f} conn"
        )


@dataclass
class World:
    lab: Lab
    factory: RegistryFactory
    source: Registry
    source_host: str
    policy: Path
    scratch: Path


def _requests(registry: Registry, since: int) -> int:
    data = registry.log_path.read_bytes()[since:]
    return len(_REQUEST.findall(data))


def _command(world: World, tool: str, src: str, dst: str, cert_dir: Path) -> list[str]:
    if tool == "imgmirror":
        ca = cert_dir / "ca.crt"
        argv = imgmirror_argv("copy", "-q", "--ca-file", str(ca), src, dst)
    else:
        argv = skopeo_argv(
            world.policy,
            "copy",
            "-q",
            "--all",
            "--preserve-digests",
            "--src-cert-dir",
            str(cert_dir),
            "--dest-cert-dir",
            str(cert_dir),
            f"docker://{src}",
            f"docker://{dst}",
        )
    return world.lab.argv(argv)


def _one_run(world: World, tool: str, repo: str, warm: bool) -> tuple[float, int, int]:
    """A copy of ``repo`` to a fresh destination; ``warm``: the tag is there already."""
    dest = world.factory(name="dest", tls=True, log_level="error")
    try:
        dest_host = world.lab.expose(dest.port)
        assert dest.cert_dir is not None
        src, dst = f"{world.source_host}/{repo}:latest", f"{dest_host}/{repo}:latest"
        argv = _command(world, tool, src, dst, dest.cert_dir)
        if warm:
            run_timed(argv)
        remove_skopeo_cache()
        proxies = world.lab.connections
        src_log, dst_log = world.source.log_path.stat().st_size, dest.log_path.stat().st_size
        run = run_timed(argv)
        requests = _requests(world.source, src_log) + _requests(dest, dst_log)
        return run.seconds, requests, world.lab.connections - proxies
    finally:
        dest.stop()


def _scenario(world: World, repo: str, warm: bool, rounds: int) -> dict[str, Result]:
    results = {tool: Result() for tool in TOOLS}
    for n in range(rounds):
        order = TOOLS if n % 2 == 0 else TOOLS[::-1]
        for tool in order:
            seconds, requests, connections = _one_run(world, tool, repo, warm)
            results[tool].seconds.append(seconds)
            results[tool].requests.append(requests)
            results[tool].connections.append(connections)
    return results


def _seed_images(source: Registry, scratch: Path) -> dict[str, str]:
    pause = pause_image(build_pause_binary(scratch))
    seed(source, "lat/pause", "latest", pause)
    layers = [make_layer({f"data/{i}.txt": f"layer {i}\n".encode() * 2000}) for i in range(30)]
    seed(source, "lat/thirty", "latest", make_image(layers, marker="latency"))
    return {"pause cold": "lat/pause", "30 layers cold": "lat/thirty"}


def _render(
    rows: list[tuple[str, dict[str, Result]]],
    delay: float,
    rounds: int,
    load: float,
    floor: float,
) -> str:
    lines = [
        START,
        "# Latency benchmark: imgmirror against skopeo",
        "",
        f"Generated by `python -m benchmarks.latency` ({time.strftime('%Y-%m-%d %H:%M UTC')}):",
        f"{delay * 1000:.0f} ms each way through the delay proxy of benchmarks/netlab.py, TLS at",
        f"{next(SUBNET.hosts())} (a veth pair into a network namespace where the tools run),",
        f"medians of {rounds} interleaved rounds. Requests are what the source and destination",
        "registries logged; connections are TCP connections the tool opened through the proxies.",
        f"Load average (1 min) at start / end: {load:.2f} / {os.getloadavg()[0]:.2f} on "
        f"{os.cpu_count()} CPUs; with a high load, start-up CPU rather than round trips decides.",
        f"Start-up probe: a fresh interpreter that only imports typer, httpx, attrs and PyYAML "
        f"took {floor:.2f} s (median of 5, during this run). imgmirror's times include that "
        "much CPU before its first request and skopeo's do not, so they follow this machine's "
        "speed at the time, which varies from run to run.",
        "",
        "| Scenario | imgmirror | skopeo | time ratio |",
        "|---|---|---|---|",
    ]
    for name, results in rows:
        mine, theirs = results["imgmirror"], results["skopeo"]
        ratio = statistics.median(mine.seconds) / statistics.median(theirs.seconds)
        lines.append(f"| {name} | {mine.cell()} | {theirs.cell()} | {ratio:.2f}x |")
    return "\n".join([*lines, END]) + "\n"


def _run(args: argparse.Namespace, lab: Lab, factory: RegistryFactory, scratch: Path) -> str:
    load = os.getloadavg()[0]
    floor = startup_floor()
    source = factory(name="source", tls=True, log_level="error")
    policy = scratch / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    world = World(lab, factory, source, lab.expose(source.port), policy, scratch)
    repos = _seed_images(source, scratch)
    plan = [(name, repo, False) for name, repo in repos.items()]
    plan.append(("30 layers, tag present", "lat/thirty", True))
    rows = []
    for name, repo, warm in plan:
        results = _scenario(world, repo, warm, args.rounds)
        rows.append((name, results))
        print(f"{name}: " + "; ".join(f"{t} {r.cell()}" for t, r in results.items()), flush=True)
    return _render(rows, args.delay, args.rounds, load, floor)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.latency", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--delay", type=float, default=0.025, help="seconds each way")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks-latency.md")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="imgmirror-latency-"))
    host_ip = str(next(SUBNET.hosts()))
    factory = RegistryFactory(scratch / "registries", make_pki(scratch / "pki", [host_ip]))
    try:
        with latency_lab(args.delay) as lab:
            text = _run(args, lab, factory, scratch)
    finally:
        factory.stop_all()
        shutil.rmtree(scratch, ignore_errors=True)
    publish(text, args.output, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
