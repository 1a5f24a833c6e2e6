"""``imgmirror sync``: mirror every image a sync file (or a plain list) selects.

Output: one line per image (stdout) in file order, as soon as every image before it is done:
``copied``, ``moved`` (old -> new digest), failures with the entry's ``file:line``;
``unchanged`` images are counted in the summary (``-v`` prints their lines too). Then the
summary, and the failures on stderr with the same one-line errors as ``copy``. ``--json``
prints one object per image and the summary object last. On a terminal, a live block on
stderr shows the images in flight and the overall count, bytes and rate; piped, a heartbeat
line every few seconds says the same (neither with ``--json`` or ``--quiet``, as for
``copy``). Exit status: 1 if anything failed; else 3 if the verification policy refused an
image; with ``--check``, 2 when the destination has drifted (and nothing failed).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Annotated, Literal, TextIO

import typer

from imgmirror.cli.common import (
    DEFAULT_TIMEOUT,
    REFUSED,
    AuthfileOpt,
    CaFileOpt,
    CertsDirOpt,
    DestCredsOpt,
    InsecureOpt,
    PlatformOpt,
    QuietOpt,
    SrcCredsOpt,
    TimeoutOpt,
    app,
    make_options,
    reported_errors,
)
from imgmirror.cli.referrer_options import ReferrersOpt, ReferrersOptionalOpt, referrers_wanted
from imgmirror.cli.terminal import Ticker, human_bytes
from imgmirror.cli.verify_options import PolicyOpt, VerifyCacheOpt, VerifyKeyOpt, policy_of
from imgmirror.model.digest import Digest
from imgmirror.progress import ProgressListener
from imgmirror.syncing.report import SyncObserver, SyncReport, SyncResult

if TYPE_CHECKING:
    from imgmirror.syncing.file import SyncSpec
    from imgmirror.syncing.shards import Shard
    from imgmirror.transport.options import ClientOptions
    from imgmirror.verify.policy import Policy

__all__ = ["SyncLines", "sync_command"]

_VERB = {
    "copied": "copied",
    "moved": "moved",
    "unchanged": "unchanged",
    "would-copy": "would copy",
    "would-move": "would move",
    "missing-at-source": "missing",
    "failed": "failed",
    "refused": "refused",
}
_ERRORS = frozenset({"failed", "missing-at-source", "refused"})


def with_origin(result: SyncResult) -> str:
    """The error of a result, ending with its entry's ``file:line`` (once)."""
    error = result.error or ""
    if result.origin and result.origin not in error:
        error = f"{error} ({result.origin})"
    return error


def result_line(result: SyncResult) -> str:
    """The text line of one finished image."""
    verb = _VERB.get(result.action, result.action)
    if result.action in _ERRORS:
        return f"{verb:<9} {result.source} -> {result.destination}: {with_origin(result)}"
    digests = f"{result.old_digest} -> {result.digest}" if result.old_digest else result.digest
    size = f" ({human_bytes(result.bytes_copied)})" if result.action in ("copied", "moved") else ""
    return f"{verb:<9} {result.source} -> {result.destination} {digests}{size}"


