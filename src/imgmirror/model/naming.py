"""The one rule that names an image under a destination prefix.

``sync``, ``copy SRC PREFIX/`` and ``push ARCHIVE --to PREFIX`` all place images with
[under_prefix][]: with a prefix ``P``, ``registry.k8s.io/pause:3.9`` goes to
``P/pause:3.9`` (the repository path kept, the registry host dropped; Docker Hub images keep
``library/``: ``alpine:3.19`` -> ``P/library/alpine:3.19``). With ``keep_registry`` the host
becomes the first path component (``P/registry.k8s.io/pause:3.9``), so two registries'
``pause`` never collide; a port's ``:`` becomes ``_`` (``localhost:5000`` -> ``localhost_5000``)
because a path component cannot hold a colon. The tag and digest are kept as they are.

This module does no I/O.
"""

from __future__ import annotations

import attrs

from imgmirror.errors import InvalidReference
from imgmirror.model.reference import Reference

__all__ = ["Prefix", "is_prefix", "under_prefix"]


@attrs.frozen
class Prefix:
    """A destination prefix: a registry and an optional path under it."""

    registry: str
    path: str

    @classmethod
    def parse(cls, text: str) -> Prefix:
        """``reg.corp``, ``reg.corp/mirror`` or ``reg.corp/mirror/`` (the slash is optional).

        Raises:
            InvalidReference: not a registry host with an optional repository path, or it
                carries a tag or digest.
        """
        stripped = text.strip().rstrip("/")
        last = stripped.rsplit("/", 1)[-1]
        if "@" in stripped or ("/" in stripped and ":" in last):
            raise InvalidReference(
                f"destination prefix {text!r} must not carry a tag or digest",
                hint="give a registry or registry/path such as reg.corp/mirror",
            )
        first, _, path = stripped.partition("/")
        if not first or not _is_host(first):
            raise InvalidReference(
                f"destination prefix {text!r} does not start with a registry host",
                hint="give a registry or registry/path such as reg.corp/mirror",
            )
        probe = Reference.parse(f"{stripped}/x:latest")
        return cls(probe.registry, probe.repository[: -len("/x")] if path else "")

    def __str__(self) -> str:
        return f"{self.registry}/{self.path}" if self.path else self.registry


def _is_host(text: str) -> bool:
    return "." in text or ":" in text or text == "localhost" or text.startswith("[")


def is_prefix(destination: str) -> bool:
    """Whether a destination argument names a prefix: it ends in ``/``."""
    return destination.endswith("/")


def _registry_component(registry: str) -> str:
    return registry.lower().replace("[", "").replace("]", "").replace(":", "_")


def under_prefix(
    source: Reference, prefix: Prefix | str, *, keep_registry: bool = False
) -> Reference:
    """Where ``source`` goes under ``prefix`` (see the module docstring for the rule).

    Raises:
        InvalidReference: the resulting name is not a valid reference (too long, or a
            registry host that cannot be a path component).
    """
    where = prefix if isinstance(prefix, Prefix) else Prefix.parse(prefix)
    parts = [where.path] if where.path else []
    if keep_registry:
        parts.append(_registry_component(source.registry))
    parts.append(source.repository)
    repository = "/".join(parts)
    try:
        target = Reference.parse(f"{where.registry}/{repository}:latest")
    except InvalidReference as exc:
        raise InvalidReference(
            f"{source} cannot be placed under {where}: {exc.message}",
            hint="use a shorter prefix, or keep-registry: false",
        ) from None
    return attrs.evolve(target, tag=source.tag, digest=source.digest)
