"""Sync at 50 ms round trip: ``imgmirror sync`` and one library Session against ``skopeo sync``.

``python -m benchmarks.synclatency`` (root; run by ``nox -s bench`` after
:mod:`benchmarks.latency`) starts a TLS source registry, seeds 100 small images (a base layer
they all share, one layer and a config of their own) and reaches it through
:func:`benchmarks.netlab.latency_lab` at a non-loopback address, 25 ms each way; the tools run
inside the lab's namespace. Round after round, each against a fresh TLS destination behind its
own delay proxy, with the tool that goes first rotated:

* cold: 40 images by ``imgmirror sync``, by ``skopeo sync`` and by 40 copies through one
  :class:`imgmirror.Session` from 8 threads (:mod:`benchmarks.sessioncopy`);
* no-op: ``imgmirror sync`` and ``skopeo sync`` again into what they filled;
* no-op over 100 tags, the destination seeded beforehand with the same images.

It reports median times, the requests both registries logged (per tag for the no-op runs)
and the blob mounts at the destination, and writes its section of
docs/benchmarks-latency.md (between the ``sync-latency`` markers).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.accesslog import Request, log_offset, requests_since
from tests.support.certs import make_pki
from tests.support.images import Image
from tests.support.registry import Registry, RegistryFactory

from .measure import imgmirror_argv, remove_skopeo_cache, run_timed, skopeo_argv
from .netlab import SUBNET, Lab, latency_lab
from .syncbench import publish, push_images, small_images

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- sync-latency -->", "<!-- /sync-latency -->"
COLD_TOOLS = ("imgmirror sync", "skopeo sync", "imgmirror Session")


@dataclass
class Cell:
    """One tool in one scenario: every round's seconds, requests and mounts."""

    seconds: list[float] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    mounts: list[int] = field(default_factory=list)

    def median(self) -> float:
        return statistics.median(self.seconds)


@dataclass
class World:
    lab: Lab
    factory: RegistryFactory
    source_host: str
    source: Registry
    images: list[Image]
    policy: Path
    scratch: Path


@dataclass
class Dest:
    registry: Registry
    host: str

    @property
    def ca(self) -> str:
        assert self.registry.cert_dir is not None
        return str(self.registry.cert_dir / "ca.crt")


@dataclass(frozen=True)
class Lists:
    """The same ``count`` images as a sync file of each tool."""

    ours: Path
    theirs: Path
    count: int


def _files(world: World, count: int, name: str) -> Lists:
    ours = world.scratch / f"{name}.yaml"
    ours.write_text(
        "images:\n" + "".join(f"  - {world.source_host}/sync/app{i}:1.0\n" for i in range(count))
    )
    theirs = world.scratch / f"{name}-skopeo.yaml"
    assert world.source.cert_dir is not None
    repos = "".join(f"    sync/app{i}: ['1.0']\n" for i in range(count))
    theirs.write_text(
        f"{world.source_host}:\n  cert-dir: {world.source.cert_dir}\n  images:\n{repos}"
    )
    return Lists(ours, theirs, count)


def _argv(world: World, tool: str, files: Lists, dest: Dest, prefix: str) -> list[str]:
    target = f"{dest.host}/{prefix}"
    if tool == "imgmirror sync":
        argv = imgmirror_argv("sync", str(files.ours), "--to", target, "--ca-file", dest.ca, "-q")
    elif tool == "skopeo sync":
        certs = str(dest.registry.cert_dir)
        argv = skopeo_argv(world.policy, "sync", "--src", "yaml", "--dest", "docker",
                           "--dest-cert-dir", certs, str(files.theirs), target)  # fmt: skip
    else:
        argv = [sys.executable, "-m", "benchmarks.sessioncopy", "--ca-file", dest.ca,
                world.source_host, target, str(files.count)]  # fmt: skip
    return world.lab.argv(argv)


def _measure(world: World, tool: str, files: Lists, dest: Dest, prefix: str, *, into: Cell) -> None:
    """One run of ``tool`` into ``dest``/``prefix``: its time, requests and mounts."""
    argv = _argv(world, tool, files, dest, prefix)
    remove_skopeo_cache()
    marks = (log_offset(world.source), log_offset(dest.registry))
    run = run_timed(argv)
    seen = requests_since(world.source, marks[0]) + requests_since(dest.registry, marks[1])
    into.seconds.append(run.seconds)
    into.requests.append(sum(1 for q in seen if q.kind != "ping"))
    into.mounts.append(sum(1 for q in seen if _mounted(q, prefix)))


def _mounted(request: Request, prefix: str) -> bool:
    return (
        request.method == "POST"
        and "mount=" in request.path
        and request.status == 201
        and (f"/v2/{prefix}/" in request.path)
    )


def _slug(tool: str) -> str:
    return tool.replace(" ", "-").lower()


def _fresh(world: World) -> Dest:
    registry = world.factory(name="dest", tls=True, log_level="error")
    return Dest(registry, world.lab.expose(registry.port))


