"""Copy an image from one registry to another, manifests byte for byte.

[copy_image][] copies one image inside a client pool, in named steps: ask both ends
whether the destination is already current
([imgmirror.registry.freshness][imgmirror.registry.freshness]: one
manifest ``HEAD`` at each end when it is), read the source tree, find the referrers to carry
(before anything is written), make every blob present through the pool's
[BlobEngine][imgmirror.registry.blobs.BlobEngine] (shared budget, mounts, in-flight dedupe),
then store the manifests in the order [plan_copy][imgmirror.registry.manifests.plan_copy]
decided, the tag last, and the referrers after the image.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from imgmirror.auth.credentials import Credential, CredentialInput
from imgmirror.model.artifacts import ReferrerChoice, ReferrersArg
from imgmirror.model.digest import Digest
from imgmirror.model.imagetree import ImageTree
from imgmirror.model.manifest import Descriptor
from imgmirror.model.naming import is_prefix, under_prefix
from imgmirror.model.platform import Platform, PlatformsArg, parse_platforms
from imgmirror.model.reference import Reference
from imgmirror.progress import NullProgress, ProgressListener
from imgmirror.referrers.carry import (
    ReferrerCarry,
    ReferrersResult,
    prepare_referrers,
    with_verified,
)
from imgmirror.registry.blobs import BlobEngine, BlobJob, BlobTally
from imgmirror.registry.fetch import tree_from
from imgmirror.registry.freshness import Freshness, check_freshness
from imgmirror.registry.manifests import CopyPlan, plan_copy, store_manifests
from imgmirror.registry.parallel import LinkedEvent, run_parallel
from imgmirror.registry.pool import ClientPool
from imgmirror.transport.client import RegistryClient

if TYPE_CHECKING:  # the gate is given by the caller: a copy without one loads no verifier
    from imgmirror.verify.decision import Decision
    from imgmirror.verify.gate import Gate, Verdict

__all__ = ["CopyResult", "copy", "copy_image", "endpoints"]


@attrs.frozen
class CopyResult:
    """What a copy did.

    Attributes:
        digest: the digest of the top manifest at the destination.
        platforms: platforms of the images copied (empty when not declared, or when
            ``unchanged``).
        unchanged: the destination already had the source digest under the tag; nothing
            was read or written beyond one manifest ``HEAD`` at each end.
        previous: the digest the destination reference resolved to before the copy; None
            when it was absent (or could not be read).
    """

    source: str
    destination: str
    digest: str
    media_type: str
    platforms: tuple[str, ...]
    blobs_copied: int
    blobs_skipped: int
    blobs_mounted: int
    bytes_copied: int
    manifests_pushed: int
    unchanged: bool = False
    referrers: ReferrersResult | None = None
    verification: Decision | None = None
    previous: str | None = None

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (``--json`` output)."""
        nested = ("referrers", "verification")
        out: dict[str, Any] = attrs.asdict(self, filter=lambda a, _: a.name not in nested)
        if self.referrers is not None:
            out["referrers"] = self.referrers.to_json()
        if self.verification is not None:
            out["verification"] = self.verification.to_json()
        return out


@attrs.frozen
class _Ends:
    """Both ends of one copy: references and their clients."""

    source: Reference
    destination: Reference
    src: RegistryClient
    dst: RegistryClient


def copy(
    pool: ClientPool,
    src: str | Reference,
    dst: str | Reference,
    *,
    platforms: PlatformsArg = None,
    src_creds: CredentialInput = None,
    dest_creds: CredentialInput = None,
    progress: ProgressListener | None = None,
    referrers: ReferrersArg = None,
    referrers_optional: bool = False,
    verify: Gate | None = None,
) -> CopyResult:
    """[imgmirror.copy][imgmirror.api.copy.copy] inside ``pool``: its arguments parsed into
    values, then [copy_image][imgmirror.ops.copy.copy_image]."""
    source, destination = endpoints(src, dst)
    return copy_image(
        pool,
        source,
        destination,
        platforms=platforms,
        src_creds=Credential.coerce(src_creds, setting="src_creds"),
        dest_creds=Credential.coerce(dest_creds, setting="dest_creds"),
        progress=progress,
        referrers=ReferrerChoice.parse(referrers, referrers_optional),
        verify=verify,
    )


