"""Keep a set of images mirrored: :func:`sync_spec` runs a sync file over one client pool.

The run has three steps. The file is parsed and checked completely (nothing is contacted
before it is). Each entry is expanded into images (:mod:`imgmirror.syncing.items`): a
repository entry lists the source's tags once and selects from them. Each image is then
checked cheaply: a manifest ``HEAD`` at the source (skipped for an image named by digest)
and one at the destination; equal digests mean ``unchanged`` and nothing else is sent, so a
no-op re-run costs two requests per tag and no manifest or blob is downloaded. Only changed
images are copied, byte for byte as ``copy`` does.

Images run in parallel (``jobs`` at once) over one client pool, so each registry is pinged and
authenticated once per scope set, and copied with
[copy_image][imgmirror.ops.copy.copy_image] through the pool's blob engine: one budget of ``jobs``
blob transfers for the whole run, and a blob two images need at the same destination registry
is transferred once and mounted into the second repository. A failed image does not stop the
others unless ``fail_fast``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TypeVar

import attrs

from imgmirror.auth.credentials import Credential, CredentialInput
from imgmirror.errors import ImgmirrorError
from imgmirror.model.platform import PlatformsArg, parse_platforms
from imgmirror.model.reference import Reference
from imgmirror.ops.copy import CopyResult, copy_image
from imgmirror.progress import NullProgress, ProgressListener
from imgmirror.registry.freshness import check_freshness
from imgmirror.registry.pool import ClientPool
from imgmirror.syncing.file import SyncEntry, SyncSpec
from imgmirror.syncing.items import SyncItem, expand_listed, load_sync_file, only_one_registry
from imgmirror.syncing.report import SyncObserver, SyncReport, SyncResult
from imgmirror.syncing.shards import Shard
from imgmirror.transport.client import RegistryClient

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger("imgmirror")

__all__ = ["sync", "sync_spec"]


@attrs.define
class _Run:
    pool: ClientPool
    src_cred: Credential | None
    dst_cred: Credential | None
    jobs: int
    dry_run: bool
    fail_fast: bool
    observer: SyncObserver
    progress: ProgressListener
    stop: threading.Event = attrs.field(factory=threading.Event)
    aborted: threading.Event = attrs.field(factory=threading.Event)

    def abort(self) -> None:
        """Ctrl-C: start nothing more and stop every transfer at its next chunk."""
        self.stop.set()
        self.aborted.set()

    def src(self, registry: str) -> RegistryClient:
        return self.pool.client(registry, self.src_cred, role="source")

    def dst(self, registry: str) -> RegistryClient:
        return self.pool.client(registry, self.dst_cred, role="destination")

    def expand(self, entry: SyncEntry) -> tuple[list[SyncItem], ImgmirrorError | None]:
        return expand_listed(self.src(entry.source.registry), entry)

    def check(self, item: SyncItem) -> SyncResult:
        """A dry run's answer for one image: a manifest ``HEAD`` at each end (the index too
        when platforms narrow one), nothing written.

        Raises:
            ImgmirrorError: the image is not at the source, or the source failed.
        """
        source, destination = item.source, item.destination
        fresh = check_freshness(
            self.src(source.registry),
            source,
            self.dst(destination.registry),
            destination,
            item.platforms,
        )
        if fresh.wanted is None:
            raise fresh.source_error or ImgmirrorError(f"{source} does not exist at the source")
        return _result(item, str(fresh.wanted), "unchanged" if fresh.current else "would-copy")

    def copy(self, item: SyncItem) -> CopyResult:
        """One image through the pool's blob engine (shared budget, mounts, dedupe)."""
        return copy_image(
            self.pool, item.source, item.destination, platforms=item.platforms,
            src_creds=self.src_cred, dest_creds=self.dst_cred, progress=self.progress,
            cancel=self.aborted, referrers=item.referrers,
        )  # fmt: skip

    def settle(self, item: SyncItem) -> SyncResult:
        """Check (a dry run) or copy one image: ``copy_image`` itself ends after a manifest
        ``HEAD`` at each end when the destination is current (with referrers, an unchanged
        image is still read: new referrers may hang off it)."""
        if self.dry_run:
            return self.check(item)
        copied = self.copy(item)
        for failure in copied.referrers.failed if copied.referrers else ():
            log.warning("%s: %s", item.destination, failure)
        if copied.unchanged:
            return _result(item, copied.digest, "unchanged")
        return _result(item, copied.digest, "copied", copied.bytes_copied)

    def one(self, item: SyncItem) -> SyncResult | None:
        if self.stop.is_set():
            return None
        self.observer.started(str(item.source), str(item.destination))
        try:
            result = self.settle(item)
        except ImgmirrorError as exc:
            result = _result(item, None, "failed", error=str(exc))
            if self.fail_fast:
                self.stop.set()
        self.observer.finished(result)
        return result


