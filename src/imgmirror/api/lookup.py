"""Look at what a registry holds without copying it: the one-shot look-ups."""

from __future__ import annotations

from collections.abc import Iterable
from os import PathLike

from imgmirror.auth.credentials import CredentialInput
from imgmirror.auth.keychain import Keychain
from imgmirror.model.manifest import Descriptor
from imgmirror.model.platform import Platform
from imgmirror.ops import lookup
from imgmirror.ops.lookup import Inspection
from imgmirror.registry.pool import ClientPool
from imgmirror.transport.options import ClientOptions, Paths

__all__ = ["image_digest", "inspect", "list_repositories", "list_tags"]


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
    with ClientPool(
        options, authfile=authfile, keychain=keychain, jobs=1, timeout=timeout,
        ca_file=ca_file, certs_dirs=certs_dirs, insecure_registries=insecure_registries,
    ) as pool:  # fmt: skip
        return lookup.list_tags(pool, repository, creds=creds, page_size=page_size)


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
    with ClientPool(
        options, authfile=authfile, keychain=keychain, jobs=1, timeout=timeout,
        ca_file=ca_file, certs_dirs=certs_dirs, insecure_registries=insecure_registries,
    ) as pool:  # fmt: skip
        return lookup.list_repositories(pool, registry, creds=creds, page_size=page_size)


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
    with ClientPool(
        options, authfile=authfile, keychain=keychain, jobs=1, timeout=timeout,
        ca_file=ca_file, certs_dirs=certs_dirs, insecure_registries=insecure_registries,
    ) as pool:  # fmt: skip
        return lookup.image_digest(pool, image, creds=creds)


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
    with ClientPool(
        options, authfile=authfile, keychain=keychain, jobs=1, timeout=timeout,
        ca_file=ca_file, certs_dirs=certs_dirs, insecure_registries=insecure_registries,
    ) as pool:  # fmt: skip
        return lookup.inspect(pool, image, platform=platform, creds=creds)
