"""List what refers to an image: the one-shot ``imgmirror.find_referrers``."""

from __future__ import annotations

from collections.abc import Iterable
from os import PathLike

from imgmirror.auth.credentials import CredentialInput
from imgmirror.auth.keychain import Keychain
from imgmirror.model.artifacts import ReferrersArg
from imgmirror.model.reference import Reference
from imgmirror.model.referrers import MAX_DEPTH
from imgmirror.referrers.discover import ReferrerListing
from imgmirror.referrers.discover import find_referrers as find_in
from imgmirror.registry.pool import ClientPool
from imgmirror.transport.options import ClientOptions, Paths

__all__ = ["find_referrers"]


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
    with ClientPool(
        options, authfile=authfile, keychain=keychain, jobs=1, timeout=timeout,
        ca_file=ca_file, certs_dirs=certs_dirs, insecure_registries=insecure_registries,
    ) as pool:  # fmt: skip
        return find_in(pool, image, types=types, src_creds=src_creds, max_depth=max_depth)