def copy_image(
    pool: ClientPool,
    source: Reference,
    destination: Reference,
    *,
    platforms: PlatformsArg = None,
    src_creds: Credential | None = None,
    dest_creds: Credential | None = None,
    progress: ProgressListener | None = None,
    cancel: threading.Event | None = None,
    referrers: ReferrerChoice | None = None,
    verify: Gate | None = None,
) -> CopyResult:
    """Copy one image inside ``pool``, sharing its clients, tokens and blob engine.

    Several calls may run at once on one pool (from threads): together they move at most the
    pool's ``jobs`` blobs at a time (each at most its own ``pool.jobs``, see
    [ClientPool.scoped][imgmirror.registry.pool.ClientPool.scoped]), and a blob two of them
    send to one registry is sent once. ``destination`` without tag or digest is stored by
    digest only.

    Args:
        platforms: as for [imgmirror.copy][imgmirror.api.copy.copy].
        src_creds: explicit credentials for the source; None asks the pool's keychain.
        dest_creds: explicit credentials for the destination; None asks the keychain.
        progress: receives ``planned(blobs, "copy")`` then per-blob events.
        cancel: set it to stop this copy (and any others sharing the event) at the next chunk.
        referrers: the referrers to carry with the image, or None.
        verify: a loaded verification policy, applied before anything is written (see the
            verification guide); the signatures that verified are carried with the image.

    Raises:
        PolicyRefused: ``verify`` refused the image; nothing was written.
        ImgmirrorError: any failure; nothing is tagged unless every blob and child manifest
            arrived and verified.
    """
    wanted = parse_platforms(platforms)
    listener = progress or NullProgress()
    ends = _Ends(
        source,
        destination,
        pool.client(source.registry, src_creds, role="source"),
        pool.client(destination.registry, dest_creds, role="destination"),
    )
    fresh = check_freshness(ends.src, source, ends.dst, destination, wanted)
    # with referrers, an image already there is still read: new referrers may hang off it
    if fresh.current and fresh.present is not None and referrers is None:
        verdict = _verified(verify, ends, fresh.present.digest, None)
        listener.planned((), "copy")  # nothing to move
        return _unchanged(ends, fresh.present, verdict)
    tree = _read_source(ends, fresh, wanted, pool.jobs)
    verdict = _verified(verify, ends, tree.source_digest or tree.top.digest, tree)
    carry = _find_referrers(ends, tree, referrers, verdict)
    plan = plan_copy(tree, destination)
    listener.planned(plan.blobs, "copy")
    send = _blob_sender(pool, ends)
    tally = send(plan.blobs, listener, LinkedEvent(cancel))
    store_manifests(ends.dst, destination.repository, plan.manifests, pool.manifests)
    carried = None
    if carry is not None:
        # each referrer stops on its own failure only: a fresh event per referrer's blobs
        carried = carry.push(
            ends.dst,
            destination.repository,
            lambda blobs: send(blobs, NullProgress(), LinkedEvent(cancel)),
            pool.manifests,
        )
    previous = str(fresh.present.digest) if fresh.present is not None else None
    copied = _copied(ends, tree, plan, tally, carried, verdict=verdict)
    return attrs.evolve(copied, previous=previous)


def _read_source(
    ends: _Ends, fresh: Freshness, platforms: Sequence[Platform] | None, jobs: int
) -> ImageTree:
    """The source tree, reusing what the freshness check read (the digest, an index)."""
    source = ends.source
    if fresh.source_top is not None:
        top = fresh.source_top
    else:
        top = ends.src.get_manifest(source.repository, str(fresh.wanted or source.identifier))
    return tree_from(ends.src, source.repository, top, platforms, jobs=jobs)


def _verified(
    gate: Gate | None, ends: _Ends, digest: Digest, tree: ImageTree | None
) -> Verdict | None:
    """The policy's verdict before anything is written (an image already at the
    destination, ``tree`` None, may be decided from the gate's cache)."""
    if gate is None:
        return None
    source = ends.source
    return gate.check(ends.src, source.repository, str(source), digest, tree, cached=tree is None)


