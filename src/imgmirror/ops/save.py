"""Save images from registries into one archive that ``docker load`` and ``ctr import`` accept.

[save_images][] (behind [Session.save][imgmirror.session.Session.save] and the one-shot
[imgmirror.save][imgmirror.api.save.save]) resolves each image (an index is narrowed to the
requested platforms, by default the machine's own), fetches the configs the archive's
metadata needs, plans the archive in pure code
([imgmirror.archive.layout][imgmirror.archive.layout]) and streams it
([imgmirror.archive.writer][imgmirror.archive.writer]) blob by blob, verified, through
[imgmirror.archive.output][imgmirror.archive.output]: a regular file is written beside the output
and renamed into
place only when complete (any failure, Ctrl-C included, leaves nothing at the output path); a
device, FIFO or ``-`` (standard output) is streamed to.
"""

from __future__ import annotations

import contextlib
import os
import shlex
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs

from imgmirror.archive.layout import (
    ArchiveFormat,
    ArchivePlan,
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
from imgmirror.errors import ArchiveError
from imgmirror.model.artifacts import ArtifactFilter, ReferrerChoice, ReferrersArg
from imgmirror.model.compression import compress
from imgmirror.model.digest import Digest
from imgmirror.model.manifest import Descriptor, parse_config
from imgmirror.model.platform import Platform, PlatformsArg, parse_platforms
from imgmirror.model.reference import Reference
from imgmirror.ops.saverequest import ImageArg, every_platform, own_platforms, parse_image_arg
from imgmirror.progress import NullProgress, ProgressListener
from imgmirror.referrers.archive import with_referrers
from imgmirror.registry.fetch import fetch_image
from imgmirror.registry.pool import ClientPool
from imgmirror.transport.client import RegistryClient

if TYPE_CHECKING:  # the gate is given by the caller: a save without one loads no verifier
    from imgmirror.verify.gate import Gate

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


def _chosen_platforms(platforms: PlatformsArg, format: ArchiveFormat) -> list[Platform]:
    """The platforms to save: the machine's by default, except for ``oci`` (everything);
    ``"all"``: every platform (an empty list: the whole index)."""
    if format not in ("docker", "legacy", "oci"):
        raise ArchiveError(f"unknown archive format {format!r}", hint="use docker, legacy or oci")
    if every_platform(platforms):
        if format == "legacy":
            raise ArchiveError(
                "the legacy format holds one platform per image",
                hint="give a single platform in platforms, or save in the docker or oci format",
                setting="platforms",
            )
        return []
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
    """An [ImageRequest][imgmirror.ops.saverequest.ImageRequest]'s own platforms, else the
    call's."""
    own = own_platforms(arg)
    return chosen if own is None else _chosen_platforms(own, format)


def _resolve(
    pool: ClientPool,
    parsed: list[tuple[tuple[Reference, Reference, bool], list[Platform]]],
    credential: Credential | None,
    format: ArchiveFormat,
) -> tuple[list[SaveItem], list[SavedImage]]:
    """Each image's manifest tree (and, but for ``oci``, its config), and what to report."""
    items: list[SaveItem] = []
    saved: list[SavedImage] = []
    for (source, name, renamed), platforms in parsed:
        client = pool.client(source.registry, credential, role="source")
        tree = fetch_image(
            client, source.repository, source.identifier, platforms or None, jobs=pool.jobs
        )
        configs: dict[Digest, bytes] = {}
        here = Platform.host()
        if format != "oci":
            image = primary_image(tree, here)
            configs[image.config.digest] = _fetch_config(client, source.repository, image.config)
            declared = parse_config(configs[image.config.digest]).platform
            plats = tree.declared_platforms() or (str(declared),)
        else:
            plats = tree.declared_platforms()
        origin = Origin(source.registry, source.repository)
        items.append(SaveItem(name, origin, tree, configs, platform=here))
        saved.append(SavedImage(str(source), str(name), str(tree.top.digest), plats, renamed))
    return items, saved


def save(
    pool: ClientPool,
    images: Sequence[ImageArg],
    path: str | os.PathLike[str],
    *,
    platforms: PlatformsArg = None,
    format: ArchiveFormat = "docker",
    src_creds: CredentialInput = None,
    progress: ProgressListener | None = None,
    referrers: ReferrersArg = None,
    referrers_optional: bool = False,
    verify: Gate | None = None,
) -> SaveResult:
    """[imgmirror.save][imgmirror.api.save.save] inside ``pool``: its arguments parsed into
    values, then [save_images][imgmirror.ops.save.save_images]."""
    return save_images(
        pool,
        images,
        path,
        platforms=platforms,
        format=format,
        src_creds=Credential.coerce(src_creds, setting="src_creds"),
        progress=progress,
        referrers=ReferrerChoice.parse(referrers, referrers_optional),
        verify=verify,
    )


def save_images(
    pool: ClientPool,
    images: Sequence[ImageArg],
    path: str | os.PathLike[str],
    *,
    platforms: PlatformsArg = None,
    format: ArchiveFormat = "docker",
    src_creds: Credential | None = None,
    progress: ProgressListener | None = None,
    referrers: ReferrerChoice | None = None,
    verify: Gate | None = None,
) -> SaveResult:
    """Save ``images`` into one archive at ``path`` inside ``pool`` (its clients, tokens and
    ``jobs``); see [imgmirror.save][imgmirror.api.save.save]. With ``verify``, every image is
    checked before the archive gets a byte, and (but for ``legacy``) the signatures and
    attestations are stored beside it.

    Raises:
        PolicyRefused: ``verify`` refused an image; nothing is left at ``path``.
        ImgmirrorError: any failure; nothing is left at ``path`` then.
    """
    chosen = _chosen_platforms(platforms, format)
    if verify is not None and referrers is None and format != "legacy":
        referrers = ReferrerChoice(ArtifactFilter(("sig", "att")))  # what was verified
    if referrers is not None and format == "legacy":
        raise ArchiveError(
            "the legacy format cannot hold referrers", hint="save in the docker or oci format"
        )
    if not images:
        raise ArchiveError("nothing to save", hint="name at least one image")
    parsed = [(parse_image_arg(arg), _platforms_of(arg, chosen, format)) for arg in images]
    shown = os.fspath(path)
    kind = archive_compression(shown)  # before any request: refuse a name it cannot honour

    def client_for(origin: Origin) -> RegistryClient:
        return pool.client(origin.registry, src_creds, role="source")

    with open_output(shown) as out:
        items, saved = _resolve(pool, parsed, src_creds, format)
        decisions = _verified(verify, client_for, items, saved)
        items, left_behind = with_referrers(items, client_for, referrers)
        plan = plan_archive(items, format)
        blobs = [e.blob for e in plan.entries if isinstance(e, BlobEntry | LayerTarEntry)]
        (progress or NullProgress()).planned(blobs, "save")
        size = _write_archive(plan, client_for, out, kind, pool, progress)
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
    gate: Gate | None,
    client_for: Callable[[Origin], RegistryClient],
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
        digest = item.tree.source_digest or item.tree.top.digest
        client = client_for(item.origin)
        verdict = gate.check(client, item.origin.repository, image.source, digest, item.tree)
        out.append(verdict.decision.to_json())
    return tuple(out)


def _write_archive(  # noqa: PLR0917 - one private step of save_images
    plan: ArchivePlan,
    client_for: Callable[[Origin], RegistryClient],
    out: Output,
    kind: Literal["gzip", "zstd"] | None,
    pool: ClientPool,
    progress: ProgressListener | None,
) -> int:
    """Write ``plan``'s bytes to ``out``; returns the archive's size.

    A plain file can take header fixups, so decompressed layers are read only once, and
    blobs are fetched several at a time, each written at its own offset. Otherwise the
    archive is written in order, the next blobs fetched ahead into bounded buffers.
    """

    def opener(
        origin: Origin, blob: Descriptor
    ) -> contextlib.AbstractContextManager[Iterator[bytes]]:
        return client_for(origin).open_blob(origin.repository, blob)

    if kind is None and out.seekable:
        return write_scattered(
            plan, opener, out, jobs=pool.jobs, progress=progress, retry=pool.options.retry
        )
    order = [(e.origin, e.blob) for e in plan.entries if isinstance(e, BlobEntry)]
    with prefetching(opener, order, pool.jobs) as ahead:
        stream = stream_archive(plan, ahead, progress, patchable=False)
        try:
            return _write(out, compress(stream, kind) if kind else stream)
        finally:
            stream.close()
