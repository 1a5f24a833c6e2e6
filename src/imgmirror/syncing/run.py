"""Keep a set of images mirrored: :func:`sync` runs a sync file over one session.

The run has three steps. The file is parsed and checked completely (nothing is contacted
before it is). Each entry is expanded into images (:mod:`imgmirror.syncing.items`): a
repository entry lists the source's tags once and selects from them. Each image is then
checked cheaply: a manifest ``HEAD`` at the source (skipped for an image named by digest)
and one at the destination; equal digests mean ``unchanged`` and nothing else is sent, so a
no-op re-run costs two requests per tag and no manifest or blob is downloaded. Only changed
images are copied, byte for byte as ``copy`` does.

Images run in parallel (``jobs`` at once) over one :class:`~imgmirror.session.Session`, so each
registry is pinged and authenticated once per scope set, and copied with
:func:`~imgmirror.ops.copy.copy_image` through the session's blob engine: one budget of ``jobs``
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
from typing import Any, TypeVar

import attrs

from imgmirror.auth.credentials import Credential, CredentialInput
from imgmirror.auth.keychain import Keychain
from imgmirror.errors import ImgmirrorError, PolicyRefused
from imgmirror.model import mediatypes
from imgmirror.model.artifacts import ArtifactFilter
from imgmirror.model.imagetree import choose_children, subset_index
from imgmirror.model.manifest import ImageIndex
from imgmirror.model.platform import PlatformsArg, parse_platforms
from imgmirror.model.reference import Reference
from imgmirror.ops.copy import CopyResult, copy_image
from imgmirror.progress import NullProgress, ProgressListener
from imgmirror.session import DEFAULT_JOBS, Session
from imgmirror.syncing.file import SyncEntry, SyncSpec
from imgmirror.syncing.items import SyncItem, expand_with_tags, load_sync_file, only_one_registry
from imgmirror.syncing.report import SyncObserver, SyncReport, SyncResult
from imgmirror.syncing.shards import Shard
from imgmirror.syncing.verifying import Gates
from imgmirror.transport.client import RegistryClient
from imgmirror.transport.tls import ClientOptions
from imgmirror.verify.policy import Policy

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger("imgmirror")

__all__ = ["sync", "sync_spec"]


@attrs.define
class _Run:
    session: Session
    src_cred: Credential | None
    dst_cred: Credential | None
    jobs: int
    dry_run: bool
    fail_fast: bool
    observer: SyncObserver
    progress: ProgressListener
    stop: threading.Event = attrs.field(factory=threading.Event)
    aborted: threading.Event = attrs.field(factory=threading.Event)
    gates: Gates = attrs.field(factory=Gates)

    def abort(self) -> None:
        """Ctrl-C: start nothing more and stop every transfer at its next chunk."""
        self.stop.set()
        self.aborted.set()

    def src(self, registry: str) -> RegistryClient:
        return self.session.client(registry, self.src_cred, role="source")

    def dst(self, registry: str) -> RegistryClient:
        return self.session.client(registry, self.dst_cred, role="destination")

    def expand(self, entry: SyncEntry) -> list[SyncItem]:
        return expand_with_tags(self.src(entry.source.registry), entry)

    def wanted_digest(self, item: SyncItem) -> str:
        """The digest the destination must hold: one HEAD at the source (none by digest);
        with ``platforms`` narrowing an index, the index is read to compute it."""
        source = item.source
        client = self.src(source.registry)
        if source.digest is not None and item.platforms is None:
            return str(source.digest)
        found = client.head_manifest(source.repository, source.identifier)
        if found is None:
            raise ImgmirrorError(f"{source} does not exist at the source")
        if item.platforms is None or not mediatypes.is_index(found.media_type):
            return str(found.digest)
        index = client.get_manifest(source.repository, str(found.digest))
        assert isinstance(index, ImageIndex)
        chosen = choose_children(index, item.platforms)
        if len(chosen) == 1:
            return str(chosen[0].digest)
        return str(subset_index(index, chosen).digest)

    def check(self, item: SyncItem) -> tuple[str, bool]:
        """(wanted digest, already there): a manifest HEAD at each end."""
        wanted = self.wanted_digest(item)
        dest = item.destination
        there = self.dst(dest.registry).head_manifest(
            dest.repository, dest.tag or wanted if dest.digest is None else str(dest.digest)
        )
        return wanted, there is not None and str(there.digest) == wanted

    def copy(self, item: SyncItem) -> CopyResult:
        """One image through the session's blob engine (shared budget, mounts, dedupe)."""
        return copy_image(
            self.session, item.source, item.destination, platforms=item.platforms,
            src_creds=self.src_cred, dest_creds=self.dst_cred, progress=self.progress,
            cancel=self.aborted, referrers=_names(item.referrers),
            referrers_optional=item.referrers_optional, verify=self.gates.get(item.verify),
        )  # fmt: skip

    def settle(self, item: SyncItem) -> SyncResult:
        """Check and copy one image. A whole image to a tag goes straight to ``copy_image``,
        which ends after a manifest HEAD at each end when the digests match; a dry run, a
        platform subset or a digest-only destination is checked here first."""
        if self.dry_run or item.platforms is not None or item.destination.tag is None:
            wanted, there = self.check(item)
            # with referrers an unchanged image is still copied: new referrers may hang off it
            if self.dry_run or (there and item.referrers is None):
                checked = self.gates.verdict(self.src(item.source.registry), item, wanted, there)
                action = "unchanged" if there else "would-copy"
                return _result(item, wanted, action, verification=checked)
        copied = self.copy(item)
        for failure in copied.referrers.failed if copied.referrers else ():
            log.warning("%s: %s", item.destination, failure)
        checked = copied.verification.to_json() if copied.verification else None
        if copied.unchanged:
            return _result(item, copied.digest, "unchanged", verification=checked)
        return _result(item, copied.digest, "copied", copied.bytes_copied, verification=checked)

    def one(self, item: SyncItem) -> SyncResult | None:
        if self.stop.is_set():
            return None
        self.observer.started(str(item.source), str(item.destination))
        try:
            result = self.settle(item)
        except PolicyRefused as exc:
            refusal = {"digest": exc.digest, "accepted": False, "reason": exc.reason}
            result = _result(item, None, "refused", error=str(exc), verification=refusal)
            if self.fail_fast:
                self.stop.set()
        except ImgmirrorError as exc:
            result = _result(item, None, "failed", error=str(exc))
            if self.fail_fast:
                self.stop.set()
        self.observer.finished(result)
        return result


