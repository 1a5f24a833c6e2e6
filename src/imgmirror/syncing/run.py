"""Keep a set of images mirrored: [sync_spec][] runs a sync file over one client pool.

The run has three steps. The file is parsed and checked completely (nothing is contacted
before it is). Each entry is expanded into images
([imgmirror.syncing.items][imgmirror.syncing.items]): a
repository entry lists the source's tags once and selects from them. Each image is then
checked cheaply: a manifest ``HEAD`` at the source (skipped for an image named by digest)
and one at the destination; equal digests mean ``unchanged`` and nothing else is sent, so a
no-op re-run costs two requests per tag and no manifest or blob is downloaded. Only changed
images are copied, byte for byte as ``copy`` does. A dry run (and a check) stops after those
``HEAD`` requests and reports what it would do.

Each image's result (its state, the digest its tag held before, bytes, requests, seconds) is
handed to the observer in file order, and the report lists them so too, whatever order the
images finished in.

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
from contextvars import copy_context
from typing import Any, TypeVar

import attrs

from imgmirror.auth.credentials import Credential, CredentialInput
from imgmirror.errors import ImgmirrorError, NotFound, PolicyRefused, QuotaExhausted
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
from imgmirror.syncing.verifying import Gates
from imgmirror.transport.client import RegistryClient
from imgmirror.transport.limiter import LimiterStats
from imgmirror.transport.meter import RequestTally, metering
from imgmirror.verify.policy import Policy

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
    observer: _InOrder
    progress: ProgressListener
    stop: threading.Event = attrs.field(factory=threading.Event)
    aborted: threading.Event = attrs.field(factory=threading.Event)
    gates: Gates = attrs.field(factory=Gates)

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
            raise fresh.source_error or _missing(item)
        old = str(fresh.present.digest) if fresh.present is not None else None
        state = "unchanged" if fresh.current else "would-move" if old else "would-copy"
        client = self.src(source.registry)
        checked = self.gates.verdict(client, item, str(fresh.wanted), fresh.current)
        return _result(item, str(fresh.wanted), state, old=old, verification=checked)

    def copy(self, item: SyncItem) -> CopyResult:
        """One image through the pool's blob engine (shared budget, mounts, dedupe)."""
        return copy_image(
            self.pool, item.source, item.destination, platforms=item.platforms,
            src_creds=self.src_cred, dest_creds=self.dst_cred, progress=self.progress,
            cancel=self.aborted, referrers=item.referrers, verify=self.gates.get(item.verify),
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
        old = copied.previous
        checked = copied.verification.to_json() if copied.verification else None
        if copied.unchanged or old == copied.digest:
            return _result(
                item, copied.digest, "unchanged", copied.bytes_copied, verification=checked
            )
        state = "moved" if old else "copied"
        return _result(
            item, copied.digest, state, copied.bytes_copied, old=old, verification=checked
        )

    def one(self, slot: tuple[int, SyncItem]) -> SyncResult | None:
        """Settle one image, counting its requests and time; the result goes to the
        observer once every image before it in the file has gone."""
        index, item = slot
        if self.stop.is_set():
            self.observer.skip(index)
            return None
        self.observer.started(str(item.source), str(item.destination))
        tally, started = RequestTally(), time.monotonic()
        try:
            with metering(tally):
                result = self.settle(item)
        except PolicyRefused as exc:
            refusal = {"digest": exc.digest, "accepted": False, "reason": exc.reason}
            result = _result(item, None, "refused", error=str(exc), verification=refusal)
            if self.fail_fast:
                self.stop.set()
        except ImgmirrorError as exc:
            result = _result(item, None, _failure_state(exc), error=str(exc))
            if self.fail_fast or isinstance(exc, QuotaExhausted):
                self.stop.set()
        result = attrs.evolve(result, requests=tally.requests, seconds=time.monotonic() - started)
        self.observer.finished_at(index, result)
        return result


def _missing(item: SyncItem) -> NotFound:
    error = NotFound(
        f"{item.source} does not exist at the source", status=404, method="HEAD",
        url=str(item.source), hint=f"check the tag or digest ({item.origin})",
    )  # fmt: skip
    error.role = "source"
    return error


def _failure_state(exc: ImgmirrorError) -> str:
    """``missing-at-source`` for what the source does not have, else ``failed``."""
    return "missing-at-source" if isinstance(exc, NotFound) and exc.role == "source" else "failed"


def _result(
    item: SyncItem,
    digest: str | None,
    action: str,
    nbytes: int = 0,
    *,
    error: str | None = None,
    old: str | None = None,
    verification: dict[str, Any] | None = None,
) -> SyncResult:
    return SyncResult(
        source=str(item.source),
        destination=str(item.destination),
        digest=digest,
        action=action,
        bytes_copied=nbytes,
        error=error,
        origin=item.origin,
        old_digest=old,
        verification=verification,
    )


def _entry_failure(entry: SyncEntry, exc: ImgmirrorError) -> SyncResult:
    destination = str(entry.target or entry.prefix)
    source = entry.source.name if entry.selector else str(entry.source)
    state = _failure_state(exc)
    return SyncResult(source, destination, None, state, 0, str(exc), entry.origin)


class _InOrder:
    """Hands results to the caller's observer in file order: a result waits until every
    one before it has been handed on (or skipped, when the run stopped first)."""

    def __init__(self, observer: SyncObserver) -> None:
        self.observer = observer
        self._lock = threading.Lock()
        self._waiting: dict[int, SyncResult | None] = {}
        self._next = 0

    def expanded(self, images: int) -> None:
        self.observer.expanded(images)

    def started(self, source: str, destination: str) -> None:
        self.observer.started(source, destination)

    def finished_at(self, index: int, result: SyncResult | None) -> None:
        with self._lock:
            self._waiting[index] = result
            while self._next in self._waiting:
                ready = self._waiting.pop(self._next)
                self._next += 1
                if ready is not None:
                    self.observer.finished(ready)

    def skip(self, index: int) -> None:
        self.finished_at(index, None)


def _map(run: _Run, function: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """Run ``function`` over ``items`` on ``run.jobs`` threads; Ctrl-C stops everything."""
    with ThreadPoolExecutor(max_workers=max(1, min(run.jobs, len(items) or 1))) as pool:
        futures: list[Future[R]] = [
            pool.submit(copy_context().run, function, item) for item in items
        ]
        try:
            wait(futures)
        except BaseException:
            run.abort()
            for future in futures:
                future.cancel()
            raise
    return [future.result() for future in futures]


def _expand_all(run: _Run, entries: Sequence[SyncEntry]) -> list[SyncItem | SyncResult]:
    """Every entry's images (each once, where it first appears) or its failure, in file
    order."""

    def failed(entry: SyncEntry, exc: ImgmirrorError) -> SyncResult:
        if run.fail_fast:
            run.stop.set()
        return _entry_failure(entry, exc)

    def expand(entry: SyncEntry) -> tuple[list[SyncItem], SyncResult | None]:
        if run.stop.is_set():
            return [], None
        try:
            found, refused = run.expand(entry)
        except ImgmirrorError as exc:
            return [], failed(entry, exc)
        # a tag list holding names that are not tags: the entry fails, its valid tags still run
        return found, None if refused is None else failed(entry, refused)

    seen: set[tuple[Reference, Reference]] = set()
    slots: list[SyncItem | SyncResult] = []
    for found, failure in _map(run, expand, entries):
        if failure is not None:
            slots.append(failure)
        for item in found:
            if (item.source, item.destination) not in seen:
                seen.add((item.source, item.destination))
                slots.append(item)
    return slots


def _settle_all(run: _Run, slots: list[SyncItem | SyncResult]) -> list[SyncResult]:
    """Each image settled in parallel; an entry's failure passed on in its place."""
    work: list[tuple[int, SyncItem]] = []
    for index, slot in enumerate(slots):
        if isinstance(slot, SyncResult):
            run.observer.finished_at(index, slot)
        else:
            work.append((index, slot))
    done = {index: r for (index, _), r in zip(work, _map(run, run.one, work), strict=True)}
    results: list[SyncResult] = []
    for index, slot in enumerate(slots):
        settled = slot if isinstance(slot, SyncResult) else done[index]
        if settled is not None:  # None: not started, the run had stopped
            results.append(settled)
    return results


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
    check: bool = False,
    fail_fast: bool = False,
    shard: Shard | str | None = None,
    observer: SyncObserver | None = None,
    verify: Policy | None = None,
    verify_cache: str | None = None,
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
        check=check,
        fail_fast=fail_fast,
        shard=Shard.parse(shard) if isinstance(shard, str) else shard,
        observer=observer,
        verify=verify,
        verify_cache=verify_cache,
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
    check: bool = False,
    fail_fast: bool = False,
    shard: Shard | None = None,
    observer: SyncObserver | None = None,
    verify: Policy | None = None,
    verify_cache: str | None = None,
) -> SyncReport:
    """Mirror every image ``spec`` selects inside ``pool`` (its clients, tokens, blob engine
    and ``jobs``; the file's ``authfile:`` is asked first when the pool was given none); see
    [imgmirror.sync][imgmirror.api.sync.sync]."""
    started, wall = time.monotonic(), time.time()
    if not isinstance(spec, SyncSpec):
        spec = load_sync_file(spec, to=to, verify=verify)
    entries = [e for e in spec.entries if shard is None or shard.owns(e.key)]
    wanted = parse_platforms(platforms)
    if wanted is not None:
        entries = [attrs.evolve(e, platforms=tuple(wanted)) for e in entries]
    src_cred, dst_cred = src_creds, dest_creds
    if src_cred is not None:
        only_one_registry("source", {e.source.registry for e in entries})
    watcher = _InOrder(observer or SyncObserver())
    pool = pool.scoped(authfile=spec.authfile)
    before = pool.limiter_stats()
    run = _Run(
        pool, src_cred, dst_cred, pool.jobs, dry_run or check, fail_fast, watcher,
        progress or NullProgress(),
    )  # fmt: skip
    run.gates = Gates.load((e.verify for e in entries), verify_cache)
    slots = _expand_all(run, entries)
    items = [slot for slot in slots if isinstance(slot, SyncItem)]
    if dst_cred is not None:
        only_one_registry("destination", {i.destination.registry for i in items})
    watcher.expanded(len(items))
    try:
        results = _settle_all(run, slots)
    finally:
        run.gates.save()
    return SyncReport(
        tuple(results), time.monotonic() - started, dry_run or check, check,
        shard=str(shard) if shard is not None else None, started=wall,
        registries=_registries_since(pool, before),
    )  # fmt: skip


def _registries_since(pool: ClientPool, before: dict[str, LimiterStats]) -> dict[str, LimiterStats]:
    """What went to each registry during the run (the pool may have served calls before)."""
    now = pool.limiter_stats()
    return {
        registry: stats.since(before.get(registry, LimiterStats()))
        for registry, stats in now.items()
        if stats.requests > before.get(registry, LimiterStats()).requests
    }
