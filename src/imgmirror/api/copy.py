"""Copy one image (or a whole index) between registries: the one-shot ``imgmirror.copy``."""

from __future__ import annotations

from collections.abc import Iterable
from os import PathLike

from imgmirror.auth.credentials import CredentialInput
from imgmirror.auth.keychain import Keychain
from imgmirror.model.artifacts import ReferrersArg
from imgmirror.model.platform import PlatformsArg
from imgmirror.model.reference import Reference
from imgmirror.ops.copy import CopyResult
from imgmirror.ops.copy import copy as copy_in
from imgmirror.progress import ProgressListener
from imgmirror.registry.pool import ClientPool
from imgmirror.transport.options import ClientOptions, Paths

__all__ = ["copy"]


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
    with ClientPool(
        options, authfile=authfile, keychain=keychain, jobs=jobs, timeout=timeout,
        ca_file=ca_file, certs_dirs=certs_dirs, insecure_registries=insecure_registries,
    ) as pool:  # fmt: skip
        return copy_in(
            pool, src, dst, platforms=platforms, src_creds=src_creds, dest_creds=dest_creds,
            progress=progress, referrers=referrers, referrers_optional=referrers_optional,
        )  # fmt: skip
