"""Push the images of an archive (``docker save``, skopeo, crane, containerd, imgmirror) to a
registry, without unpacking it.

The work is planned in pure code first: [read_contents][imgmirror.archive.contents.read_contents]
checks the whole archive, Docker-archive layers are measured and their ``diff_id`` checked
([imgmirror.ops.pushsources][imgmirror.ops.pushsources]), and [map_destination][] names every image.
Only then
does anything reach the registry: blobs first (in parallel for a plain tar, in sequential
passes for a compressed one), each verified against its digest before the registry commits
it; then child manifests by digest; tags last, so a failure leaves nothing tagged.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Collection, Iterable, Iterator
from os import PathLike
from os import fspath as os_fspath

import attrs

from imgmirror.archive.contents import read_contents
from imgmirror.archive.convert import BlobSource
from imgmirror.archive.open import open_archive
from imgmirror.archive.reader import Archive
from imgmirror.archive.referrers import read_referrers
from imgmirror.archive.selection import select_image
from imgmirror.archive.spool import readable, split_selector
from imgmirror.auth.credentials import Credential, CredentialInput
from imgmirror.errors import ImgmirrorError
from imgmirror.model.artifacts import ReferrerChoice, ReferrersArg
from imgmirror.model.digest import Digest, verify_stream
from imgmirror.model.platform import PlatformsArg, parse_platforms
from imgmirror.model.reference import Reference
from imgmirror.ops.pushplan import (
    ArchiveNamesNeedConsent,
    ConsentInput,
    check_names,
    map_destination,
    plan_targets,
)
from imgmirror.ops.pushsources import narrowed, plan_images
from imgmirror.progress import NullProgress, ProgressListener
from imgmirror.referrers.archive import plan_restore
from imgmirror.referrers.carry import ReferrersResult
from imgmirror.registry.blobs import BlobEngine, BlobJob, BlobTally, Opener, once
from imgmirror.registry.freshness import head_or_none
from imgmirror.registry.manifests import ManifestLedger, PushTarget, store_manifests
from imgmirror.registry.parallel import run_parallel
from imgmirror.registry.pool import ClientPool
from imgmirror.transport.client import RegistryClient
from imgmirror.transport.retry import Attempts

__all__ = [
    "ArchiveNamesNeedConsent",
    "ConsentInput",
    "PushResult",
    "PushedImage",
    "map_destination",
    "push",
    "push_archive",
]

log = logging.getLogger("imgmirror")


@attrs.frozen
class PushedImage:
    """One image of a push: where (``name``, a full reference), its manifest digest, and
    what happened: ``pushed`` (the name was new), ``moved`` (it held ``previous``, another
    digest) or ``unchanged`` (it held this digest already: nothing of the image was sent)."""

    name: str
    digest: str
    state: str = "pushed"
    previous: str | None = None


@attrs.frozen
class PushResult:
    """What a push did: ``images`` lists each image pushed, in the archive's order."""

    archive: str
    layout: str
    images: tuple[PushedImage, ...]
    blobs_uploaded: int
    blobs_skipped: int
    blobs_mounted: int
    bytes: int
    notes: tuple[str, ...] = ()
    referrers: ReferrersResult | None = None

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (``--json`` output): ``images`` a list of {name, digest}."""
        out = attrs.asdict(self, filter=lambda a, _: a.name != "referrers")
        out["images"] = [attrs.asdict(image) for image in self.images]
        if self.referrers is not None:
            out["referrers"] = self.referrers.to_json()
        return out


# -- execution ----------------------------------------------------------------------------------


@attrs.define
class _Uploader:
    """Hands each (client, repository, blob) of a push to the session's blob engine."""

    archive: Archive
    sources: dict[Digest, BlobSource]
    engine: BlobEngine
    progress: ProgressListener
    cancel: threading.Event = attrs.field(factory=threading.Event)
    tally: BlobTally = attrs.field(factory=BlobTally)
    attempts: dict[tuple[str, str, Digest], Attempts] = attrs.field(factory=dict)

    def _verified(self, source: BlobSource, raw: Iterable[bytes]) -> Iterator[bytes]:
        d = source.descriptor
        what = f"blob {d.digest} ({source.member or 'config'})"
        return verify_stream(source.produce(raw), d.digest, d.size, what)

    def opener(self, source: BlobSource) -> Opener | None:
        """A restartable opener (memory or a plain tar), or None (a compressed stream)."""
        if source.data is not None:
            data = source.data
            return lambda: contextlib.nullcontext(self._verified(source, [data]))
        if self.archive.seekable and source.member is not None:
            member = source.member
            return lambda: contextlib.nullcontext(self._verified(source, self.archive.open(member)))
        return None

    def ensure(
        self, client: RegistryClient, repo: str, digest: Digest, opener: Opener | None = None
    ) -> None:
        """Make one blob present (HEAD, mount, upload), counted."""
        source = self.sources[digest]
        restartable = opener is None
        chosen = opener or self.opener(source) or _no_opener
        job = BlobJob(client, repo, source.descriptor, chosen, restartable=restartable)
        outcome = self.engine.ensure(job, verb="pushed", progress=self.progress, cancel=self.cancel)
        self.tally.add(outcome, source.descriptor.size)

    def stream_pass(
        self, pending: list[tuple[RegistryClient, str, Digest]]
    ) -> list[tuple[RegistryClient, str, Digest]]:
        """One pass over a compressed archive; returns what must wait for another pass."""
        by_member: dict[str, tuple[RegistryClient, str, Digest]] = {}
        later = []
        for client, repo, digest in pending:
            member = self.sources[digest].member
            assert member is not None
            name = self.archive.resolve(member).name
            if name in by_member:
                later.append((client, repo, digest))
            else:
                by_member[name] = (client, repo, digest)
        for name, chunks in self.archive.stream(by_member):
            client, repo, digest = by_member[name]
            try:
                body = once(self._verified(self.sources[digest], chunks))
                self.ensure(client, repo, digest, body)
            except ImgmirrorError as exc:
                if not self._again((client, repo, digest), exc):
                    raise
                later.append((client, repo, digest))
        return later

    def _again(self, item: tuple[RegistryClient, str, Digest], exc: ImgmirrorError) -> bool:
        """Whether a streamed blob that failed is sent again in the next archive pass: a
        transient failure, within the retry policy, after its backoff (as a plain tar's)."""
        key = (item[0].registry, item[1], item[2])
        attempts = self.attempts.setdefault(key, self.engine.retry.start())
        delay = None if self.cancel.is_set() else attempts.after(exc)
        if delay is None:
            return False
        log.info("blob %s: %s; sending it again in the next pass", item[2], exc)
        return not self.cancel.wait(delay)


