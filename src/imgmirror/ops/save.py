"""Save images from registries into one archive that ``docker load`` and ``ctr import`` accept.

:func:`save_images` (behind :meth:`Session.save <imgmirror.session.Session.save>` and the
one-shot :func:`save`) resolves each image (an index is narrowed to the requested platforms,
by default the machine's own), fetches the configs the archive's metadata needs, plans the
archive in pure code (:mod:`imgmirror.archive.layout`) and streams it
(:mod:`imgmirror.archive.writer`) blob by blob, verified, through
:mod:`imgmirror.archive.output`: a regular file is written beside the output and renamed into
place only when complete (any failure, Ctrl-C included, leaves nothing at the output path); a
device, FIFO or ``-`` (standard output) is streamed to.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs

from imgmirror.archive.layout import (
    ArchiveFormat,
    BlobEntry,
    LayerTarEntry,
    Origin,
    SaveItem,
    plan_archive,
    primary_image,
)
from imgmirror.archive.output import Output, open_output
from imgmirror.archive.prefetch import prefetching
from imgmirror.archive.scatter import write_scattered
from imgmirror.archive.writer import Piece, stream_archive
from imgmirror.auth.credentials import Credential, CredentialInput
from imgmirror.auth.keychain import Keychain
from imgmirror.errors import ArchiveError
from imgmirror.model.artifacts import ArtifactFilter
from imgmirror.model.compression import compress
from imgmirror.model.digest import Digest
from imgmirror.model.manifest import Descriptor, parse_config
from imgmirror.model.platform import Platform, PlatformsArg, parse_platforms
from imgmirror.model.reference import Reference
from imgmirror.ops.saverequest import ImageArg, own_platforms, parse_image_arg
from imgmirror.progress import NullProgress, ProgressListener
from imgmirror.referrers.archive import with_referrers
from imgmirror.registry.fetch import fetch_image
from imgmirror.session import DEFAULT_JOBS, Session
from imgmirror.transport.client import RegistryClient
from imgmirror.transport.tls import ClientOptions
from imgmirror.verify.gate import Gate, opened
from imgmirror.verify.policy import Policy

__all__ = [
    "SaveResult",
    "SavedImage",
    "archive_compression",
    "load_commands",
    "save",
    "save_images",
]

_MAX_CONFIG = 32 * 1024 * 1024


@attrs.frozen
class SavedImage:
    """One image in the archive.

    Attributes:
        source: the reference it was read from.
        name: the name loaders give it (``registry/repo:tag``).
        digest: the digest ``index.json`` records for it (the registry's, unless several
            platforms made a new index).
        platforms: the platforms it carries (empty when not declared).
    """

    source: str
    name: str
    digest: str
    platforms: tuple[str, ...]
    renamed_from_digest: bool = False


@attrs.frozen
class SaveResult:
    """What a save wrote."""

    path: str
    format: ArchiveFormat
    images: tuple[SavedImage, ...]
    blobs: int
    bytes: int
    compression: str | None = None
    streamed: bool = False
    referrers: tuple[str, ...] = ()
    referrers_failed: tuple[str, ...] = ()
    verification: tuple[dict[str, Any], ...] = ()

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (``--json`` output)."""
        return attrs.asdict(self)


_UNWRITABLE = frozenset(
    {".xz", ".txz", ".bz2", ".tbz", ".tbz2", ".lzma", ".lz", ".lz4", ".zip", ".7z", ".z"}
)


def archive_compression(path: str | os.PathLike[str]) -> Literal["gzip", "zstd"] | None:
    """The outer compression an output name asks for (``.gz``/``.tgz``, ``.zst``/``.zstd``).

    Raises:
        ArchiveError: the name asks for a compression imgmirror cannot write (``.xz``, ...).
    """
    suffix = Path(path).suffix.lower()
    if suffix in _UNWRITABLE:
        raise ArchiveError(
            f"cannot write {suffix} archives: {path}",
            hint="name the output .tar (plain), .tar.gz or .tar.zst",
        )
    if suffix in (".gz", ".tgz"):
        return "gzip"
    if suffix in (".zst", ".zstd"):
        return "zstd"
    return None


def load_commands(result: SaveResult) -> list[str]:
    """Shell commands that load the archive ``result`` describes (docker, then containerd).

    Docker before 23 and ``ctr`` 1.x do not read a zstd-compressed archive, and ``ctr`` 1.x
    no gzip one either, so those are decompressed in a pipe. An ``oci`` archive has no
    ``manifest.json``, which ``docker load`` (classic store) needs.
    """
    if result.streamed:
        return []
    path = shlex.quote(result.path)
    ctr = "ctr -n k8s.io images import"
    if result.compression == "gzip":
        docker, containerd = f"docker load -i {path}", f"gunzip -c {path} | {ctr} -"
    elif result.compression == "zstd":
        docker, containerd = f"zstd -dc {path} | docker load", f"zstd -dc {path} | {ctr} -"
    else:
        docker, containerd = f"docker load -i {path}", f"{ctr} {path}"
    return [containerd] if result.format == "oci" else [docker, containerd]


