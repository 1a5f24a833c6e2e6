"""The prose of ``docs/benchmarks.md``: how the numbers were taken and what bounds them.

Kept apart from the table code so that the findings of the profiling (which change as the
library does) are edited in one place; the parts that quote numbers are filled from the run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .images import BenchImage
from .scenarios import Row

__all__ = ["METHOD", "bounds_text", "images_text"]

METHOD = """\
- Two `docker-registry serve` processes on 127.0.0.1 (filesystem storage, plain HTTP): the
  source holds the images, the destination receives the copies. Push runs go into a registry
  started empty for that run. Everything is on loopback on this one machine, so the registries
  compete with the client for the same cores.
- Each round runs imgmirror and skopeo (and, for cold copies, the curl stream) one after the
  other on the same registries; which tool goes first rotates every round. The table shows
  the median of the rounds.
- imgmirror is run as a user runs it: `python -m imgmirror ...` in a new process, so interpreter
  start-up and imports are included. Each command runs under `/usr/bin/time -f %M` for its
  peak resident set size.
- cold copy: `imgmirror copy --json SRC DST` into a new repository each round, checked to have
  copied every blob; `skopeo copy --all --preserve-digests` likewise, with skopeo's blob-info
  cache deleted before each run so it cannot mount blobs it saw before.
- curl | curl: for every blob at once, `curl GET <source blob>` piped into
  `curl -X PUT -T - <upload location>&digest=...` (chunked), then the manifest PUT. No digest
  checks, no retries: the speed of the registries and the loopback.
- repeat copy: the same copy into a repository that already has the image; imgmirror's
  `--json` result is checked to report no blob copied and zero bytes.
- save: `imgmirror save -o FILE SRC` (default `docker` format: compressed layers as the
  registry serves them) and `--format legacy` (uncompressed `layer.tar`s, as `docker save`
  wrote them) against `skopeo copy docker://SRC docker-archive:FILE:NAME` (which also writes
  uncompressed layers).
- push: imgmirror's default-format archive pushed with `imgmirror push FILE DST` and with
  `skopeo copy docker-archive:FILE docker://DST`, into an empty registry each run."""


def images_text(images: Iterable[BenchImage]) -> str:
    """One bullet per benchmark image."""
    lines = [
        "Generated deterministically (`benchmarks/images.py`): each layer is a tar of one file of "
        "random bytes (incompressible) and one log-like text file, half the layer each, gzip "
        "level 6. Docker schema 2 manifests, linux/amd64.",
        "",
    ]
    for image in images:
        lines.append(
            f"- `{image.name}`: {image.describe()} ({image.compressed / 1e6:.0f} MB on the wire)"
        )
    return "\n".join(lines)


def _find(rows: Sequence[Row], operation: str, image: str) -> Row | None:
    return next(
        (r for r in rows if r.operation == operation and r.image.name == image and not r.skipped),
        None,
    )


def bounds_text(rows: Sequence[Row], main: str) -> str:
    """What limits each result, quoting this run where it can."""
    parts: list[str] = []
    cold = _find(rows, "cold copy", main)
    if cold is not None and cold.curl:
        mb = cold.image.compressed / 1e6
        parts.append(
            f"- **Cold copy** is bound by the registries: the curl stream, which does nothing "
            f"but move bytes, needs {cold.curl.median:.2f} s for {mb:.0f} MB "
            f"({mb / cold.curl.median:.0f} MB/s). Both registries hash every byte (sha256) "
            "and write it to disk, on the same two cores as the client."
        )
    repeat = _find(rows, "repeat copy", main)
    if repeat is not None:
        parts.append(
            f"- **Repeat copy** ({repeat.imgmirror.median:.2f} s) is start-up plus one manifest "
            "GET and one HEAD per blob; interpreter start-up and imports are most of it."
        )
    return "\n".join(parts) if parts else "(no scenario ran)"