def _no_opener() -> contextlib.AbstractContextManager[Iterable[bytes]]:
    raise AssertionError("a streamed blob is only sent during its archive pass")


def _execute(
    archive: Archive,
    targets: list[PushTarget],
    sources: dict[Digest, BlobSource],
    clients: dict[Reference, RegistryClient],
    *,
    engine: BlobEngine,
    ledger: ManifestLedger,
    jobs: int,
    progress: ProgressListener,
    current: Collection[Reference] = (),
) -> BlobTally:
    """Blobs, then child manifests by digest, then tags; the manifests of images in
    ``current`` (already at the destination) are not stored again."""
    uploader = _Uploader(archive, sources, engine, progress)
    work = list(
        dict.fromkeys((clients[t.ref], t.ref.repository, d) for t in targets for d in t.blobs)
    )
    progress.planned([sources[d].descriptor for d in dict.fromkeys(w[2] for w in work)], "push")
    direct = [w for w in work if uploader.opener(sources[w[2]]) is not None]
    streamed = [w for w in work if uploader.opener(sources[w[2]]) is None]
    run_parallel(
        lambda w: uploader.ensure(*w),
        direct,
        jobs if archive.seekable else 1,
        cancel=uploader.cancel,
    )
    while streamed:
        streamed = uploader.stream_pass(streamed)
    changed = [t for t in targets if t.ref not in current]
    for target in changed:  # by digest bottom-up, each manifest once (the ledger) ...
        by_digest = [m for m in target.manifests() if m.by_digest]
        store_manifests(clients[target.ref], target.ref.repository, by_digest, ledger)
    for target in changed:  # ... then the tags, last
        tagged = [m for m in target.manifests() if not m.by_digest]
        store_manifests(clients[target.ref], target.ref.repository, tagged, ledger)
    return uploader.tally


