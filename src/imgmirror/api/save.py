"""Save images into one archive: the one-shot ``imgmirror.save``."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from os import PathLike

from imgmirror.archive.layout import ArchiveFormat
from imgmirror.auth.credentials import CredentialInput
from imgmirror.auth.keychain import Keychain
from imgmirror.model.artifacts import ReferrersArg
from imgmirror.model.platform import PlatformsArg
from imgmirror.ops.save import SaveResult
from imgmirror.ops.save import save as save_in
from imgmirror.ops.saverequest import ImageArg
from imgmirror.progress import ProgressListener
from imgmirror.registry.pool import ClientPool
from imgmirror.transport.options import ClientOptions, Paths
from imgmirror.verify.gate import Gate, opened
from imgmirror.verify.policy import Policy

__all__ = ["save"]


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
    verify: Policy | Gate | None = None,
    verify_cache: str | None = None,
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
            carry each), or ``"all"``: the whole index, digests kept (in ``docker``,
            ``manifest.json`` names the machine's image). Default: the machine's platform for
            ``docker``/``legacy``, the whole index for ``oci``.
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
            SBOMs, attestations), for [push][imgmirror.api.push.push] to restore: True for all,
            or artifact types as for [copy][imgmirror.api.copy.copy] (not in ``legacy``).
        referrers_optional: store referrers best effort: one that cannot be saved is
            listed in ``result.referrers_failed`` instead of failing the save.
        ca_file: a PEM bundle trusted for every registry (the CLI's ``--ca-file``).
        certs_dirs: ``certs.d`` directories searched first (``--certs-dir``).
        insecure_registries: hosts reached over plain HTTP or unverified HTTPS
            (``--insecure-registry``).
        verify: a verification policy ([Policy][imgmirror.verify.policy.Policy], see the
            verification guide) every image must meet before anything is written; the
            signatures that verified travel with the image. ``result.verification`` says who
            signed.
        verify_cache: a file keeping accepted decisions between runs (a changed policy
            invalidates them).

    Raises:
        PolicyRefused: ``verify`` refused an image; nothing was written.
        ImgmirrorError: any failure; nothing is left at ``path`` then.
    """
    if platform is not None:
        warnings.warn(
            "save(platform=...) is deprecated; use platforms=", DeprecationWarning, stacklevel=2
        )
        platforms = platform if platforms is None else platforms
    with (
        opened(verify, verify_cache) as gate,
        ClientPool(
            options, authfile=authfile, keychain=keychain, jobs=jobs, timeout=timeout,
            ca_file=ca_file, certs_dirs=certs_dirs, insecure_registries=insecure_registries,
        ) as pool,
    ):  # fmt: skip
        return save_in(
            pool, images, path, platforms=platforms, format=format, src_creds=src_creds,
            progress=progress, referrers=referrers, referrers_optional=referrers_optional,
            verify=gate,
        )  # fmt: skip
