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
  `skopeo copy docker-archive:FILE docker://DST`, into an empty registry each run.
- throttled save: `imgmirror save` and `imgmirror copy` of the five-layer image through a
  loopback proxy that sends each connection at most 20 MiB/s (`benchmarks/throttled.py`), in
  turn; the target is save within 1.2x of copy (both fetch several blobs at once)."""


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


def _cold(rows: Sequence[Row], main: str) -> list[str]:
    cold = _find(rows, "cold copy", main)
    if cold is None or not cold.curl:
        return []
    mb = cold.image.compressed / 1e6
    lines = [
        f"- **Cold copy** is bound by the registries: the curl stream, which only moves bytes, "
        f"needs {cold.curl.median:.2f} s for {mb:.0f} MB ({mb / cold.curl.median:.0f} MB/s). "
        "The machine has no idle core during a copy: the destination registry hashes and "
        "stores every byte (about one core for one stream), the source serves it, and the "
        "client hashes it too (sha256 is verified as the bytes flow, as skopeo does)."
    ]
    small = [r for r in rows if r.operation == "cold copy" and r.image.compressed < 2e6]
    if small:
        start = small[0].imgmirror.median
        moving = cold.imgmirror.median - start
        lines.append(
            f"- imgmirror's fixed cost is start-up: a copy of the 1 MiB image takes "
            f"{start:.2f} s, nearly all of it starting CPython and importing httpx/httpcore, "
            "attrs and imgmirror (skopeo, a Go binary, starts in a few milliseconds). Without "
            f"it, the {main} copy moves its bytes in about {moving:.2f} s, against "
            f"{cold.curl.median:.2f} s for curl | curl: the data path runs at the registries' "
            "speed, and the gap to curl and skopeo on a one-second copy is the start-up. It "
            "shrinks with the size of the copy (see the 1 GiB layer) and disappears for "
            "library users and for many images copied by one process. Imports are already "
            "lazy (a copy loads neither the archive code nor PyYAML, and a loopback registry "
            "never reads the CA store); what is left is CPython, typer, attrs and httpx. What "
            "would remove it for a single small CLI copy: a faster-starting runtime (a frozen "
            "or compiled binary)."
        )
    return lines


def _legacy(rows: Sequence[Row], main: str) -> list[str]:
    legacy = _find(rows, "save --format legacy", main)
    default = _find(rows, "save", main)
    if legacy is None or default is None or not legacy.skopeo:
        return []
    return [
        f"- **save --format legacy** ({legacy.imgmirror.median:.2f} s against skopeo's "
        f"{legacy.skopeo.median:.2f} s) decompresses every layer once: a tar header needs the "
        "size of `layer.tar` before its bytes, so when the output is a plain file the writer "
        "puts a placeholder header first, streams the layer while checking its diff_id, and "
        "writes the real header back in place. Layers are written one after the other, and "
        "decompression (zlib, in this process) is the bound. A compressed (`-o x.tar.gz`) or "
        "piped output cannot seek, so there each layer is read twice (once to measure it).",
        f"- **save** (default format, {default.imgmirror.median:.2f} s) writes the layers as "
        "the registry serves them, compressed: it moves about half the bytes skopeo's "
        "docker-archive does and decompresses nothing.",
    ]


def bounds_text(rows: Sequence[Row], main: str) -> str:
    """What limits each result, quoting this run where it can."""
    parts = _cold(rows, main) + _legacy(rows, main)
    repeat = _find(rows, "repeat copy", main)
    if repeat is not None:
        parts.append(
            f"- **Repeat copy** ({repeat.imgmirror.median:.2f} s) is start-up plus one manifest "
            "GET and one HEAD per blob; no blob byte moves."
        )
    parts.append(
        "- **Memory** does not depend on layer size: blobs stream in 1 MiB chunks (socket "
        "reads joined with one copy), at most one chunk per blob in flight; peak RSS is the "
        "interpreter and its imports."
    )
    parts.append(
        "- **Changes made for this benchmark**: the legacy writer reads each layer once "
        "(placeholder header patched in place) instead of twice (ratio to skopeo 1.23 -> "
        "0.89 on the five-layer image); operations, httpx and PyYAML are imported only when a "
        "command needs them, and a loopback registry is probed over plain HTTP first, so the "
        "CA store is not read for it (`imgmirror --version` 0.18 -> 0.10 s, a 1 MiB copy "
        "0.27 -> 0.22 s); socket reads are joined into 1 MiB chunks "
        "with one copy instead of httpx's `iter_raw(size)` chunker (two to three copies per "
        "byte): the client's CPU time for copying the 1 GiB layer went from 1.46 to 1.05 "
        "CPU-seconds, which on two busy cores is time given back to the registries; one "
        "shared system-store TLS context instead "
        "of one per registry (-22 ms per command); typer pinned below 0.29, whose "
        "pydantic-based option parsing added about 0.08 s to every command. Reading ahead on "
        "a second thread per blob and raising `--jobs` to 6 were measured and not kept: on two "
        "cores shared with both registries they were no faster (read-ahead was 0.1 s slower)."
    )
    return "\n".join(parts)