def _fetch_config(client: RegistryClient, repo: str, blob: Descriptor) -> bytes:
    if blob.size > _MAX_CONFIG:
        raise ArchiveError(f"config {blob.digest} is {blob.size} bytes; refusing to hold it")
    with client.open_blob(repo, blob) as chunks:
        return b"".join(chunks)


def _write(out: Output, chunks: Iterator[Piece]) -> int:
    """Write ``chunks`` to ``out``, applying fixups and rewinds; returns the size."""
    try:
        for chunk in chunks:
            out.apply(chunk)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return out.size


def save(
    images: Sequence[ImageArg],
    path: str | os.PathLike[str],
    *,
    platforms: PlatformsArg = None,
    format: ArchiveFormat = "docker",
    src_creds: CredentialInput = None,
    jobs: int = DEFAULT_JOBS,
    timeout: float | None = None,
    progress: ProgressListener | None = None,
    authfile: str | None = None,
    keychain: Keychain | None = None,
    options: ClientOptions | None = None,
    platform: PlatformsArg = None,
    referrers: bool | str | Sequence[str] | None = None,
    referrers_optional: bool = False,
    verify: Policy | Gate | None = None,
    verify_cache: str | None = None,
) -> SaveResult:
    """Save images into one archive at ``path``: a one-shot
    :meth:`Session.save <imgmirror.session.Session.save>` in a session of its own.

    Args:
        images: ``"IMAGE"``, ``"IMAGE=NAME"`` or ``(IMAGE, NAME)``; NAME is the name loaders
            give the image (default: IMAGE's own).
        path: the archive to write; ``.gz``/``.zst`` compress the whole archive. A device,
            FIFO or ``"-"`` (standard output, never a terminal) is written as a stream.
        platforms: which image to take from an index: ``"linux/arm64"`` or a list (several:
            carry each). Default: the machine's platform for ``docker``/``legacy``, the whole
            index for ``oci``.
        format: ``"docker"`` (OCI layout + ``manifest.json``), ``"legacy"`` (Docker <= 24
            ``docker save``) or ``"oci"``.
        src_creds: credentials for the registries read from.
        jobs: manifests and blobs fetched at once (into a compressed or streamed output, the
            blobs ahead of the writer go through bounded buffers, in order).
        timeout: seconds a request may wait for a reply or stall (default:
            ``options.timeout``).
        progress: receives ``planned(blobs, "save")`` before the first blob byte, then
            per-blob events (outcome ``saved``).
        authfile: a credentials file consulted when ``src_creds`` is not given.
        keychain: a custom credential source, asked instead of the standard files.
        options: TLS, retry and timeout settings.
        platform: the older name of ``platforms`` (deprecated: a DeprecationWarning).
        referrers: also store what refers to each image and its manifests (signatures,
            SBOMs, attestations), for :func:`~imgmirror.ops.push.push` to restore: True for all,
            or artifact types as for :func:`~imgmirror.ops.copy.copy` (not in ``legacy``).
        referrers_optional: store referrers best effort: one that cannot be saved is
            listed in ``result.referrers_failed`` instead of failing the save.
        verify, verify_cache: a verification policy every image must meet before the
            archive is written, as for :func:`~imgmirror.ops.copy.copy`.

    Raises:
        ImgmirrorError: any failure; nothing is left at ``path`` then.
    """
    if platform is not None:
        warnings.warn(
            "save(platform=...) is deprecated; use platforms=", DeprecationWarning, stacklevel=2
        )
        platforms = platform if platforms is None else platforms
    with (
        opened(verify, verify_cache) as gate,
        Session(
            options, authfile=authfile, keychain=keychain, jobs=jobs, timeout=timeout
        ) as session,
    ):
        return session.save(
            images, path, platforms=platforms, format=format, src_creds=src_creds,
            progress=progress, referrers=referrers, referrers_optional=referrers_optional,
            verify=gate,
        )  # fmt: skip


def _chosen_platforms(platforms: PlatformsArg, format: ArchiveFormat) -> list[Platform]:
    """The platforms to save: the machine's by default, except for ``oci`` (everything)."""
    if format not in ("docker", "legacy", "oci"):
        raise ArchiveError(f"unknown archive format {format!r}", hint="use docker, legacy or oci")
    chosen = parse_platforms(platforms) or []
    if not chosen and format != "oci":
        chosen = [Platform.host()]
    if format == "legacy" and len(chosen) > 1:
        raise ArchiveError(
            "the legacy format holds one platform per image",
            hint="give a single platform in platforms",
            setting="platforms",
        )
    return chosen


def _platforms_of(arg: ImageArg, chosen: list[Platform], format: ArchiveFormat) -> list[Platform]:
    """An :class:`~imgmirror.ops.saverequest.ImageRequest`'s own platforms, else the call's."""
    own = own_platforms(arg)
    return chosen if own is None else _chosen_platforms(own, format)


