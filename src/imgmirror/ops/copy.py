"""Copy an image from one registry to another, manifests byte for byte.

:func:`plan_copy` decides, in pure code, which blobs to move and which manifests to push in
which order (blobs, then child manifests by digest bottom-up, then the top manifest by tag: a
tag never points at something incomplete). :func:`copy_image` copies one image inside a
:class:`~imgmirror.session.Session`: it opens both ends at once, ends after one manifest
``HEAD`` at each end when the destination tag already holds the source digest, and otherwise
makes every blob present through the session's :class:`~imgmirror.registry.blobs.BlobEngine` (shared
budget, mounts, in-flight dedupe) before pushing the manifests. :func:`copy` is the one-shot
shortcut.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import attrs

from imgmirror.auth.credentials import Credential, CredentialInput
from imgmirror.auth.keychain import Keychain
from imgmirror.errors import ImgmirrorError, TransferStalled
from imgmirror.model import mediatypes
from imgmirror.model.artifacts import ArtifactFilter
from imgmirror.model.digest import Digest
from imgmirror.model.imagetree import ImageTree
from imgmirror.model.manifest import Descriptor
from imgmirror.model.naming import is_prefix, under_prefix
from imgmirror.model.platform import Platform, PlatformsArg, parse_platforms
from imgmirror.model.reference import Reference
from imgmirror.progress import NullProgress, ProgressListener
from imgmirror.registry.blobs import BlobEngine, BlobJob, BlobTally
from imgmirror.registry.fetch import fetch_image, tree_from
from imgmirror.registry.parallel import LinkedEvent, run_parallel
from imgmirror.session import DEFAULT_JOBS, Session
from imgmirror.transport.client import RegistryClient
from imgmirror.transport.tls import ClientOptions

if TYPE_CHECKING:
    from imgmirror.referrers.carry import ReferrerCarry, ReferrersResult

__all__ = [
    "CopyPlan",
    "CopyResult",
    "ManifestPush",
    "copy",
    "copy_image",
    "endpoints",
    "plan_copy",
]

log = logging.getLogger("imgmirror")


@attrs.frozen
class ManifestPush:
    """One manifest to store at the destination."""

    raw: bytes
    media_type: str
    digest: Digest
    ref: str


@attrs.frozen
class CopyPlan:
    """What a copy does, in order: ``blobs`` (any order), then ``manifests`` in sequence."""

    blobs: tuple[Descriptor, ...]
    manifests: tuple[ManifestPush, ...]


@attrs.frozen
class CopyResult:
    """What a copy did.

    Attributes:
        digest: the digest of the top manifest at the destination.
        platforms: platforms of the images copied (empty when not declared, or when
            ``unchanged``).
        unchanged: the destination already had the source digest under the tag; nothing
            was read or written beyond one manifest ``HEAD`` at each end.
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

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (``--json`` output)."""
        out: dict[str, Any] = attrs.asdict(self, filter=lambda a, _: a.name != "referrers")
        if self.referrers is not None:
            out["referrers"] = self.referrers.to_json()
        return out


def plan_copy(tree: ImageTree, destination: Reference) -> CopyPlan:
    """Order the work of copying ``tree`` to ``destination``.

    Foreign (non-distributable) layers are left out: they live at their own URLs and
    registries do not require them.
    """
    blobs = tuple(b for b in tree.blobs() if not mediatypes.is_foreign_layer(b.media_type))
    pushes = [ManifestPush(m.raw, m.media_type, m.digest, str(m.digest)) for m in tree.children]
    top = tree.top
    ref = destination.tag if destination.tag else str(top.digest)
    pushes.append(ManifestPush(top.raw, top.media_type, top.digest, ref))
    return CopyPlan(blobs=blobs, manifests=tuple(pushes))


def copy_image(
    session: Session,
    source: Reference,
    destination: Reference,
    *,
    platforms: PlatformsArg = None,
    src_creds: Credential | None = None,
    dest_creds: Credential | None = None,
    progress: ProgressListener | None = None,
    cancel: threading.Event | None = None,
    referrers: bool | str | Sequence[str] | None = None,
    referrers_optional: bool = False,
) -> CopyResult:
    """Copy one image inside ``session``, sharing its clients, tokens and blob engine.

    Several calls may run at once on one session (from threads): together they move at most
    the session's ``jobs`` blobs at a time (each at most its own ``session.jobs``, see
    :meth:`Session.scoped <imgmirror.session.Session.scoped>`), and a blob two of them send
    to one registry is sent once. ``destination`` without tag or digest is stored by digest
    only.

    Args:
        platforms: as for :func:`copy`.
        src_creds, dest_creds: explicit credentials; None asks the session's keychain.
        progress: receives ``planned(blobs, "copy")`` then per-blob events.
        cancel: set it to stop this copy (and any others sharing the event) at the next chunk.
        referrers, referrers_optional: as for :func:`copy`.

    Raises:
        ImgmirrorError: any failure; nothing is tagged unless every blob and child manifest
            arrived and verified.
    """
    wanted = parse_platforms(platforms)
    listener = progress or NullProgress()
    wanted_referrers = ArtifactFilter.parse(referrers)
    src = session.client(source.registry, src_creds, role="source")
    dst = session.client(destination.registry, dest_creds, role="destination")
    tree, existing = _open_ends(
        src,
        source,
        dst,
        destination,
        platforms=wanted,
        jobs=session.jobs,
        reuse=wanted_referrers is None,  # referrers may be new even when the image is not
    )
    if tree is None:
        assert existing is not None
        listener.planned((), "copy")  # nothing to move
        return CopyResult(
            source=str(source),
            destination=str(destination),
            digest=str(existing.digest),
            media_type=existing.media_type,
            platforms=(),
            blobs_copied=0,
            blobs_skipped=0,
            blobs_mounted=0,
            bytes_copied=0,
            manifests_pushed=0,
            unchanged=True,
        )
    carry = _find_referrers(src, source, tree, wanted_referrers, referrers_optional)
    plan = plan_copy(tree, destination)
    listener.planned(plan.blobs, "copy")
    hints = (
        (source.repository,)
        if source.registry == destination.registry and source.repository != destination.repository
        else ()
    )
    send = functools.partial(
        _copy_blobs,
        session.blobs,
        session.jobs,
        src=src,
        src_repo=source.repository,
        dst=dst,
        dst_repo=destination.repository,
        hints=hints,
    )
    tally = send(blobs=plan.blobs, progress=listener, cancel=LinkedEvent(cancel))
    for push in plan.manifests:
        dst.put_manifest(destination.repository, push.ref, push.raw, push.media_type)
    carried = None
    if carry is not None:
        # each referrer stops on its own failure only: a fresh event per referrer's blobs
        carried = carry.push(
            dst,
            destination.repository,
            lambda blobs: send(blobs=blobs, progress=NullProgress(), cancel=LinkedEvent(cancel)),
        )
    top = tree.top
    return CopyResult(
        source=str(source),
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
    )


def _find_referrers(
    src: RegistryClient,
    source: Reference,
    tree: ImageTree,
    wanted: ArtifactFilter | None,
    optional: bool,
) -> ReferrerCarry | None:
    """The referrers to carry for every manifest of ``tree``, found before anything moves."""
    if wanted is None:
        return None
    from imgmirror.referrers.carry import prepare_referrers  # noqa: PLC0415 - attach imports this module

    subjects = [tree.top.digest, *(child.digest for child in tree.children)]
    return prepare_referrers(src, source.repository, subjects, wanted, optional=optional)


def _open_ends(
    src: RegistryClient,
    source: Reference,
    dst: RegistryClient,
    destination: Reference,
    *,
    platforms: Sequence[Platform] | None,
    jobs: int,
    reuse: bool = True,
) -> tuple[ImageTree | None, Descriptor | None]:
    """Read the source while the destination is being reached (ping, token, tag ``HEAD``).

    For a whole image whose destination tag already holds the source digest, returns
    ``(None, that descriptor)`` after one manifest ``HEAD`` at each end (unless not
    ``reuse``); else the tree.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="destination") as side:
        if platforms is not None or destination.tag is None or not reuse:
            side.submit(dst.ping)  # errors surface again on the first real request
            return fetch_image(
                src, source.repository, source.identifier, platforms, jobs=jobs
            ), None
        there = side.submit(_head_or_none, dst, destination.repository, destination.tag)
        wanted: Digest | None = source.digest
        if wanted is None:
            found = _head_or_none(src, source.repository, source.identifier)
            wanted = found.digest if found is not None else None
        existing = there.result()
        if existing is not None and existing.digest == wanted:
            return None, existing
        ref = str(wanted) if wanted is not None else source.identifier
        top = src.get_manifest(source.repository, ref)
        return tree_from(src, source.repository, top, None, jobs=jobs), None


