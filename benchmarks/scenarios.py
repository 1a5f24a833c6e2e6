"""The timed scenarios: cold copy, repeat copy, save (two formats) and push of an archive.

Each scenario runs imgmirror and skopeo on the same registries, round after round, swapping
which tool goes first every round so that neither always meets a warmer page cache, and
returns a :class:`Row` with every run. imgmirror's ``--json`` output is checked on the way
(a cold copy moved every blob; a repeat copy moved none), so a wrong result never becomes a
fast number.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .baseline import curl_stream_copy
from .images import BenchImage
from .measure import (
    CommandFailed,
    Run,
    Samples,
    imgmirror_argv,
    remove_skopeo_cache,
    run_timed,
    skopeo_argv,
)

__all__ = ["Bench", "Row", "cold_copy", "push_archive", "repeat_copy", "save_archive"]

SRC_REPO = "bench"


@dataclass
class Row:
    """One line of the results table."""

    operation: str
    image: BenchImage
    imgmirror: Samples = field(default_factory=Samples)
    skopeo: Samples = field(default_factory=Samples)
    curl: Samples | None = None
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass
class Bench:
    """What every scenario needs: the registries, skopeo's policy and a scratch directory."""

    source: Any  # tests.support.registry.Registry
    destination: Any
    start_registry: Callable[[], Any]
    policy: Path
    scratch: Path

    def src_ref(self, image: BenchImage) -> str:
        return f"{self.source.host}/{SRC_REPO}/{image.name}:latest"

    def skopeo(self, *args: str) -> Run:
        return run_timed(skopeo_argv(self.policy, *args))


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _in_turn(steps: list[Callable[[], None]], round_number: int) -> None:
    """Run the steps, rotated by the round number."""
    shift = round_number % len(steps)
    for step in steps[shift:] + steps[:shift]:
        step()


def _json_of(run: Run) -> dict[str, Any]:
    lines = run.stdout.strip().splitlines()
    if not lines:
        raise CommandFailed("imgmirror printed no --json result")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _skopeo_copy(bench: Bench, src: str, dst: str) -> Run:
    return bench.skopeo(
        "copy",
        "--all",
        "--preserve-digests",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        src,
        dst,
    )


def cold_copy(bench: Bench, image: BenchImage, rounds: int, *, with_curl: bool) -> Row:
    """Registry to registry into a fresh repository each round; nothing to mount or skip."""
    row = Row("cold copy", image, curl=Samples() if with_curl else None)
    dst = bench.destination

    def ours() -> None:
        repo = _unique(f"cold/{image.name}-imgmirror")
        run = row.imgmirror.add(
            run_timed(
                imgmirror_argv("copy", "--json", bench.src_ref(image), f"{dst.host}/{repo}:latest")
            )
        )
        result = _json_of(run)
        if result["blobs_copied"] != len(image.blobs) or result["digest"] != image.digest:
            raise CommandFailed(f"cold copy did not move every blob: {result}")

    def theirs() -> None:
        remove_skopeo_cache()
        repo = _unique(f"cold/{image.name}-skopeo")
        row.skopeo.add(
            _skopeo_copy(
                bench, f"docker://{bench.src_ref(image)}", f"docker://{dst.host}/{repo}:latest"
            )
        )

    def raw() -> None:
        assert row.curl is not None
        repo = _unique(f"cold/{image.name}-curl")
        src_repo = f"{SRC_REPO}/{image.name}"
        row.curl.add(curl_stream_copy(bench.source.url, src_repo, dst.url, repo, image))

    steps = [ours, theirs] + ([raw] if with_curl else [])
    for n in range(rounds):
        _in_turn(steps, n)
    return row


def repeat_copy(bench: Bench, image: BenchImage, rounds: int) -> Row:
    """Copy again to a repository that already holds the whole image."""
    row = Row("repeat copy", image)
    dst_ref = f"{bench.destination.host}/repeat/{image.name}:latest"
    run_timed(imgmirror_argv("copy", "--quiet", bench.src_ref(image), dst_ref))
    row.facts["bytes_copied"] = 0

    def ours() -> None:
        result = _json_of(
            row.imgmirror.add(
                run_timed(imgmirror_argv("copy", "--json", bench.src_ref(image), dst_ref))
            )
        )
        row.facts["bytes_copied"] += int(result["bytes_copied"]) + int(result["blobs_copied"])

    def theirs() -> None:
        row.skopeo.add(
            _skopeo_copy(bench, f"docker://{bench.src_ref(image)}", f"docker://{dst_ref}")
        )

    for n in range(rounds):
        _in_turn([ours, theirs], n)
    return row


def save_archive(
    bench: Bench,
    image: BenchImage,
    rounds: int,
    archive_format: str | None,
    *,
    keep: Path | None = None,
) -> Row:
    """``imgmirror save`` (default format, or ``--format``) against skopeo's docker-archive."""
    label = "save" if archive_format is None else f"save --format {archive_format}"
    row = Row(label, image)
    ours_file = bench.scratch / f"{image.name}-imgmirror.tar"
    theirs_file = bench.scratch / f"{image.name}-skopeo.tar"
    fmt = [] if archive_format is None else ["--format", archive_format]

    def ours() -> None:
        ours_file.unlink(missing_ok=True)
        row.imgmirror.add(
            run_timed(
                imgmirror_argv("save", "--quiet", *fmt, "-o", str(ours_file), bench.src_ref(image))
            )
        )
        row.facts["imgmirror_bytes"] = ours_file.stat().st_size

    def theirs() -> None:
        theirs_file.unlink(missing_ok=True)
        row.skopeo.add(
            bench.skopeo(
                "copy",
                "--src-tls-verify=false",
                f"docker://{bench.src_ref(image)}",
                f"docker-archive:{theirs_file}:{SRC_REPO}/{image.name}:latest",
            )
        )
        row.facts["skopeo_bytes"] = theirs_file.stat().st_size

    try:
        for n in range(rounds):
            _in_turn([ours, theirs], n)
        if keep is not None:
            ours_file.replace(keep)
    finally:
        ours_file.unlink(missing_ok=True)
        theirs_file.unlink(missing_ok=True)
    return row


def push_archive(bench: Bench, image: BenchImage, rounds: int, archive: Path) -> Row:
    """Push one archive (imgmirror's default save) into an empty registry, started per run."""
    row = Row("push", image)

    def into_empty(samples: Samples, command: Callable[[str], list[str]]) -> None:
        registry = bench.start_registry()
        try:
            samples.add(run_timed(command(f"{registry.host}/pushed/{image.name}:latest")))
        finally:
            registry.stop()
            shutil.rmtree(registry.directory, ignore_errors=True)

    def ours() -> None:
        into_empty(row.imgmirror, lambda dst: imgmirror_argv("push", "--quiet", str(archive), dst))

    def theirs() -> None:
        remove_skopeo_cache()
        into_empty(
            row.skopeo,
            lambda dst: skopeo_argv(
                bench.policy,
                "copy",
                "--dest-tls-verify=false",
                f"docker-archive:{archive}",
                f"docker://{dst}",
            ),
        )

    for n in range(rounds):
        _in_turn([ours, theirs], n)
    return row