class SyncLines(SyncObserver, ProgressListener):
    """Prints each finished image; on a terminal also a live block of the images in flight
    and an overall line (redrawn at most ten times a second); elsewhere a heartbeat line on
    ``heartbeat`` (stderr) every ``interval`` seconds (``$IMGMIRROR_PROGRESS_INTERVAL``, 5 s)."""

    def __init__(
        self,
        *,
        as_json: bool,
        live: TextIO | None,
        quiet: bool = False,
        verbose: bool = False,
        heartbeat: TextIO | None = None,
        interval: float | None = None,
    ) -> None:
        self.as_json = as_json
        self.quiet = quiet
        self.verbose = verbose
        self.live = live
        self._lock = threading.Lock()
        self._in_flight: dict[str, float] = {}
        self._total = 0
        self._done = 0
        self._bytes = 0
        self._drawn = 0
        self._last = 0.0
        self._start = time.monotonic()
        self._ticker: Ticker | None = None
        if heartbeat is not None:
            self._ticker = Ticker(heartbeat, self.heartbeat_line, interval)
            self._ticker.start()

    def expanded(self, images: int) -> None:
        with self._lock:
            self._total = images
            self._draw(force=True)

    def started(self, source: str, destination: str) -> None:
        with self._lock:
            self._in_flight[source] = time.monotonic()
            self._draw(force=True)

    def finished(self, result: SyncResult) -> None:
        with self._lock:
            self._in_flight.pop(result.source, None)
            self._done += 1
            self._clear()
            if self.as_json:
                sys.stdout.write(json.dumps(result.to_json(), sort_keys=True) + "\n")
            elif not self.quiet and (self.verbose or result.action != "unchanged"):
                sys.stdout.write(result_line(result) + "\n")
            sys.stdout.flush()
            self._draw(force=True)

    def blob_advanced(self, digest: Digest, nbytes: int) -> None:
        with self._lock:
            self._bytes += nbytes
            self._draw()

    def close(self) -> None:
        """Remove the live block; stop the heartbeat."""
        if self._ticker is not None:
            self._ticker.stop()
        with self._lock:
            self._clear()

    def heartbeat_line(self) -> str:
        """``imgmirror: sync: 3/10 images done, 2 in flight (…/pause:3.9 12 s), 1.0 MiB …``."""
        now = time.monotonic()
        with self._lock:
            total, done, sent = self._total or "?", self._done, self._bytes
            oldest = sorted(self._in_flight.items(), key=lambda kv: kv[1])
        line = f"imgmirror: sync: {done}/{total} images done, {len(oldest)} in flight"
        if oldest:
            line += f" (longest {oldest[0][0]} {now - oldest[0][1]:.0f} s)"
        rate = sent / max(now - self._start, 1e-6)
        return f"{line}, {human_bytes(sent)} at {human_bytes(rate)}/s"

    def _clear(self) -> None:
        if self.live is not None and self._drawn:
            self.live.write("\x1b[1A\x1b[2K" * self._drawn + "\r")
            self.live.flush()
            self._drawn = 0

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.live is None or (not force and now - self._last < 0.1):
            return
        self._last = now
        self._clear()
        shown = sorted(self._in_flight.items(), key=lambda kv: kv[1])[:8]
        lines = [f"  … {source}  {now - since:4.0f}s" for source, since in shown]
        rate = self._bytes / max(now - self._start, 1e-6)
        lines.append(
            f"  {self._done}/{self._total or '?'} images done  {human_bytes(self._bytes)}"
            f"  {human_bytes(rate)}/s"
        )
        self.live.write("".join(line + "\n" for line in lines))
        self.live.flush()
        self._drawn = len(lines)


def _summary(report: SyncReport) -> str:
    tail = f"{human_bytes(report.bytes_copied)}, {report.requests} requests"
    tail += f" in {report.seconds:.1f} s"
    if report.rate_limited:
        tail += f"; {report.rate_limited} rate-limited answers"
    failed = f"{report.failed - report.refused} failed"
    if report.refused:
        failed += f", {report.refused} refused"
    if report.check:
        missing, moved = report.count("would-copy"), report.count("would-move")
        verdict = f"out of sync: {missing} missing, {moved} moved at the destination"
        return (
            f"sync --check: {verdict if report.drift else 'in sync'}; {report.unchanged} in "
            f"sync, {failed} (nothing written); {tail}"
        )
    if report.dry_run:
        moving = report.count("would-move")
        moves = f", {moving} would move" if moving else ""
        done = f"{report.count('would-copy')} would copy{moves}, {report.unchanged} unchanged, "
        done += f"{failed} (dry run: nothing written)"
    else:
        moves = f", {report.moved} moved" if report.moved else ""
        done = f"{report.copied} copied{moves}, {report.unchanged} unchanged, {failed}"
    return f"sync: {done}; {tail}"


SYNC_HELP = """Mirror a set of images: every image a sync file selects, or a plain list.

FILE is a sync file (YAML, see docs/sync.md): images by tag or digest, repositories with \
tags, tags-regex, exclude-regex, semver ranges, newest N or all-tags, and where they go. \
--images reads a plain list instead (one reference per line, # comments: what \
`kubeadm config images list` prints; - for stdin) and needs --to.

Naming under a prefix P: registry.k8s.io/pause:3.9 -> P/pause:3.9 (the registry host \
dropped, the path kept); with keep-registry -> P/registry.k8s.io/pause:3.9.

Each image costs a manifest HEAD at each end when nothing changed (no manifest GET, no blob \
request); only changed tags are copied, digests kept. A failed image does not stop the \
others; exit status 1 if any failed.

--check asks whether the mirror is in sync without writing anything (the same HEADs): exit \
0 in sync, 2 when tags are missing or moved at the destination (each listed with both \
digests), 1 when something failed. --report FILE.json and --metrics FILE.prom record every \
run (the no-op and failures included) for scripts and Prometheus.

A registry that answers 429 (or 503 with Retry-After) slows the whole run down: its requests \
pause for the Retry-After and fewer go at once, then more again. Docker Hub's pull quota \
(RateLimit-Remaining) is respected: --on-quota wait paces pulls, stop ends the run.

--referrers[=TYPE,...] and --referrers-optional replace the file's defaults.referrers and \
defaults.referrers-optional; an entry's own referrers: key wins. With referrers, an image \
already there is still read to carry the referrers added since.
"""