def _result(
    item: SyncItem, digest: str | None, action: str, nbytes: int = 0, error: str | None = None
) -> SyncResult:
    return SyncResult(
        source=str(item.source),
        destination=str(item.destination),
        digest=digest,
        action=action,
        bytes_copied=nbytes,
        error=error,
        origin=item.origin,
    )


def _entry_failure(entry: SyncEntry, exc: ImgmirrorError) -> SyncResult:
    destination = str(entry.target or entry.prefix)
    source = entry.source.name if entry.selector else str(entry.source)
    return SyncResult(source, destination, None, "failed", 0, str(exc), entry.origin)


def _map(run: _Run, function: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """Run ``function`` over ``items`` on ``run.jobs`` threads; Ctrl-C stops everything."""
    with ThreadPoolExecutor(max_workers=max(1, min(run.jobs, len(items) or 1))) as pool:
        futures: list[Future[R]] = [pool.submit(function, item) for item in items]
        try:
            wait(futures)
        except BaseException:
            run.abort()
            for future in futures:
                future.cancel()
            raise
    return [future.result() for future in futures]


def _expand_all(run: _Run, entries: Sequence[SyncEntry]) -> tuple[list[SyncItem], list[SyncResult]]:
    def failed(entry: SyncEntry, exc: ImgmirrorError) -> SyncResult:
        failure = _entry_failure(entry, exc)
        run.observer.finished(failure)
        if run.fail_fast:
            run.stop.set()
        return failure

    def expand(entry: SyncEntry) -> tuple[list[SyncItem], SyncResult | None]:
        if run.stop.is_set():
            return [], None
        try:
            found, refused = run.expand(entry)
        except ImgmirrorError as exc:
            return [], failed(entry, exc)
        return found, None if refused is None else failed(entry, refused)

    items: dict[tuple[Reference, Reference], SyncItem] = {}
    failures: list[SyncResult] = []
    for found, failure in _map(run, expand, entries):
        if failure is not None:
            failures.append(failure)
        for item in found:
            items.setdefault((item.source, item.destination), item)
    return list(items.values()), failures


def sync(
    pool: ClientPool,
    spec: SyncSpec | str | os.PathLike[str],
    *,
    to: str | None = None,
    platforms: PlatformsArg = None,
    src_creds: CredentialInput = None,
    dest_creds: CredentialInput = None,
    progress: ProgressListener | None = None,
    dry_run: bool = False,
    fail_fast: bool = False,
    shard: Shard | str | None = None,
    observer: SyncObserver | None = None,
) -> SyncReport:
    """[imgmirror.sync][imgmirror.api.sync.sync] inside ``pool``: its arguments parsed into
    values, then [sync_spec][imgmirror.syncing.run.sync_spec].

    Raises:
        ShardError: ``shard`` is not ``I/N``.
    """
    return sync_spec(
        pool,
        spec,
        to=to,
        platforms=platforms,
        src_creds=Credential.coerce(src_creds, setting="src_creds"),
        dest_creds=Credential.coerce(dest_creds, setting="dest_creds"),
        progress=progress,
        dry_run=dry_run,
        fail_fast=fail_fast,
        shard=Shard.parse(shard) if isinstance(shard, str) else shard,
        observer=observer,
    )


def sync_spec(
    pool: ClientPool,
    spec: SyncSpec | str | os.PathLike[str],
    *,
    to: str | None = None,
    platforms: PlatformsArg = None,
    src_creds: Credential | None = None,
    dest_creds: Credential | None = None,
    progress: ProgressListener | None = None,
    dry_run: bool = False,
    fail_fast: bool = False,
    shard: Shard | None = None,
    observer: SyncObserver | None = None,
) -> SyncReport:
    """Mirror every image ``spec`` selects inside ``pool`` (its clients, tokens, blob engine
    and ``jobs``; the file's ``authfile:`` is asked first when the pool was given none); see
    [imgmirror.sync][imgmirror.api.sync.sync]."""
    started = time.monotonic()
    if not isinstance(spec, SyncSpec):
        spec = load_sync_file(spec, to=to)
    entries = [e for e in spec.entries if shard is None or shard.owns(e.key)]
    wanted = parse_platforms(platforms)
    if wanted is not None:
        entries = [attrs.evolve(e, platforms=tuple(wanted)) for e in entries]
    src_cred, dst_cred = src_creds, dest_creds
    if src_cred is not None:
        only_one_registry("source", {e.source.registry for e in entries})
    watcher = observer or SyncObserver()
    pool = pool.scoped(authfile=spec.authfile)
    run = _Run(
        pool, src_cred, dst_cred, pool.jobs, dry_run, fail_fast, watcher,
        progress or NullProgress(),
    )  # fmt: skip
    items, failures = _expand_all(run, entries)
    if dst_cred is not None:
        only_one_registry("destination", {i.destination.registry for i in items})
    watcher.expanded(len(items))
    done = _map(run, run.one, items)
    results = failures + [r for r in done if isinstance(r, SyncResult)]
    return SyncReport(tuple(results), time.monotonic() - started, dry_run)