def _present(
    targets: list[PushTarget], clients: dict[Reference, RegistryClient], jobs: int
) -> dict[Reference, Digest | None]:
    """What each target's name holds at the destination now (one manifest ``HEAD`` each, as
    copy's freshness check asks; None when absent or unreadable: the push then finds out)."""

    def head(target: PushTarget) -> Digest | None:
        ref = target.ref
        found, _ = head_or_none(clients[ref], ref.repository, ref.tag or str(target.top.digest))
        return found.digest if found is not None else None

    return dict(zip((t.ref for t in targets), run_parallel(head, targets, jobs), strict=True))


def _pushed(target: PushTarget, previous: Digest | None) -> PushedImage:
    digest = str(target.top.digest)
    if previous is None:
        return PushedImage(str(target.ref), digest)
    if previous == target.top.digest:
        return PushedImage(str(target.ref), digest, "unchanged", digest)
    return PushedImage(str(target.ref), digest, "moved", str(previous))


def push(
    pool: ClientPool,
    path: str | PathLike[str],
    dest: str | None = None,
    *,
    platforms: PlatformsArg = None,
    dest_creds: CredentialInput = None,
    progress: ProgressListener | None = None,
    to_archive_names: ConsentInput = False,
    image: str | None = None,
    referrers: ReferrersArg = True,
    referrers_optional: bool = False,
) -> PushResult:
    """[imgmirror.push][imgmirror.api.push.push] inside ``pool``: its arguments parsed into
    values, then [push_archive][imgmirror.ops.push.push_archive]."""
    return push_archive(
        pool,
        path,
        dest,
        platforms=platforms,
        dest_creds=Credential.coerce(dest_creds, setting="dest_creds"),
        progress=progress,
        to_archive_names=to_archive_names,
        image=image,
        referrers=ReferrerChoice.parse(referrers, referrers_optional),
    )


def push_archive(
    pool: ClientPool,
    path: str | PathLike[str],
    dest: str | None = None,
    *,
    platforms: PlatformsArg = None,
    dest_creds: Credential | None = None,
    progress: ProgressListener | None = None,
    to_archive_names: ConsentInput = False,
    image: str | None = None,
    referrers: ReferrerChoice | None = None,
) -> PushResult:
    """Push the images of the archive at ``path`` inside ``pool`` (its clients, tokens, blob
    engine and ``jobs``); see [imgmirror.push][imgmirror.api.push.push]."""
    credential = dest_creds
    wanted_platforms = parse_platforms(platforms)
    file, selector = split_selector(os_fspath(path))
    wanted = image or selector
    with readable(file) as local:
        archive = open_archive(local)
        contents = read_contents(archive)
        chosen = (select_image(contents.images, wanted),) if wanted else contents.images
        stored = read_referrers(archive, contents.referrers)
        planned, sources = plan_images(archive, chosen, pool.jobs)
        if wanted_platforms is not None:
            planned = [(names, narrowed(one, wanted_platforms)) for names, one in planned]
        images = plan_targets(planned, dest)
        restore = plan_restore(stored, images, referrers)
        check_names(images, dest, credential, to_archive_names)
        for note in contents.notes:
            log.info("%s", note)
        clients = {
            t.ref: pool.client(t.ref.registry, credential, role="destination") for t in images
        }
        previous = _present(images, clients, pool.jobs)
        current = {t.ref for t in images if previous[t.ref] == t.top.digest}
        own = {t.ref: set(t.blobs) for t in images}
        targets = [  # an image already there sends only its referrers' blobs
            attrs.evolve(t, blobs=tuple(d for d in t.blobs if d not in own[t.ref]))
            if t.ref in current
            else t
            for t in restore.with_blobs(images, sources)
        ]
        tally = _execute(
            archive,
            targets,
            sources,
            clients,
            engine=pool.blobs,
            ledger=pool.manifests,
            jobs=pool.jobs,
            progress=progress or NullProgress(),
            current=current,
        )
        carried = restore.push(clients, pool.manifests)
    return PushResult(
        archive=str(path),
        layout=contents.layout,
        images=tuple(_pushed(t, previous[t.ref]) for t in images),
        blobs_uploaded=tally.sent,
        blobs_skipped=tally.skipped,
        blobs_mounted=tally.mounted,
        bytes=tally.bytes,
        notes=contents.notes,
        referrers=carried,
    )