SyncJsonOpt = Annotated[
    bool,
    typer.Option(
        "--json",
        help="One JSON object per image on stdout (in file order, as soon as the images "
        "before it are done), then the summary object as the last line.",
    ),
]
ReportOpt = Annotated[
    str | None,
    typer.Option(
        "--report",
        metavar="FILE.json",
        help="Write the run's report here (every image: state, digests, bytes, requests, "
        "seconds, error; the JSON Schema is in the package). Replaced whole.",
    ),
]
MetricsOpt = Annotated[
    str | None,
    typer.Option(
        "--metrics",
        metavar="FILE.prom",
        help="Write the run as Prometheus metrics (node-exporter's textfile collector), "
        "labelled by shard. Replaced whole.",
    ),
]
QuotaOpt = Annotated[
    str,
    typer.Option(
        "--on-quota",
        metavar="wait|stop",
        help="When a registry's pull quota (RateLimit-Remaining) would run out: wait, "
        "pacing pulls as the quota frees them, or stop with an error.",
    ),
]


@app.command("sync", help=SYNC_HELP)
def sync_command(
    file: Annotated[
        str | None, typer.Argument(metavar="FILE", help="The sync file (YAML).")
    ] = None,
    images: Annotated[
        str | None,
        typer.Option("--images", metavar="FILE", help="A plain list of images instead; - = stdin."),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option(
            "--to", metavar="PREFIX", help="Destination prefix (replaces defaults.to of FILE)."
        ),
    ] = None,
    keep_registry: Annotated[
        bool,
        typer.Option("--keep-registry", help="With --images: keep the source host in the path."),
    ] = False,
    platform: PlatformOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be copied; write nothing.")
    ] = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Only check (HEADs, nothing written): exit 0 in sync, 2 drift, 1 failure.",
        ),
    ] = False,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs", "-j", min=1, max=64, help="Images and blobs in flight at once (one budget)."
        ),
    ] = 8,
    fail_fast: Annotated[
        bool, typer.Option("--fail-fast", help="Stop at the first failure.")
    ] = False,
    shard: Annotated[
        str | None,
        typer.Option("--shard", metavar="I/N", help="Only the entries of shard I of N (from 0)."),
    ] = None,
    shards: Annotated[
        int | None,
        typer.Option(
            "--shards",
            metavar="N",
            min=1,
            help="N shards; this one is $JOB_COMPLETION_INDEX (a Kubernetes Indexed Job).",
        ),
    ] = None,
    src_creds: SrcCredsOpt = None,
    dest_creds: DestCredsOpt = None,
    authfile: AuthfileOpt = None,
    ca_file: CaFileOpt = None,
    certs_dir: CertsDirOpt = None,
    insecure_registry: InsecureOpt = None,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    on_quota: QuotaOpt = "wait",
    as_json: SyncJsonOpt = False,
    quiet: QuietOpt = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also print a line per unchanged image.")
    ] = False,
    report_file: ReportOpt = None,
    metrics_file: MetricsOpt = None,
    referrers: ReferrersOpt = None,
    referrers_optional: ReferrersOptionalOpt = False,
    verify_key: VerifyKeyOpt = None,
    policy: PolicyOpt = None,
    verify_cache: VerifyCacheOpt = None,
    lock: Annotated[
        str | None,
        typer.Option(
            "--lock",
            metavar="FILE",
            help="Pin each image: entry of FILE to its digest in this lock (find-images --lock).",
        ),
    ] = None,
) -> None:
    from imgmirror.api.sync import sync  # noqa: PLC0415 - imported when the command runs

    if (file is None) == (images is None):
        raise typer.BadParameter("give a sync FILE or --images FILE (not both)")
    if images is not None and to is None:
        raise typer.BadParameter("--images needs --to PREFIX", param_hint="--to")
    if (keep_registry or platform) and images is None:
        raise typer.BadParameter(
            "--keep-registry and --platform go with --images; in a sync file use "
            "keep-registry: and platforms:"
        )
    if on_quota not in ("wait", "stop"):
        raise typer.BadParameter("use wait or stop", param_hint="--on-quota")
    if lock is not None and file is None:
        raise typer.BadParameter("--lock pins a sync FILE; a lock is itself an --images list")
    chosen = _shard(shard, shards)
    with reported_errors():
        verify = policy_of(verify_key, policy)
        spec = _spec(
            file, images, to, keep_registry, platform,
            referrers_wanted(referrers, referrers_optional), referrers_optional, verify,
        )  # fmt: skip
        if lock is not None:
            from imgmirror.findimages.lock import parse_lock, pin_spec  # noqa: PLC0415

            spec = pin_spec(spec, parse_lock(_read(lock), lock), lock)
        live = sys.stderr if not (quiet or as_json) and sys.stderr.isatty() else None
        beat = sys.stderr if live is None and not (quiet or as_json) else None
        lines = SyncLines(as_json=as_json, live=live, quiet=quiet, verbose=verbose, heartbeat=beat)
        try:
            report = sync(
                spec, dry_run=dry_run, check=check, jobs=jobs, fail_fast=fail_fast,
                shard=chosen, src_creds=src_creds, dest_creds=dest_creds, authfile=authfile,
                options=_options(ca_file, certs_dir, insecure_registry, timeout, on_quota),
                progress=lines, observer=lines, verify_cache=verify_cache,
            )  # fmt: skip
        finally:
            lines.close()
        _write_outputs(report, report_file, metrics_file)
    _finish(report, as_json=as_json, quiet=quiet)


