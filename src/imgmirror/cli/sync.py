"""``imgmirror sync``: mirror every image a sync file (or a plain list) selects.

Output: one line per image as it finishes (stdout), a summary, and the failures on stderr with
the same one-line errors as ``copy``; exit 1 if anything failed. ``--json`` prints one object
per image as it finishes and the summary object last. On a terminal, a live block on stderr
shows the images in flight and the overall count, bytes and rate.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Annotated, TextIO

import attrs
import typer

from imgmirror.cli.common import (
    DEFAULT_TIMEOUT,
    REFUSED,
    AuthfileOpt,
    CaFileOpt,
    CertsDirOpt,
    DestCredsOpt,
    InsecureOpt,
    JsonOpt,
    PlatformOpt,
    QuietOpt,
    SrcCredsOpt,
    TimeoutOpt,
    app,
    make_options,
    reported_errors,
)
from imgmirror.cli.referrer_options import ReferrersOpt, ReferrersOptionalOpt, referrers_wanted
from imgmirror.cli.terminal import human_bytes
from imgmirror.cli.verify_options import PolicyOpt, VerifyCacheOpt, VerifyKeyOpt, policy_of
from imgmirror.model.digest import Digest
from imgmirror.progress import ProgressListener
from imgmirror.syncing.report import SyncObserver, SyncReport, SyncResult

__all__ = ["SyncLines", "sync_command"]

_VERB = {"copied": "copied", "unchanged": "unchanged", "would-copy": "would copy"}


def result_line(result: SyncResult) -> str:
    """The text line of one finished image."""
    if result.action in ("failed", "refused"):
        return f"{result.action:<9} {result.source} -> {result.destination}: {result.error}"
    size = f" ({human_bytes(result.bytes_copied)})" if result.action == "copied" else ""
    verb = _VERB.get(result.action, result.action)
    return f"{verb:<9} {result.source} -> {result.destination} {result.digest}{size}"


class SyncLines(SyncObserver, ProgressListener):
    """Prints each finished image; on a terminal also a live block of the images in flight
    and an overall line (redrawn at most ten times a second)."""

    def __init__(self, *, as_json: bool, live: TextIO | None, quiet: bool = False) -> None:
        self.as_json = as_json
        self.quiet = quiet
        self.live = live
        self._lock = threading.Lock()
        self._in_flight: dict[str, float] = {}
        self._total = 0
        self._done = 0
        self._bytes = 0
        self._drawn = 0
        self._last = 0.0
        self._start = time.monotonic()

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
            elif not self.quiet:
                sys.stdout.write(result_line(result) + "\n")
            sys.stdout.flush()
            self._draw(force=True)

    def blob_advanced(self, digest: Digest, nbytes: int) -> None:
        with self._lock:
            self._bytes += nbytes
            self._draw()

    def close(self) -> None:
        """Remove the live block."""
        with self._lock:
            self._clear()

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
    done = f"{report.copied} copied, {report.unchanged} unchanged, {report.failed} failed"
    if report.refused:
        done += f", {report.refused} refused"
    if report.dry_run:
        done = f"{report.count('would-copy')} would copy, {report.unchanged} unchanged, " + (
            f"{report.failed} failed (dry run: nothing written)"
        )
    return f"sync: {done}; {human_bytes(report.bytes_copied)} in {report.seconds:.1f} s"


SYNC_HELP = """Mirror a set of images: every image a sync file selects, or a plain list.

FILE is a sync file (YAML, see docs/sync.md): images by tag or digest, repositories with \
tags, tags-regex, exclude-regex, semver ranges, newest N or all-tags, and where they go. \
--images reads a plain list instead (one reference per line, # comments: what \
`kubeadm config images list` prints; - for stdin) and needs --to.

Naming under a prefix P: registry.k8s.io/pause:3.9 -> P/pause:3.9 (the registry host \
dropped, the path kept); with keep-registry -> P/registry.k8s.io/pause:3.9.

