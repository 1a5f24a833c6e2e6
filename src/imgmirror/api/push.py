"""Push the images of an archive to a registry: the one-shot ``imgmirror.push``."""

from __future__ import annotations

from collections.abc import Iterable
from os import PathLike

from imgmirror.auth.credentials import CredentialInput
from imgmirror.auth.keychain import Keychain
from imgmirror.model.artifacts import ReferrersArg
from imgmirror.model.platform import PlatformsArg
from imgmirror.ops.push import ConsentInput, PushResult
from imgmirror.ops.push import push as push_in
from imgmirror.progress import ProgressListener
from imgmirror.registry.pool import ClientPool
from imgmirror.transport.options import ClientOptions, Paths

__all__ = ["push"]


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
            [copy][imgmirror.api.copy.copy] does. A single-platform image is pushed as it is.
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
            [copy][imgmirror.api.copy.copy], or False.
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
    with ClientPool(
        options, authfile=authfile, keychain=keychain, jobs=jobs, timeout=timeout,
        ca_file=ca_file, certs_dirs=certs_dirs, insecure_registries=insecure_registries,
    ) as pool:  # fmt: skip
        return push_in(
            pool, path, dest, platforms=platforms, dest_creds=dest_creds, progress=progress,
            to_archive_names=to_archive_names, image=image, referrers=referrers,
            referrers_optional=referrers_optional,
        )  # fmt: skip