def _names(wanted: ArtifactFilter | None) -> bool | list[str] | None:
    """``copy_image``'s ``referrers=`` for a filter (True: every artifact type)."""
    if wanted is None:
        return None
    return True if wanted.everything else list(wanted.names)


def _result(
    item: SyncItem,
    digest: str | None,
    action: str,
    nbytes: int = 0,
    *,
    error: str | None = None,
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
        verification=verification,
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
    def expand(entry: SyncEntry) -> list[SyncItem] | SyncResult:
        if run.stop.is_set():
            return []
        try:
            return run.expand(entry)
        except ImgmirrorError as exc:
            failure = _entry_failure(entry, exc)
            run.observer.finished(failure)
            if run.fail_fast:
                run.stop.set()
            return failure

    items: dict[tuple[Reference, Reference], SyncItem] = {}
    failures: list[SyncResult] = []
    for outcome in _map(run, expand, entries):
        if isinstance(outcome, SyncResult):
            failures.append(outcome)
            continue
        for item in outcome:
            items.setdefault((item.source, item.destination), item)
    return list(items.values()), failures


def sync(
    spec: SyncSpec | str | os.PathLike[str],
    *,
    to: str | None = None,
    platforms: PlatformsArg = None,
    src_creds: CredentialInput = None,
    dest_creds: CredentialInput = None,
    jobs: int = DEFAULT_JOBS,
    timeout: float | None = None,
    progress: ProgressListener | None = None,
    dry_run: bool = False,
    fail_fast: bool = False,
    shard: Shard | str | None = None,
    observer: SyncObserver | None = None,
    authfile: str | None = None,
    keychain: Keychain | None = None,
    options: ClientOptions | None = None,
    verify: Policy | None = None,
    verify_cache: str | None = None,
) -> SyncReport:
    """Mirror every image a sync file selects (see docs/sync.md): a one-shot
    :meth:`Session.sync <imgmirror.session.Session.sync>` in a session of its own.

    Args:
        spec: a path to a sync file, or a parsed :class:`~imgmirror.syncing.file.SyncSpec`.
        to: destination prefix replacing the file's ``defaults.to`` (only with a path).
        platforms: ``"linux/arm64"`` or a list: every entry takes these platforms, in place
            of the file's ``platforms:``. None: as the file says.
        src_creds, dest_creds: explicit credentials; each only when the file reads from
            (writes to) a single registry. Otherwise use ``authfile`` or the keychain.
        jobs: images checked and blobs transferred at once (one budget for the whole run).
        timeout: seconds a request may wait for a reply or stall (default:
            ``options.timeout``).
        progress: per-blob events of the copies.
        dry_run: check what is there and report ``would-copy``/``unchanged``; write nothing.
        fail_fast: stop at the first failure (images not started are not reported).
        shard: ``"I/N"`` or a :class:`~imgmirror.syncing.shards.Shard`: only the entries in it.
        observer: per-image events (started, finished with its result).
        authfile, keychain, options: as for :func:`imgmirror.copy`; ``authfile`` wins over
            the file's ``defaults.authfile``.
        verify: a verification policy replacing the file's ``defaults.verify`` (only with a
            path); an entry's own ``verify:`` wins. See docs/verify.md.
        verify_cache: a file keeping accepted decisions between runs.

    Returns:
        A :class:`~imgmirror.syncing.report.SyncReport`; ``report.failed`` counts failures
        (a failure never raises).

    Raises:
        InvalidSyncFile: the file is malformed (before anything is contacted).
        CredentialsError: explicit credentials with several registries on that side.
    """
    with Session(
        options, authfile=authfile, keychain=keychain, jobs=jobs, timeout=timeout
    ) as session:
        return session.sync(
            spec, to=to, platforms=platforms, src_creds=src_creds, dest_creds=dest_creds,
            progress=progress, dry_run=dry_run, fail_fast=fail_fast, shard=shard,
            observer=observer, verify=verify, verify_cache=verify_cache,
        )  # fmt: skip


def sync_spec(
    session: Session,
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
    verify: Policy | None = None,
    verify_cache: str | None = None,
) -> SyncReport:
    """:func:`sync` inside ``session``: its clients, tokens, blob engine and ``jobs``; the
    file's ``authfile:`` is asked first when the session was given no ``authfile``."""
    started = time.monotonic()
    if not isinstance(spec, SyncSpec):
        spec = load_sync_file(spec, to=to, verify=verify)
    chosen = Shard.parse(shard) if isinstance(shard, str) else shard
    entries = [e for e in spec.entries if chosen is None or chosen.owns(e.key)]
    wanted = parse_platforms(platforms)
    if wanted is not None:
        entries = [attrs.evolve(e, platforms=tuple(wanted)) for e in entries]
    src_cred = Credential.coerce(src_creds, setting="src_creds")
    dst_cred = Credential.coerce(dest_creds, setting="dest_creds")
    if src_cred is not None:
        only_one_registry("source", {e.source.registry for e in entries})
    watcher = observer or SyncObserver()
    session = session.scoped(authfile=spec.authfile)
    run = _Run(
        session, src_cred, dst_cred, session.jobs, dry_run, fail_fast, watcher,
        progress or NullProgress(),
    )  # fmt: skip
    run.gates = Gates.load((e.verify for e in entries), verify_cache)
    items, failures = _expand_all(run, entries)
    if dst_cred is not None:
        only_one_registry("destination", {i.destination.registry for i in items})
    watcher.expanded(len(items))
    try:
        done = _map(run, run.one, items)
    finally:
        run.gates.save()
    results = failures + [r for r in done if isinstance(r, SyncResult)]
    return SyncReport(tuple(results), time.monotonic() - started, dry_run)