def _resolve(
    session: Session,
    parsed: list[tuple[tuple[Reference, Reference, bool], list[Platform]]],
    credential: Credential | None,
    format: ArchiveFormat,
) -> tuple[list[SaveItem], list[SavedImage]]:
    """Each image's manifest tree (and, but for ``oci``, its config), and what to report."""
    items: list[SaveItem] = []
    saved: list[SavedImage] = []
    for (source, name, renamed), platforms in parsed:
        client = session.client(source.registry, credential, role="source")
        tree = fetch_image(
            client, source.repository, source.identifier, platforms or None, jobs=session.jobs
        )
        configs: dict[Digest, bytes] = {}
        if format != "oci":
            image = primary_image(tree)
            configs[image.config.digest] = _fetch_config(client, source.repository, image.config)
            declared = parse_config(configs[image.config.digest]).platform
            plats = tree.declared_platforms() or (str(declared),)
        else:
            plats = tree.declared_platforms()
        origin = Origin(source.registry, source.repository)
        items.append(SaveItem(name, origin, tree, configs))
        saved.append(SavedImage(str(source), str(name), str(tree.top.digest), plats, renamed))
    return items, saved


def save_images(
    session: Session,
    images: Sequence[ImageArg],
    path: str | os.PathLike[str],
    *,
    platforms: PlatformsArg = None,
    format: ArchiveFormat = "docker",
    src_creds: CredentialInput = None,
    progress: ProgressListener | None = None,
    referrers: bool | str | Sequence[str] | None = None,
    referrers_optional: bool = False,
    verify: Gate | None = None,
) -> SaveResult:
    """:func:`save` inside ``session``: its clients, tokens and ``jobs``. With ``verify``,
    every image is checked before the archive gets a byte, and (but for ``legacy``) the
    signatures and attestations are stored beside it.

    Raises:
        PolicyRefused: ``verify`` refused an image; nothing is left at ``path``.
        ImgmirrorError: any failure; nothing is left at ``path`` then.
    """
    chosen = _chosen_platforms(platforms, format)
    wanted_referrers = ArtifactFilter.parse(referrers)
    if verify is not None and wanted_referrers is None and format != "legacy":
        wanted_referrers = ArtifactFilter(("sig", "att"))  # what was verified travels along
    if wanted_referrers is not None and format == "legacy":
        raise ArchiveError(
            "the legacy format cannot hold referrers", hint="save in the docker or oci format"
        )
    if not images:
        raise ArchiveError("nothing to save", hint="name at least one image")
    parsed = [(parse_image_arg(arg), _platforms_of(arg, chosen, format)) for arg in images]
    shown = os.fspath(path)
    kind = archive_compression(shown)  # before any request: refuse a name it cannot honour
    credential = Credential.coerce(src_creds, setting="src_creds")
    jobs = session.jobs
    with open_output(shown) as out:
        items, saved = _resolve(session, parsed, credential, format)
        decisions = _verified(session, verify, credential, items, saved)
        items, left_behind = with_referrers(
            items,
            lambda origin: session.client(origin.registry, credential, role="source"),
            wanted_referrers,
            optional=referrers_optional,
        )
        plan = plan_archive(items, format)
        blobs = [e.blob for e in plan.entries if isinstance(e, BlobEntry | LayerTarEntry)]
        (progress or NullProgress()).planned(blobs, "save")

        def opener(
            origin: Origin, blob: Descriptor
        ) -> contextlib.AbstractContextManager[Iterator[bytes]]:
            client = session.client(origin.registry, credential, role="source")
            return client.open_blob(origin.repository, blob)

        # A plain file can take header fixups, so decompressed layers are read only once,
        # and blobs can be fetched several at a time, each written at its own offset.
        patchable = kind is None and out.seekable
        if patchable:
            size = write_scattered(plan, opener, out, jobs=jobs, progress=progress)
        else:  # in order, the next blobs fetched ahead into bounded buffers
            order = [(e.origin, e.blob) for e in plan.entries if isinstance(e, BlobEntry)]
            with prefetching(opener, order, jobs) as ahead:
                stream = stream_archive(plan, ahead, progress, patchable=False)
                try:
                    size = _write(out, compress(stream, kind) if kind else stream)
                finally:
                    stream.close()
    return SaveResult(
        path=shown,
        format=format,
        images=tuple(saved),
        blobs=plan.blob_count,
        bytes=size,
        compression=kind,
        streamed=not out.seekable,
        referrers=tuple(str(r.referrer.digest) for item in items for r in item.referrers),
        referrers_failed=tuple(left_behind),
        verification=decisions,
    )


def _verified(
    session: Session,
    gate: Gate | None,
    credential: Credential | None,
    items: Sequence[SaveItem],
    saved: Sequence[SavedImage],
) -> tuple[dict[str, Any], ...]:
    """Each image's decision, before the archive gets a byte.

    Raises:
        PolicyRefused: one is refused.
    """
    if gate is None:
        return ()
    out = []
    for item, image in zip(items, saved, strict=True):
        client = session.client(item.origin.registry, credential, role="source")
        digest = item.tree.source_digest or item.tree.top.digest
        verdict = gate.check(client, item.origin.repository, image.source, digest, item.tree)
        out.append(verdict.decision.to_json())
    return tuple(out)