def _find_referrers(
    ends: _Ends, tree: ImageTree, wanted: ReferrerChoice | None, verdict: Verdict | None
) -> ReferrerCarry | None:
    """The referrers to carry for every manifest of ``tree``, found before anything moves,
    and the signatures a verification policy accepted."""
    verified = verdict.verified if verdict is not None else None
    if wanted is None:
        return ReferrerCarry(verified) if verified is not None and verified.nodes else None
    subjects = [tree.top.digest, *(child.digest for child in tree.children)]
    carry = prepare_referrers(ends.src, ends.source.repository, subjects, wanted)
    return with_verified(carry, verified)


#: Makes blobs present at the destination: (blobs, progress, cancel) -> what happened.
_Sender = Callable[[Sequence[Descriptor], ProgressListener, threading.Event], BlobTally]


def _blob_sender(pool: ClientPool, ends: _Ends) -> _Sender:
    """The copy's blob transfer, bound to both ends (the image's blobs and each referrer's)."""
    source, destination = ends.source, ends.destination
    elsewhere = source.repository != destination.repository
    hints = (source.repository,) if source.registry == destination.registry and elsewhere else ()
    return functools.partial(
        _copy_blobs,
        pool.blobs,
        pool.jobs,
        src=ends.src,
        src_repo=source.repository,
        dst=ends.dst,
        dst_repo=destination.repository,
        hints=hints,
    )


def _copy_blobs(
    engine: BlobEngine,
    jobs: int,
    blobs: Sequence[Descriptor],
    progress: ProgressListener,
    cancel: threading.Event,
    *,
    src: RegistryClient,
    src_repo: str,
    dst: RegistryClient,
    dst_repo: str,
    hints: tuple[str, ...],
) -> BlobTally:
    tally = BlobTally()

    def one(blob: Descriptor) -> None:
        opener = functools.partial(src.open_blob, src_repo, blob)
        job = BlobJob(dst, dst_repo, blob, opener, mount_hints=hints)
        tally.add(engine.ensure(job, verb="copied", progress=progress, cancel=cancel), blob.size)

    run_parallel(one, blobs, jobs, cancel=cancel)
    return tally


def _unchanged(ends: _Ends, present: Descriptor, verdict: Verdict | None) -> CopyResult:
    return CopyResult(
        source=str(ends.source),
        destination=str(ends.destination),
        digest=str(present.digest),
        media_type=present.media_type,
        platforms=(),
        blobs_copied=0,
        blobs_skipped=0,
        blobs_mounted=0,
        bytes_copied=0,
        manifests_pushed=0,
        unchanged=True,
        verification=verdict.decision if verdict else None,
        previous=str(present.digest),
    )


def _copied(
    ends: _Ends,
    tree: ImageTree,
    plan: CopyPlan,
    tally: BlobTally,
    carried: ReferrersResult | None,
    *,
    verdict: Verdict | None,
) -> CopyResult:
    top, destination = tree.top, ends.destination
    return CopyResult(
        source=str(ends.source),
        destination=str(
            destination.with_digest(top.digest) if destination.tag is None else destination
        ),
        digest=str(top.digest),
        media_type=top.media_type,
        platforms=tree.declared_platforms(),
        blobs_copied=tally.sent,
        blobs_skipped=tally.skipped,
        blobs_mounted=tally.mounted,
        bytes_copied=tally.bytes,
        manifests_pushed=len(plan.manifests),
        referrers=carried,
        verification=verdict.decision if verdict else None,
    )


def endpoints(src: str | Reference, dst: str | Reference) -> tuple[Reference, Reference]:
    """The source and destination of a copy: ``dst`` without a tag keeps the source's tag;
    ending in ``/`` it is a prefix (see [imgmirror.model.naming][imgmirror.model.naming]).

    Raises:
        InvalidReference: either does not parse.
    """
    source = src if isinstance(src, Reference) else Reference.parse(src)
    if isinstance(dst, str) and is_prefix(dst):
        return source, under_prefix(source, dst)
    destination = dst if isinstance(dst, Reference) else Reference.parse(dst, default_tag=None)
    if destination.tag is None and destination.digest is None and source.tag is not None:
        destination = destination.with_tag(source.tag)  # no tag given: keep the source's
    return source, destination
