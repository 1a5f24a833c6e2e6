"""Copy an image from one registry to another, manifests byte for byte.

:func:`plan_copy` decides, in pure code, which blobs to move and which manifests to push in
which order (blobs, then child manifests by digest, then the top manifest by tag: a tag never
points at something incomplete). :func:`copy` fetches the source, runs the plan with a thread
pool that streams each blob from the source response straight into the destination upload
(verified on the way, no temporary files), and pushes the manifests only once every blob is in.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import attrs

from . import mediatypes
from .credentials import Credential, CredentialInput
from .digest import Digest
from .errors import ImgmirrorError, VerificationError, is_transient
from .image import fetch_image
from .imagetree import ImageTree
from .keychain import Keychain
from .manifest import Descriptor
from .parallel import run_parallel
from .platform import Platform
from .progress import NullProgress, ProgressListener, counted
from .reference import Reference
from .session import Session
from .transport.client import RegistryClient
from .transport.tls import ClientOptions

__all__ = ["CopyPlan", "CopyResult", "ManifestPush", "copy", "plan_copy", "transfer_blob"]

log = logging.getLogger("imgmirror")

_BLOB_ATTEMPTS = 3


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
    mount_from: str | None


@attrs.frozen
class CopyResult:
    """What a copy did.

    Attributes:
        digest: the digest of the top manifest at the destination.
        platforms: platforms of the images copied (empty when not declared).
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

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (``--json`` output)."""
        return attrs.asdict(self)


def plan_copy(tree: ImageTree, destination: Reference, mount_from: str | None) -> CopyPlan:
    """Order the work of copying ``tree`` to ``destination``.

    Foreign (non-distributable) layers are left out: they live at their own URLs and
    registries do not require them.
    """
    blobs = tuple(b for b in tree.blobs() if not mediatypes.is_foreign_layer(b.media_type))
    pushes = [ManifestPush(m.raw, m.media_type, m.digest, str(m.digest)) for m in tree.children]
    top = tree.top
    ref = destination.tag if destination.tag else str(top.digest)
    pushes.append(ManifestPush(top.raw, top.media_type, top.digest, ref))
    return CopyPlan(blobs=blobs, manifests=tuple(pushes), mount_from=mount_from)


@attrs.define
class _Tally:
    copied: int = 0
    skipped: int = 0
    mounted: int = 0
    bytes: int = 0
    lock: threading.Lock = attrs.field(factory=threading.Lock)

    def add(self, outcome: str, size: int) -> None:
        with self.lock:
            if outcome == "copied":
                self.copied += 1
                self.bytes += size
            elif outcome == "skipped":
                self.skipped += 1
            else:
                self.mounted += 1


def transfer_blob(
    src: RegistryClient,
    src_repo: str,
    dst: RegistryClient,
    dst_repo: str,
    blob: Descriptor,
    *,
    mount_from: str | None,
    progress: ProgressListener,
    cancel: threading.Event | None = None,
) -> str:
    """Make one blob present at the destination; returns the outcome.

    HEAD first (``skipped``), then a cross-repository mount on the same registry
    (``mounted``), else stream it from the source into an upload (``copied``). A broken
    transfer is retried from the start with a fresh source stream; a digest mismatch is not.
    """
    push_scope = f"repository:{dst_repo}:pull,push"
    if dst.blob_exists(dst_repo, blob.digest, scopes=[push_scope]):
        progress.blob_finished(blob.digest, "skipped")
        return "skipped"
    location: str | None = None
    if mount_from is not None:
        mount = dst.mount_blob(dst_repo, blob.digest, mount_from)
        if mount.mounted:
            progress.blob_finished(blob.digest, "mounted")
            return "mounted"
        location = mount.location
    for attempt in range(1, _BLOB_ATTEMPTS + 1):
        progress.blob_started(blob.digest, blob.size)
        try:
            with src.open_blob(src_repo, blob) as chunks:
                dst.upload_blob(
                    dst_repo,
                    blob,
                    counted(chunks, blob.digest, progress, cancel),
                    location=location,
                )
        except VerificationError:
            progress.blob_finished(blob.digest, "failed")
            raise
        except ImgmirrorError as exc:
            if attempt == _BLOB_ATTEMPTS or not is_transient(exc) or (cancel and cancel.is_set()):
                progress.blob_finished(blob.digest, "failed")
                raise
            log.info("blob %s: %s; starting it again", blob.digest, exc)
            location = None
            continue
        progress.blob_finished(blob.digest, "copied")
        return "copied"
    raise AssertionError("unreachable")


def copy(
    src: str | Reference,
    dst: str | Reference,
    *,
    platforms: Sequence[str | Platform] | None = None,
    src_creds: CredentialInput = None,
    dest_creds: CredentialInput = None,
    jobs: int = 4,
    authfile: str | None = None,
    keychain: Keychain | None = None,
    options: ClientOptions | None = None,
    progress: ProgressListener | None = None,
) -> CopyResult:
    """Copy an image (or a whole index) from ``src`` to ``dst``.

    Args:
        src: source reference, e.g. ``"registry.k8s.io/pause:3.9"``.
        dst: destination reference. Without a tag, the source's tag is used.
        platforms: ``["linux/arm64"]`` copies only that platform's image, unchanged, and
            tags it; several platforms make a new, smaller index. None copies everything.
        src_creds, dest_creds: ``"user:pass"``, ``(user, pass)`` or a
            :class:`~imgmirror.credentials.Credential`.
        jobs: blobs transferred at once.
        authfile: a credentials file consulted when no explicit credentials are given
            (docker config.json, podman auth.json, .dockercfg or a Kubernetes pull Secret).
        keychain: a custom credential source (see :class:`~imgmirror.keychain.Keychain`),
            asked instead of the standard credential files.
        options: TLS, retry and timeout settings.
        progress: receives per-blob events.

    Returns:
        A :class:`CopyResult` whose ``digest`` is the destination's top manifest digest.

    Raises:
        ImgmirrorError: any failure; nothing is tagged at the destination unless every blob
            and child manifest arrived and verified.
    """
    source = src if isinstance(src, Reference) else Reference.parse(src)
    if isinstance(dst, Reference):
        destination = dst
    else:
        destination = Reference.parse(dst)
        last = dst.rsplit("/", 1)[-1]
        if ":" not in last and "@" not in last:
            destination = (
                destination.with_tag(source.tag)
                if source.tag
                else attrs.evolve(destination, tag=None)
            )
    wanted = (
        None
        if platforms is None
        else [p if isinstance(p, Platform) else Platform.parse(p) for p in platforms]
    )
    listener = progress or NullProgress()
    with Session(options, authfile=authfile, keychain=keychain) as session:
        src_client = session.client(
            source.registry, Credential.coerce(src_creds), creds_hint="--src-creds"
        )
        dst_client = session.client(
            destination.registry, Credential.coerce(dest_creds), creds_hint="--dest-creds"
        )
        tree = fetch_image(src_client, source.repository, source.identifier, wanted, jobs=jobs)
        same = source.registry == destination.registry and source.repository != (
            destination.repository
        )
        plan = plan_copy(tree, destination, source.repository if same else None)
        tally = _Tally()

        def one(blob: Descriptor) -> None:
            outcome = transfer_blob(
                src_client,
                source.repository,
                dst_client,
                destination.repository,
                blob,
                mount_from=plan.mount_from,
                progress=listener,
                cancel=cancel,
            )
            tally.add(outcome, blob.size)

        cancel = threading.Event()
        run_parallel(one, plan.blobs, jobs, cancel=cancel)
        for push in plan.manifests:
            dst_client.put_manifest(destination.repository, push.ref, push.raw, push.media_type)
    top = tree.top
    return CopyResult(
        source=str(source),
        destination=str(
            destination.with_digest(top.digest) if destination.tag is None else destination
        ),
        digest=str(top.digest),
        media_type=top.media_type,
        platforms=tree.declared_platforms(),
        blobs_copied=tally.copied,
        blobs_skipped=tally.skipped,
        blobs_mounted=tally.mounted,
        bytes_copied=tally.bytes,
        manifests_pushed=len(plan.manifests),
    )