def _round(world: World, n: int, count: int, cold: dict[str, Cell], noop: dict[str, Cell]) -> None:
    """Cold syncs by every tool into one fresh destination, then the no-op re-syncs."""
    dest = _fresh(world)
    files = _files(world, count, f"round{n}")
    try:
        order = COLD_TOOLS[n % 3 :] + COLD_TOOLS[: n % 3]
        for tool in order:
            _measure(world, tool, files, dest, f"r{n}/{_slug(tool)}", into=cold[tool])
        for tool in order:
            if tool in noop:
                _measure(world, tool, files, dest, f"r{n}/{_slug(tool)}", into=noop[tool])
    finally:
        dest.registry.stop()


def _noop_large(world: World, rounds: int, noop: dict[str, Cell]) -> None:
    """No-op re-syncs of every seeded image into a destination that already holds them."""
    dest = _fresh(world)
    files = _files(world, len(world.images), "large")
    try:
        for tool in noop:  # skopeo sync keeps only the last path component: PREFIX/app0
            path = "" if tool == "skopeo sync" else "sync/"
            push_images(dest.registry, world.images, f"large/{_slug(tool)}/{path}")
        for n in range(rounds):
            for tool in list(noop)[n % 2 :] + list(noop)[: n % 2]:
                _measure(world, tool, files, dest, f"large/{_slug(tool)}", into=noop[tool])
    finally:
        dest.registry.stop()


Table = dict[str, dict[str, Cell]]


def _run(world: World, rounds: int, count: int) -> Table:
    cold = {tool: Cell() for tool in COLD_TOOLS}
    noop = {tool: Cell() for tool in COLD_TOOLS[:2]}
    large = {tool: Cell() for tool in COLD_TOOLS[:2]}
    for n in range(rounds):
        _round(world, n, count, cold, noop)
        print(f"round {n}: " + _summary(cold) + " | " + _summary(noop), flush=True)
    _noop_large(world, rounds, large)
    print("100 tags no-op: " + _summary(large), flush=True)
    return {f"cold sync of {count}": cold, f"no-op re-sync of {count}": noop,
            f"no-op re-sync of {len(world.images)}": large}  # fmt: skip


def _summary(cells: dict[str, Cell]) -> str:
    return "; ".join(f"{t} {c.seconds[-1]:.2f} s" for t, c in cells.items() if c.seconds)


def _targets(name: str) -> float:
    return 0.2 if name.startswith("cold") else 0.1


def render(table: Table, rounds: int, delay: float, count: int) -> str:
    """The section for docs/benchmarks-latency.md."""
    lines = [
        START,
        "## sync at 50 ms round trip: imgmirror against skopeo sync",
        "",
        f"Generated by `python -m benchmarks.synclatency` ({time.strftime('%Y-%m-%d %H:%M UTC')}):"
        f" {delay * 1000:.0f} ms each way, TLS at {next(SUBNET.hosts())}, a fresh destination "
        f"per round, medians of {rounds} rounds with the first tool rotated. Small images (a "
        "shared base layer, a layer and a config of their own). `imgmirror Session` is "
        f"{count} `Session.copy` calls from 8 threads through one `imgmirror.Session`. Requests "
        "exclude `/v2/` pings; mounts are cross-repository mounts the destination granted.",
        "",
        "| run | tool | time | requests | per tag | mounts | ratio to skopeo | target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, cells in table.items():
        tags = int(name.rsplit(" ", 1)[1])
        skopeo = cells["skopeo sync"].median()
        for tool, cell in cells.items():
            ratio = cell.median() / skopeo
            target = "" if tool == "skopeo sync" else _verdict(ratio, _targets(name))
            lines.append(
                f"| {name} | {tool} | {cell.median():.2f} s | "
                f"{statistics.median(cell.requests):.0f} | "
                f"{statistics.median(cell.requests) / tags:.2f} | "
                f"{statistics.median(cell.mounts):.0f} | {ratio:.3f}x | {target} |"
            )
    return "\n".join([*lines, END]) + "\n"


def _verdict(ratio: float, target: float) -> str:
    return f"≤ {target}x: {'met' if ratio <= target else 'missed'}"


def _world(lab: Lab, factory: RegistryFactory, scratch: Path, images: int) -> World:
    source = factory(name="source", tls=True, log_level="error")
    policy = scratch / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    world = World(lab, factory, lab.expose(source.port), source, small_images(images, "sl"),
                  policy, scratch)  # fmt: skip
    push_images(source, world.images)
    return world


def _in_lab(args: argparse.Namespace, body: Callable[[World], Table]) -> Table:
    scratch = Path(tempfile.mkdtemp(prefix="imgmirror-synclatency-"))
    factory = RegistryFactory(
        scratch / "registries", make_pki(scratch / "pki", [str(next(SUBNET.hosts()))])
    )
    try:
        with latency_lab(args.delay) as lab:
            return body(_world(lab, factory, scratch, args.large))
    finally:
        factory.stop_all()
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios and write the section."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.synclatency", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--large", type=int, default=100, help="tags of the large no-op run")
    parser.add_argument("--delay", type=float, default=0.025, help="seconds each way")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks-latency.md")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    table = _in_lab(args, lambda world: _run(world, args.rounds, args.images))
    publish(render(table, args.rounds, args.delay, args.images), args.output,
            write=not args.no_write)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
