"""Entry point of ``nox -s bench``: set up registries and images, run every scenario, report.

``python -m benchmarks.run`` builds (or reuses) the benchmark images under ``benchmarks/work``,
starts a source and a destination registry on loopback, seeds the images, runs the scenarios
of :mod:`benchmarks.scenarios`, prints the table and writes ``docs/benchmarks.md``. Every
registry it started is stopped before it returns, whatever happened.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from tests.support.certs import make_pki
from tests.support.registry import RegistryFactory

from . import notes, report, startup
from .images import MIB, BenchImage, build_image, upload_image
from .measure import imgmirror_argv, imgmirror_has_command, run_timed
from .scenarios import SRC_REPO, Bench, Row, cold_copy, push_archive, repeat_copy, save_archive
from .throttled import throttled_save

ROOT = Path(__file__).resolve().parent.parent
SHM = Path("/dev/shm")
MAIN, BIG, SMALL = "five-layers", "one-gib-layer", "one-mib-layer"


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="rounds per scenario, 5-layer image")
    parser.add_argument("--big-rounds", type=int, default=3, help="rounds with the 1 GiB layer")
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work")
    parser.add_argument(
        "--run-base",
        type=Path,
        default=SHM if SHM.is_dir() else None,
        help="where registry storage and archives go (default: /dev/shm, so disk writeback "
        "does not add noise; the work directory if there is none)",
    )
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--no-write", action="store_true", help="print only, keep the docs")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated subset of cold,repeat,save,legacy,push,throttled (default: all)",
    )
    return parser.parse_args(argv)


def _images(work: Path) -> dict[str, BenchImage]:
    started = time.perf_counter()
    images = {
        MAIN: build_image(work, MAIN, [100 * MIB] * 5),
        BIG: build_image(work, BIG, [1024 * MIB]),
        SMALL: build_image(work, SMALL, [1 * MIB]),
    }
    print(f"images ready in {time.perf_counter() - started:.1f} s", flush=True)
    for image in images.values():
        print(f"  {image.name}: {image.describe()}", flush=True)
    return images


def _scenarios(bench: Bench, images: dict[str, BenchImage], args: argparse.Namespace) -> list[Row]:
    only = {part.strip() for part in args.only.split(",") if part.strip()}

    def wanted(name: str) -> bool:
        return not only or name in only

    plan = [
        (images[MAIN], args.rounds),
        (images[BIG], args.big_rounds),
        (images[SMALL], args.big_rounds),
    ]
    rows: list[Row] = []

    def done(row: Row) -> None:
        rows.append(row)
        print(report.summary_line(row), flush=True)

    if wanted("cold"):
        for image, rounds in plan:
            done(cold_copy(bench, image, rounds, with_curl=image.name != SMALL))
    if wanted("repeat"):
        for image, rounds in plan[::2]:
            done(repeat_copy(bench, image, rounds))
    has_save, has_push = imgmirror_has_command("save"), imgmirror_has_command("push")
    archives: dict[str, Path] = {}
    for label, fmt in (("save", None), ("legacy", "legacy")):
        if not wanted(label):
            continue
        for image, rounds in plan:
            operation = "save" if fmt is None else f"save --format {fmt}"
            if not has_save:
                rows.append(Row(operation, image, skipped="not available: no `imgmirror save`"))
                continue
            keep = bench.scratch / f"{image.name}.archive.tar" if fmt is None else None
            done(save_archive(bench, image, rounds, fmt, keep=keep))
            if keep is not None:
                archives[image.name] = keep
    if wanted("throttled") and has_save:
        done(throttled_save(bench, images[MAIN], max(1, args.rounds // 2)))
    if wanted("push"):
        for image, rounds in plan:
            if not has_push:
                rows.append(Row("push", image, skipped="not available: no `imgmirror push`"))
                continue
            archive = archives.get(image.name)
            if archive is None:
                rows.append(Row("push", image, skipped="no archive: run with save"))
                continue
            done(push_archive(bench, image, rounds, archive))
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; with ``--strict``, exit 1 when a target is missed."""
    args = _args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    load_at_start = os.getloadavg()[0]
    images = _images(args.work)
    run_timed(imgmirror_argv("--version"))  # writes the bytecode caches, as an install does
    run_dir = (args.run_base or args.work) / f"imgmirror-bench-{time.strftime('%Y%m%d-%H%M%S')}"
    factory = RegistryFactory(run_dir, make_pki(run_dir / "pki"))
    policy = run_dir / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    scratch = run_dir / "scratch"
    scratch.mkdir()
    try:
        source = factory(name="source", log_level="error")
        destination = factory(name="destination", log_level="error")
        for image in images.values():
            upload_image(source.url, f"{SRC_REPO}/{image.name}", "latest", image)
        bench = Bench(
            source=source,
            destination=destination,
            start_registry=lambda: factory(name="empty", log_level="error"),
            policy=policy,
            scratch=scratch,
        )
        rows = _scenarios(bench, images, args)
    finally:
        factory.stop_all()
        shutil.rmtree(run_dir, ignore_errors=True)
    checks = report.judge(rows, MAIN, BIG, SMALL)
    facts = report.machine_facts()
    facts["Load average (1 min), start / end"] = f"{load_at_start:.2f} / {os.getloadavg()[0]:.2f}"
    text = report.render(
        rows,
        checks,
        facts=facts,
        images=notes.images_text(images.values()),
        method=notes.METHOD,
        bounds=notes.bounds_text(rows, MAIN),
        startup=startup.section(),
    )
    print(text)
    if not args.no_write:
        report.write(args.output, text)
        print(f"wrote {args.output}")
    missed = [c.target for c in checks if c.met is False]
    for target in missed:
        print(f"missed: {target}")
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
