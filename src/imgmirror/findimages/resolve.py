"""One manifest ``HEAD`` per tag at the source, through the caller's session, for the lock.

The session (an [imgmirror.Session][imgmirror.Session], or anything with its ``client(registry,
credential, role=)``) gives one client per registry, so each registry is pinged and
authenticated once however many images it holds, with the same keychain, CA and mirror
settings as ``copy``. ``jobs`` HEADs run at once. An image named by digest costs nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import attrs

from imgmirror.auth.credentials import Credential
from imgmirror.errors import ImgmirrorError
from imgmirror.model.digest import Digest
from imgmirror.model.reference import Reference
from imgmirror.registry.parallel import run_parallel
from imgmirror.transport.client import RegistryClient

__all__ = ["ClientSource", "Resolved", "resolve_digests"]


class ClientSource(Protocol):
    """What resolving needs of a session: the client of a registry."""

    def client(
        self, registry: str, credential: Credential | None, *, role: str | None = None
    ) -> RegistryClient: ...


@attrs.frozen
class Resolved:
    """An image as written, its digest (None when it failed) and why it failed."""

    image: str
    digest: Digest | None
    error: str | None = None


def _one(session: ClientSource, image: str) -> Resolved:
    try:
        ref = Reference.parse(image)
        if ref.digest is not None:
            return Resolved(image, ref.digest)
        client = session.client(ref.registry, None, role="source")
        found = client.head_manifest(ref.repository, ref.identifier)
        if found is None:
            return Resolved(image, None, f"{ref} not found; check the name and the tag")
        return Resolved(image, found.digest)
    except ImgmirrorError as exc:
        return Resolved(image, None, str(exc))


def resolve_digests(
    session: ClientSource, images: Sequence[str], *, jobs: int = 8
) -> list[Resolved]:
    """Each image's digest at its source, in the order given; failures are reported in the
    result (``digest`` None), never raised, so one missing tag does not lose the others."""
    return run_parallel(lambda image: _one(session, image), list(images), jobs)