def _head_or_none(client: RegistryClient, repo: str, ref: str) -> Descriptor | None:
    """The manifest descriptor ``ref`` resolves to, or None when absent or unreadable (the
    following GET or push reports the real error); a stall ends the copy here."""
    try:
        return client.head_manifest(repo, ref)
    except TransferStalled:
        raise
    except ImgmirrorError as exc:
        log.debug("HEAD of %s/%s:%s: %s", client.registry, repo, ref, exc)
        return None


def _copy_blobs(
    engine: BlobEngine,
    jobs: int,
    *,
    src: RegistryClient,
    src_repo: str,
    dst: RegistryClient,
    dst_repo: str,
    blobs: Sequence[Descriptor],
    hints: tuple[str, ...],
    progress: ProgressListener,
    cancel: threading.Event,
) -> BlobTally:
    tally = BlobTally()

    def one(blob: Descriptor) -> None:
        opener = functools.partial(src.open_blob, src_repo, blob)
        job = BlobJob(dst, dst_repo, blob, opener, mount_hints=hints)
        tally.add(engine.ensure(job, verb="copied", progress=progress, cancel=cancel), blob.size)

    run_parallel(one, blobs, jobs, cancel=cancel)
    return tally


def endpoints(src: str | Reference, dst: str | Reference) -> tuple[Reference, Reference]:
    """The source and destination of a copy: ``dst`` without a tag keeps the source's tag;
    ending in ``/`` it is a prefix (see :mod:`imgmirror.model.naming`).

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


def copy(
    src: str | Reference,
    dst: str | Reference,
    *,
    platforms: PlatformsArg = None,
    src_creds: CredentialInput = None,
    dest_creds: CredentialInput = None,
    jobs: int = DEFAULT_JOBS,
    timeout: float | None = None,
    progress: ProgressListener | None = None,
    authfile: str | None = None,
    keychain: Keychain | None = None,
    options: ClientOptions | None = None,
    referrers: bool | str | Sequence[str] | None = None,
    referrers_optional: bool = False,
) -> CopyResult:
    """Copy an image (or a whole index) from ``src`` to ``dst``: a one-shot
    :meth:`Session.copy <imgmirror.session.Session.copy>` in a session of its own.

    Args:
        src: source reference, e.g. ``"registry.k8s.io/pause:3.9"``.
        dst: destination reference. Without a tag, the source's tag is used. Ending in
            ``/`` it is a prefix (see :mod:`imgmirror.model.naming`): ``reg.corp/mirror/`` puts
            ``registry.k8s.io/pause:3.9`` at ``reg.corp/mirror/pause:3.9``.
        platforms: ``"linux/arm64"`` (or ``["linux/arm64"]``) copies only that platform's
            image, unchanged, and tags it; several platforms make a new, smaller index. None
            copies everything.
        src_creds, dest_creds: ``"user:pass"``, ``(user, pass)`` or a
            :class:`~imgmirror.auth.credentials.Credential`.
        jobs: blobs transferred at once.
        timeout: seconds a request may wait for a reply or stall (default:
            ``options.timeout``).
        progress: receives ``planned(blobs, "copy")`` then per-blob events.
        authfile: a credentials file consulted when no explicit credentials are given
            (docker config.json, podman auth.json, .dockercfg or a Kubernetes pull Secret).
        keychain: a custom credential source (see :class:`~imgmirror.auth.keychain.Keychain`),
            asked instead of the standard credential files.
        options: TLS, retry and timeout settings.
        referrers: also carry what refers to the image and its children (signatures,
            SBOMs, attestations; see ``docs/referrers.md``): True for all, or artifact
            types (``"sig"``, ``"att"``, ``"sbom"`` or media types, a list or comma-separated).
        referrers_optional: carry referrers best effort: failures are reported in
            ``result.referrers.failed`` instead of failing the copy.

    Returns:
        A :class:`CopyResult` whose ``digest`` is the destination's top manifest digest.

    Raises:
        ImgmirrorError: any failure; nothing is tagged at the destination unless every blob
            and child manifest arrived and verified.
    """
    with Session(
        options, authfile=authfile, keychain=keychain, jobs=jobs, timeout=timeout
    ) as session:
        return session.copy(
            src,
            dst,
            platforms=platforms,
            src_creds=src_creds,
            dest_creds=dest_creds,
            progress=progress,
            referrers=referrers,
            referrers_optional=referrers_optional,
        )
