"""The one-shot calls: each opens a [Session][imgmirror.session.Session], calls its method and
closes it (as httpx's ``httpx.get`` over ``httpx.Client``).

Every call takes the connection settings the command line has (``timeout``, ``ca_file``,
``certs_dirs``, ``insecure_registries``, or a whole ``options`` value) and where credentials
come from (``authfile``, ``keychain``). Several calls in a row are cheaper through one
session: it shares connections, tokens and the ``/v2/`` checks.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from os import PathLike

from imgmirror.archive.layout import ArchiveFormat
from imgmirror.auth.credentials import CredentialInput
from imgmirror.auth.keychain import Keychain
from imgmirror.model.artifacts import ReferrersArg
from imgmirror.model.manifest import Descriptor
from imgmirror.model.platform import Platform, PlatformsArg
from imgmirror.model.reference import Reference
from imgmirror.model.referrers import MAX_DEPTH
from imgmirror.ops.copy import CopyResult
from imgmirror.ops.lookup import Inspection
from imgmirror.ops.push import ConsentInput, PushResult
from imgmirror.ops.save import SaveResult
from imgmirror.ops.saverequest import ImageArg
from imgmirror.progress import ProgressListener
from imgmirror.referrers.discover import ReferrerListing
from imgmirror.session import Session
from imgmirror.syncing.file import SyncSpec
from imgmirror.syncing.report import SyncObserver, SyncReport
from imgmirror.syncing.shards import Shard
from imgmirror.transport.options import ClientOptions

__all__ = [
    "copy",
    "find_referrers",
    "image_digest",
    "inspect",
    "list_repositories",
    "list_tags",
    "push",
    "save",
    "sync",
]

Paths = Iterable[str | PathLike[str]]


def _session(  # noqa: PLR0917 - the one-shots' shared settings, always in this order
    options: ClientOptions | None,
    authfile: str | PathLike[str] | None,
    keychain: Keychain | None,
    jobs: int,
    timeout: float | None,
    ca_file: str | PathLike[str] | None,
    certs_dirs: Paths | None,
    insecure_registries: Iterable[str] | None,
) -> Session:
    return Session(
        options,
        authfile=authfile,
        keychain=keychain,
        jobs=jobs,
        timeout=timeout,
        ca_file=ca_file,
        certs_dirs=certs_dirs,
        insecure_registries=insecure_registries,
    )


def copy(
    src: str | Reference,
    dst: str | Reference,
    *,
    platforms: PlatformsArg = None,
    src_creds: CredentialInput = None,
    dest_creds: CredentialInput = None,
    jobs: int = 8,
    timeout: float | None = None,
    progress: ProgressListener | None = None,
    authfile: str | PathLike[str] | None = None,
    keychain: Keychain | None = None,
    options: ClientOptions | None = None,
    referrers: ReferrersArg = None,
    referrers_optional: bool = False,
    ca_file: str | PathLike[str] | None = None,
    certs_dirs: Paths | None = None,
    insecure_registries: Iterable[str] | None = None,
) -> CopyResult:
    """Copy an image (or a whole index) from ``src`` to ``dst``, manifests byte for byte.

    Args:
        src: source reference, e.g. ``"registry.k8s.io/pause:3.9"``.
        dst: destination reference. Without a tag, the source's tag is used. Ending in
            ``/`` it is a prefix (the naming rule): ``reg.corp/mirror/``
            puts ``registry.k8s.io/pause:3.9`` at ``reg.corp/mirror/pause:3.9``.
        platforms: ``"linux/arm64"`` (or ``["linux/arm64"]``) copies only that platform's
            image, unchanged, and tags it; several platforms make a new, smaller index. None
            copies everything.
        src_creds: credentials for the source: ``"user:pass"``, ``(user, pass)`` or a
            [Credential][imgmirror.auth.credentials.Credential]; None asks ``authfile`` and
            the keychain.
        dest_creds: credentials for the destination, in the same forms.
        jobs: blobs transferred at once.
        timeout: seconds a request may wait for a reply or stall (default:
            ``options.timeout``, 30).
        progress: receives ``planned(blobs, "copy")`` then per-blob events.
        authfile: a credentials file consulted when no explicit credentials are given
            (docker config.json, podman auth.json, .dockercfg or a Kubernetes pull Secret).
        keychain: a custom credential source (see [Keychain][imgmirror.auth.keychain.Keychain]),
            asked instead of the standard credential files.
        options: TLS, retry and timeout settings as one value.
        referrers: also carry what refers to the image and its children (signatures,
            SBOMs, attestations; see the referrers guide): True for all, or artifact
            types (``"sig"``, ``"att"``, ``"sbom"`` or media types, a list or comma-separated).
        referrers_optional: carry referrers best effort: failures are reported in
            ``result.referrers.failed`` instead of failing the copy.
        ca_file: a PEM bundle trusted for every registry (the CLI's ``--ca-file``).
        certs_dirs: ``certs.d`` directories searched first (``--certs-dir``).
        insecure_registries: hosts reached over plain HTTP or unverified HTTPS
            (``--insecure-registry``).

    Returns:
        A [CopyResult][imgmirror.ops.copy.CopyResult] whose ``digest`` is the destination's
        top manifest digest.

    Raises:
        ImgmirrorError: any failure; nothing is tagged at the destination unless every blob
            and child manifest arrived and verified.
    """
    with _session(
        options, authfile, keychain, jobs, timeout, ca_file, certs_dirs, insecure_registries
    ) as session:
        return session.copy(
            src, dst, platforms=platforms, src_creds=src_creds, dest_creds=dest_creds,
            progress=progress, referrers=referrers, referrers_optional=referrers_optional,
        )  # fmt: skip


def save(
    images: Sequence[ImageArg],
    path: str | PathLike[str],
    *,
    platforms: PlatformsArg = None,
    format: ArchiveFormat = "docker",
    src_creds: CredentialInput = None,
    jobs: int = 8,
    timeout: float | None = None,
    progress: ProgressListener | None = None,
    authfile: str | PathLike[str] | None = None,
    keychain: Keychain | None = None,
    options: ClientOptions | None = None,
    platform: PlatformsArg = None,
    referrers: ReferrersArg = None,
    referrers_optional: bool = False,
    ca_file: str | PathLike[str] | None = None,
    certs_dirs: Paths | None = None,
    insecure_registries: Iterable[str] | None = None,
) -> SaveResult:
    """Save images from registries into one archive that ``docker load`` and
    ``ctr images import`` take.

    Args:
        images: ``"IMAGE"``, ``"IMAGE=NAME"``, ``(IMAGE, NAME)`` or an
            [ImageRequest][imgmirror.ops.saverequest.ImageRequest]; NAME is the name loaders
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
            ``options.timeout``, 30).
        progress: receives ``planned(blobs, "save")`` before the first blob byte, then
            per-blob events (outcome ``saved``).
        authfile: a credentials file consulted when ``src_creds`` is not given.
        keychain: a custom credential source, asked instead of the standard files.
        options: TLS, retry and timeout settings as one value.
        platform: the older name of ``platforms`` (deprecated: a DeprecationWarning).
        referrers: also store what refers to each image and its manifests (signatures,
            SBOMs, attestations), for [push][imgmirror.api.push] to restore: True for all,
            or artifact types as for [copy][imgmirror.api.copy] (not in ``legacy``).
        referrers_optional: store referrers best effort: one that cannot be saved is
            listed in ``result.referrers_failed`` instead of failing the save.
        ca_file: a PEM bundle trusted for every registry (the CLI's ``--ca-file``).
        certs_dirs: ``certs.d`` directories searched first (``--certs-dir``).
        insecure_registries: hosts reached over plain HTTP or unverified HTTPS
            (``--insecure-registry``).

    Raises:
        ImgmirrorError: any failure; nothing is left at ``path`` then.
    """
    if platform is not None:
        warnings.warn(
            "save(platform=...) is deprecated; use platforms=", DeprecationWarning, stacklevel=2
        )
        platforms = platform if platforms is None else platforms
    with _session(
        options, authfile, keychain, jobs, timeout, ca_file, certs_dirs, insecure_registries
    ) as session:
        return session.save(
            images, path, platforms=platforms, format=format, src_creds=src_creds,
            progress=progress, referrers=referrers, referrers_optional=referrers_optional,
        )  # fmt: skip


def push(
    path: str | PathLike[str],
    dest: str | None = None,
    *,
    platforms: PlatformsArg = None,
    dest_creds: CredentialInput = None,
    jobs: int = 4,
    timeout: float | None = None,
    progress: ProgressListener | None = None,
    authfile: str | PathLike[str] | None = None,
    keychain: Keychain | None = None,
    options: ClientOptions | None = None,
    to_archive_names: ConsentInput = False,
    image: str | None = None,
    referrers: ReferrersArg = True,
    referrers_optional: bool = False,
    ca_file: str | PathLike[str] | None = None,
    certs_dirs: Paths | None = None,
    insecure_registries: Iterable[str] | None = None,
) -> PushResult:
    """Push every image of an image archive (or one: ``image``) to a registry, without
    unpacking it.

    Args:
        path: a tarball from ``docker save``, skopeo (``docker-archive``, ``oci-archive``),
            crane, ``ctr images export`` or ``imgmirror save``, plain, gzip or zstd; a
            directory holding an OCI image layout or a skopeo ``dir:`` layout; or a stream
            (``"-"`` for stdin, ``/dev/stdin``, a FIFO), spooled to a temporary file of at
            most ``SPOOL_LIMIT`` bytes (64 GiB). ``FILE:REF``
            selects one image, like ``image``.
        dest: None (each image to the name it carries), a full reference with a tag (for a
            one-image archive), or a registry / registry/prefix (each image keeps its
            repository path and tag under it, as ``sync`` names them).
        platforms: ``"linux/arm64"`` or a list: of an image that is an index, push only
            those platforms (one: that image, unchanged; several: a smaller index), as
            [copy][imgmirror.api.copy] does. A single-platform image is pushed as it is.
        dest_creds: ``"user:pass"``, ``(user, pass)`` or a Credential. They go only to
            ``dest``'s registry: with no ``dest`` the registries come from the (untrusted)
            archive, and explicit credentials are refused unless ``to_archive_names`` allows
            sending them there.
        jobs: blobs uploaded at once (plain tar only; compressed archives are read in order).
        timeout: seconds a request may wait for a reply or stall (default:
            ``options.timeout``, 30).
        progress: receives ``planned(blobs, "push")`` then per-blob events.
        authfile: a credentials file consulted when ``dest_creds`` is not given.
        keychain: a custom credential source, asked instead of the standard files.
        options: TLS, retry and timeout settings as one value.
        to_archive_names: with ``dest_creds`` and no ``dest``: True, or a function called
            with the registries the archive names that returns True, to send the
            credentials to them.
        image: push only this image: one of its names, a bare tag or its digest.
        referrers: restore the referrers the archive stores for the images pushed
            (``save --referrers``): True (all, the default), artifact types as for
            [copy][imgmirror.api.copy], or False.
        referrers_optional: restore them best effort: a referrer the archive holds only in
            part, or that cannot be pushed, is reported in ``result.referrers.failed``.
        ca_file: a PEM bundle trusted for every registry (the CLI's ``--ca-file``).
        certs_dirs: ``certs.d`` directories searched first (``--certs-dir``).
        insecure_registries: hosts reached over plain HTTP or unverified HTTPS
            (``--insecure-registry``).

    Raises:
        ArchiveNamesNeedConsent: ``dest_creds`` without ``dest`` and no consent.
        ArchiveError: the archive is unsafe, incomplete or inconsistent; nothing was pushed.
        VerificationError: a blob does not match its digest; nothing was tagged.
        ImgmirrorError: any other failure; nothing is tagged unless every blob arrived.
    """
    with _session(
        options, authfile, keychain, jobs, timeout, ca_file, certs_dirs, insecure_registries
    ) as session:
        return session.push(
            path, dest, platforms=platforms, dest_creds=dest_creds, progress=progress,
            to_archive_names=to_archive_names, image=image, referrers=referrers,
            referrers_optional=referrers_optional,
        )  # fmt: skip


def sync(
    spec: SyncSpec | str | PathLike[str],
    *,
    to: str | None = None,
    platforms: PlatformsArg = None,
    src_creds: CredentialInput = None,
    dest_creds: CredentialInput = None,
    jobs: int = 8,
    timeout: float | None = None,
    progress: ProgressListener | None = None,
    dry_run: bool = False,
    fail_fast: bool = False,
    shard: Shard | str | None = None,
    observer: SyncObserver | None = None,
    authfile: str | PathLike[str] | None = None,
    keychain: Keychain | None = None,
    options: ClientOptions | None = None,
    ca_file: str | PathLike[str] | None = None,
    certs_dirs: Paths | None = None,
    insecure_registries: Iterable[str] | None = None,
) -> SyncReport:
    """Mirror every image a sync file selects (see the sync guide).

    Args:
        spec: a path to a sync file, or a parsed ``SyncSpec``
            (``imgmirror.syncing.file.parse_sync_file``).
        to: destination prefix replacing the file's ``defaults.to`` (only with a path).
        platforms: ``"linux/arm64"`` or a list: every entry takes these platforms, in place
            of the file's ``platforms:``. None: as the file says.
        src_creds: explicit source credentials, only when the file reads from a single
            registry. Otherwise use ``authfile`` or the keychain.
        dest_creds: explicit destination credentials, only when the file writes to a
            single registry.
        jobs: images checked and blobs transferred at once (one budget for the whole run).
        timeout: seconds a request may wait for a reply or stall (default:
            ``options.timeout``, 30).
        progress: per-blob events of the copies.
        dry_run: check what is there and report ``would-copy``/``unchanged``; write nothing.
        fail_fast: stop at the first failure (images not started are not reported).
        shard: ``"I/N"`` or a ``Shard``: only the entries in it.
        observer: per-image events (started, finished with its result).
        authfile: a credentials file; wins over the file's ``defaults.authfile``.
        keychain: a custom credential source, asked instead of the standard files.
        options: TLS, retry and timeout settings as one value.
        ca_file: a PEM bundle trusted for every registry (the CLI's ``--ca-file``).
        certs_dirs: ``certs.d`` directories searched first (``--certs-dir``).
        insecure_registries: hosts reached over plain HTTP or unverified HTTPS
            (``--insecure-registry``).

    Returns:
        A [SyncReport][imgmirror.syncing.report.SyncReport]; ``report.failed`` counts
        failures (a failure never raises).

    Raises:
        InvalidSyncFile: the file is malformed (before anything is contacted).
        ShardError: ``shard`` is not ``I/N``.
        CredentialsError: explicit credentials with several registries on that side.
    """
    with _session(
        options, authfile, keychain, jobs, timeout, ca_file, certs_dirs, insecure_registries
    ) as session:
        return session.sync(
            spec, to=to, platforms=platforms, src_creds=src_creds, dest_creds=dest_creds,
            progress=progress, dry_run=dry_run, fail_fast=fail_fast, shard=shard,
            observer=observer,
        )  # fmt: skip


def list_tags(
    repository: str,
    *,
    creds: CredentialInput = None,
    authfile: str | PathLike[str] | None = None,
    keychain: Keychain | None = None,
    options: ClientOptions | None = None,
    page_size: int = 1000,
    timeout: float | None = None,
    ca_file: str | PathLike[str] | None = None,
    certs_dirs: Paths | None = None,
    insecure_registries: Iterable[str] | None = None,
) -> list[str]:
    """Every tag of ``repository`` (``registry/path``; a tag or digest in it is ignored),
    ``Link`` pages followed.

    Raises:
        NotFound: the repository does not exist.
        RegistryError: the registry refused or sent a listing out of bounds.
    """
    with _session(
        options, authfile, keychain, 1, timeout, ca_file, certs_dirs, insecure_registries
    ) as session:
        return session.list_tags(repository, creds=creds, page_size=page_size)


def list_repositories(
    registry: str,
    *,
    creds: CredentialInput = None,
    authfile: str | PathLike[str] | None = None,
    keychain: Keychain | None = None,
    options: ClientOptions | None = None,
    page_size: int = 1000,
    timeout: float | None = None,
    ca_file: str | PathLike[str] | None = None,
    certs_dirs: Paths | None = None,
    insecure_registries: Iterable[str] | None = None,
) -> list[str]:
    """Every repository of ``registry`` (``/v2/_catalog``), if the registry lists them.

    Raises:
        RegistryError: the registry does not list its repositories, or refused.
    """
    with _session(
        options, authfile, keychain, 1, timeout, ca_file, certs_dirs, insecure_registries
    ) as session:
        return session.list_repositories(registry, creds=creds, page_size=page_size)


def image_digest(
    image: str,
    *,
    creds: CredentialInput = None,
    authfile: str | PathLike[str] | None = None,
    keychain: Keychain | None = None,
    options: ClientOptions | None = None,
    timeout: float | None = None,
    ca_file: str | PathLike[str] | None = None,
    certs_dirs: Paths | None = None,
    insecure_registries: Iterable[str] | None = None,
) -> Descriptor:
    """The digest (media type, size) ``image`` resolves to, from one ``HEAD``.

    Raises:
        NotFound: the tag or digest does not exist.
    """
    with _session(
        options, authfile, keychain, 1, timeout, ca_file, certs_dirs, insecure_registries
    ) as session:
        return session.image_digest(image, creds=creds)


def inspect(
    image: str,
    *,
    platform: str | Platform | None = None,
    creds: CredentialInput = None,
    authfile: str | PathLike[str] | None = None,
    keychain: Keychain | None = None,
    options: ClientOptions | None = None,
    timeout: float | None = None,
    ca_file: str | PathLike[str] | None = None,
    certs_dirs: Paths | None = None,
    insecure_registries: Iterable[str] | None = None,
) -> Inspection:
    """Fetch and describe ``image``'s manifest (with ``platform``: that image of an index),
    and the config of an image manifest.

    Raises:
        NotFound: the image does not exist.
        PlatformNotFound: an index without ``platform``.
        VerificationError: the bytes do not match the digest asked for.
    """
    with _session(
        options, authfile, keychain, 1, timeout, ca_file, certs_dirs, insecure_registries
    ) as session:
        return session.inspect(image, platform=platform, creds=creds)


def find_referrers(
    image: str | Reference,
    *,
    types: ReferrersArg = True,
    src_creds: CredentialInput = None,
    authfile: str | PathLike[str] | None = None,
    keychain: Keychain | None = None,
    options: ClientOptions | None = None,
    max_depth: int = MAX_DEPTH,
    timeout: float | None = None,
    ca_file: str | PathLike[str] | None = None,
    certs_dirs: Paths | None = None,
    insecure_registries: Iterable[str] | None = None,
) -> ReferrerListing:
    """List what refers to ``image`` and to each manifest of its index: signatures, SBOMs,
    attestations, and their own referrers down to ``max_depth``.

    Args:
        types: True for every artifact type, or names (``"sig"``, ``"att"``, ``"sbom"``,
            media types; a list or comma-separated).

    Raises:
        InvalidArtifactType: an unknown type name.
        ReferrerError: a referrers index that is not one, a cycle, an inconsistent referrer.
    """
    with _session(
        options, authfile, keychain, 1, timeout, ca_file, certs_dirs, insecure_registries
    ) as session:
        return session.find_referrers(image, types=types, src_creds=src_creds, max_depth=max_depth)