def _shard(shard: str | None, shards: int | None) -> Shard | None:
    from imgmirror.syncing.shards import Shard, ShardError  # noqa: PLC0415

    if shard is not None and shards is not None:
        raise typer.BadParameter("give --shard I/N or --shards N, not both")
    try:
        if shards is not None:
            return Shard.from_environment(shards, os.environ)
        return Shard.parse(shard) if shard is not None else None
    except ShardError as exc:
        raise typer.BadParameter(str(exc), param_hint="--shard/--shards") from None


def _spec(
    file: str | None,
    images: str | None,
    to: str | None,
    keep_registry: bool,
    platform: list[str] | None,
    referrers: str | None,
    referrers_optional: bool,
    verify: Policy | None,
) -> SyncSpec:
    """The sync file, or the plain list, parsed (nothing contacted yet); ``verify`` replaces
    the file's ``defaults.verify`` (every image of a plain list)."""
    import attrs  # noqa: PLC0415

    from imgmirror.model.artifacts import ReferrerChoice  # noqa: PLC0415
    from imgmirror.model.platform import Platform  # noqa: PLC0415
    from imgmirror.syncing.file import parse_image_list  # noqa: PLC0415
    from imgmirror.syncing.items import load_sync_file  # noqa: PLC0415

    wanted_referrers = ReferrerChoice.parse(referrers, referrers_optional)
    if images is None:
        assert file is not None
        return load_sync_file(file, to=to, referrers=wanted_referrers, verify=verify)
    assert to is not None
    text = _read_stdin() if images == "-" else _read(images)
    wanted = tuple(Platform.parse(p) for p in platform) if platform else None
    spec = parse_image_list(
        text, "<stdin>" if images == "-" else images, to=to, keep_registry=keep_registry,
        platforms=wanted, referrers=wanted_referrers,
    )  # fmt: skip
    if verify is None:
        return spec
    return attrs.evolve(spec, entries=tuple(attrs.evolve(e, verify=verify) for e in spec.entries))


def _options(
    ca_file: str | None,
    certs_dir: list[str] | None,
    insecure: list[str] | None,
    timeout: float,
    on_quota: str,
) -> ClientOptions:
    import attrs  # noqa: PLC0415

    options = make_options(ca_file, certs_dir, insecure, timeout)
    quota: Literal["wait", "stop"] = "stop" if on_quota == "stop" else "wait"
    return attrs.evolve(options, rate_limit=attrs.evolve(options.rate_limit, on_quota=quota))


def _write_outputs(report: SyncReport, report_file: str | None, metrics_file: str | None) -> None:
    from imgmirror.syncing.outputs import write_metrics, write_report  # noqa: PLC0415

    if report_file is not None:
        write_report(report, report_file)
    if metrics_file is not None:
        write_metrics(report, metrics_file)


def _read(path: str) -> str:
    from imgmirror.errors import InvalidSyncFile  # noqa: PLC0415
    from imgmirror.model.documents import read_capped_text  # noqa: PLC0415

    try:
        return read_capped_text(path)
    except (OSError, ValueError) as exc:  # a DocumentLimit or a UnicodeDecodeError
        raise InvalidSyncFile(f"cannot read image list {path}: {exc}") from None


def _read_stdin() -> str:
    """The image list on stdin, one byte past the cap at most (parse_image_list refuses it)."""
    from imgmirror.model.documents import MAX_FILE_BYTES  # noqa: PLC0415

    return sys.stdin.read(MAX_FILE_BYTES + 1)


def _finish(report: SyncReport, *, as_json: bool, quiet: bool) -> None:
    if as_json:
        typer.echo(json.dumps(report.summary(), sort_keys=True))
    elif not quiet:
        typer.echo(_summary(report))
    for result in report.results:
        if result.action in _ERRORS:
            typer.echo(f"imgmirror: error: {result.source}: {with_origin(result)}", err=True)
    if report.failed > report.refused:
        raise typer.Exit(1)
    if report.refused:
        raise typer.Exit(REFUSED)
    if report.check and report.drift:
        raise typer.Exit(2)