Each image costs a manifest HEAD at each end when nothing changed (no manifest GET, no blob \
request); only changed tags are copied, digests kept. A failed image does not stop the \
others; exit status 1 if any failed, else 3 if the verification policy refused any.

--policy FILE and --verify-key FILE replace the file's defaults.verify; an entry's own \
verify: wins (docs/verify.md). --verify-cache FILE keeps accepted decisions between runs.

--referrers[=TYPE,...] and --referrers-optional replace the file's defaults.referrers and \
defaults.referrers-optional; an entry's own referrers: key wins. With referrers, an image \
already there is still read to carry the referrers added since.
"""


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
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
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
    from imgmirror.model.artifacts import ReferrerChoice  # noqa: PLC0415
    from imgmirror.model.platform import Platform  # noqa: PLC0415
    from imgmirror.syncing.file import parse_image_list  # noqa: PLC0415
    from imgmirror.syncing.items import load_sync_file  # noqa: PLC0415
    from imgmirror.syncing.shards import Shard, ShardError  # noqa: PLC0415

    if (file is None) == (images is None):
        raise typer.BadParameter("give a sync FILE or --images FILE (not both)")
    if images is not None and to is None:
        raise typer.BadParameter("--images needs --to PREFIX", param_hint="--to")
    if (keep_registry or platform) and images is None:
        raise typer.BadParameter(
            "--keep-registry and --platform go with --images; in a sync file use "
            "keep-registry: and platforms:"
        )
    if shard is not None and shards is not None:
        raise typer.BadParameter("give --shard I/N or --shards N, not both")
    if lock is not None and file is None:
        raise typer.BadParameter("--lock pins a sync FILE; a lock is itself an --images list")
    try:
        chosen = Shard.parse(shard) if shard is not None else None
        if shards is not None:
            chosen = Shard.from_environment(shards, os.environ)
    except ShardError as exc:
        raise typer.BadParameter(str(exc), param_hint="--shard/--shards") from None
    # SIGTERM/SIGHUP (a CronJob's pod going away) unwind like Ctrl-C: exit 143/129
    with reported_errors():
        wanted_referrers = ReferrerChoice.parse(
            referrers_wanted(referrers, referrers_optional), referrers_optional
        )
        verify = policy_of(verify_key, policy)
        if images is not None:
            assert to is not None
            text = _read_stdin() if images == "-" else _read(images)
            wanted = tuple(Platform.parse(p) for p in platform) if platform else None
            spec = parse_image_list(
                text, "<stdin>" if images == "-" else images, to=to,
                keep_registry=keep_registry, platforms=wanted,
                referrers=wanted_referrers,
            )  # fmt: skip
            if verify is not None:
                entries = tuple(attrs.evolve(e, verify=verify) for e in spec.entries)
                spec = attrs.evolve(spec, entries=entries)
        else:
            assert file is not None
            spec = load_sync_file(file, to=to, referrers=wanted_referrers, verify=verify)
            if lock is not None:
                from imgmirror.findimages.lock import parse_lock, pin_spec  # noqa: PLC0415

                spec = pin_spec(spec, parse_lock(_read(lock), lock), lock)
        live = sys.stderr if not (quiet or as_json) and sys.stderr.isatty() else None
        lines = SyncLines(as_json=as_json, live=live, quiet=quiet)
        try:
            report = sync(
                spec, dry_run=dry_run, jobs=jobs, fail_fast=fail_fast, shard=chosen,
                src_creds=src_creds, dest_creds=dest_creds, authfile=authfile,
                options=make_options(ca_file, certs_dir, insecure_registry, timeout),
                progress=lines, observer=lines, verify_cache=verify_cache,
            )  # fmt: skip
        finally:
            lines.close()
    _finish(report, as_json=as_json, quiet=quiet)


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
        if result.action in ("failed", "refused"):
            typer.echo(f"imgmirror: error: {result.source}: {result.error}", err=True)
    if report.failed:
        raise typer.Exit(1)
    if report.refused:
        raise typer.Exit(REFUSED)
