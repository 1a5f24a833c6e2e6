"""Image references: parse strings such as ``alpine:3.19`` into frozen [Reference][] values.

Grammar and defaulting follow distribution/reference (``regexp.go``, ``normalize.go``):

* ``reference := name [":" tag] ["@" digest]``; a ``:`` is a tag separator only after the
  last ``/`` (``localhost:5000/foo`` has no tag).
* The text before the first ``/`` is a registry if it is ``localhost``, contains ``.`` or
  ``:`` (``host:5000``, ``[::1]:5000``) or contains an uppercase letter; otherwise the whole
  name is a Docker Hub path. ``index.docker.io`` is folded into ``docker.io``.
* On ``docker.io`` only, a one-component path gets ``library/`` prepended.
* The tag defaults to ``latest`` only when neither tag nor digest is given. ``name:tag@digest``
  keeps both; the digest is what gets pulled, the tag is a label.
* Path components are lowercase; the path is at most 255 characters, a tag at most 128.

This module does no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

import attrs

from imgmirror.errors import InvalidDigest, InvalidReference, UnsafeName, quoted
from imgmirror.model.digest import Digest

__all__ = [
    "DOCKER_HUB",
    "DOCKER_HUB_API",
    "Reference",
    "check_identifier",
    "check_repository",
    "check_tag",
    "is_loopback_host",
]

#: How Docker Hub is spelled in references.
DOCKER_HUB = "docker.io"
#: The host that actually serves the Docker Hub registry API.
DOCKER_HUB_API = "registry-1.docker.io"

_HUB_ALIASES = frozenset({"docker.io", "index.docker.io"})
_DOCKER_TRANSPORT = "docker://"
_DEFAULT_TAG = "latest"
_MAX_PATH = 255
_MAX_TAG = 128

_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = re.compile(
    rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[(?P<ipv6>[0-9a-fA-F:.]+)\])"
    r"(?::(?P<port>[0-9]+))?"
)
_IMAGE_ID = re.compile(r"[a-f0-9]{64}")


def _fail(text: str, problem: str) -> InvalidReference:
    return InvalidReference(f'invalid image reference "{text}": {problem}')


def _check_host(text: str, host: str) -> None:
    match = _HOST.fullmatch(host)
    if not match:
        raise _fail(text, f"invalid registry host {host!r}")
    port = match.group("port")
    if port is not None and not 0 < int(port) < 65536:
        raise _fail(text, f"port {port} of registry host {host!r} is not between 1 and 65535")
    if match.group("ipv6") is not None:
        try:
            ipaddress.IPv6Address(match.group("ipv6"))
        except ValueError:
            raise _fail(text, f"invalid IPv6 address in registry host {host!r}") from None


_TAG_ALLOWED = "allowed: A-Z, a-z, 0-9, '_', '.', '-'; not first '.' '-'"
_PATH_ALLOWED = "allowed: a-z, 0-9, separated by '.', '_', '__' or '-'"


def _path_problem(path: str) -> str | None:
    """What is wrong with a repository path, or None (its length is checked first)."""
    if len(path) > _MAX_PATH:
        return f"repository name is longer than {_MAX_PATH} characters"
    for component in path.split("/"):
        if _PATH_COMPONENT.fullmatch(component):
            continue
        if _PATH_COMPONENT.fullmatch(component.lower()):
            return "repository name must be lowercase"
        if not component:
            return "repository name has an empty path component"
        return f"invalid repository path component {quoted(component)} ({_PATH_ALLOWED})"
    return None


def _tag_problem(tag: str) -> str | None:
    """Why ``tag`` is not a tag (``empty``, ``long``, ``grammar``), or None."""
    if not tag:
        return "empty"
    if len(tag) > _MAX_TAG:
        return "long"
    return None if _TAG.fullmatch(tag) else "grammar"


def _check_path(text: str, path: str) -> None:
    problem = _path_problem(path)
    if problem:
        raise _fail(text, problem)


def _check_tag(text: str, tag: str) -> None:
    problem = _tag_problem(tag)
    if problem == "empty":
        raise _fail(text, "tag is empty")
    if problem == "long":
        raise _fail(text, f"tag is longer than {_MAX_TAG} characters")
    if problem:
        raise _fail(text, f"invalid tag {quoted(tag)} ({_TAG_ALLOWED})")


def check_tag(tag: object) -> str:
    """``tag`` if it is a valid tag (``[A-Za-z0-9_][A-Za-z0-9._-]{0,127}``): what a name a
    registry lists must be before it becomes part of a URL.

    Raises:
        UnsafeName: not a string, or not a valid tag; the message quotes it, shortened.
    """
    if not isinstance(tag, str):
        raise UnsafeName(f"{quoted(tag)} is not a valid tag")
    problem = _tag_problem(tag)
    if problem is not None:
        reason = {"empty": "empty", "long": f"longer than {_MAX_TAG} characters"}
        raise UnsafeName(f"{quoted(tag)} is not a valid tag ({reason.get(problem, _TAG_ALLOWED)})")
    return tag


def check_repository(path: object) -> str:
    """``path`` if it is a valid repository path (lowercase components joined by ``/``, at
    most 255 characters): for the names a catalog lists and every request path.

    Raises:
        UnsafeName: not a string, or not a valid repository path.
    """
    if not isinstance(path, str):
        raise UnsafeName(f"{quoted(path)} is not a valid repository name")
    problem = _path_problem(path)
    if problem is not None:
        raise UnsafeName(f"{quoted(path)} is not a valid repository name ({problem})")
    return path


def check_identifier(ref: str) -> str:
    """``ref`` if it is a tag or a digest: what ``/manifests/<ref>`` may hold.

    Raises:
        UnsafeName: neither a valid tag nor a valid digest.
    """
    if ":" not in ref:
        return check_tag(ref)
    try:
        Digest.parse(ref)
    except InvalidDigest as exc:
        raise UnsafeName(f"{quoted(ref)} is not a valid digest: {exc.message}") from None
    return ref


def _normalise(text: str, registry: str, path: str) -> tuple[str, str]:
    """Apply Docker Hub defaulting and validate; returns (registry, repository)."""
    if registry.lower() in _HUB_ALIASES:
        registry = DOCKER_HUB
    else:
        _check_host(text, registry)
    if registry == DOCKER_HUB and path and "/" not in path:
        path = f"library/{path}"
    _check_path(text, path)
    return registry, path


@attrs.frozen
class Reference:
    """A parsed image reference: registry, repository, and a tag and/or a digest.

    Build one with `parse`; the constructor does not normalise.

    Attributes:
        registry: ``docker.io``, ``ghcr.io``, ``localhost:5000``, ``[::1]:5000``…
        repository: The path inside the registry, e.g. ``library/alpine``.
        tag: The tag, if any.
        digest: The digest, if any; it wins over the tag for pulling.
    """

    registry: str
    repository: str
    tag: str | None = None
    digest: Digest | None = None

    @classmethod
    def parse(cls, text: str, *, default_tag: str | None = _DEFAULT_TAG) -> Reference:
        """Parse and normalise an image reference.

        ``default_tag`` is the tag of a reference that names neither tag nor digest; pass
        None to learn that none was given (``tag`` and ``digest`` both None).
        A ``docker://`` prefix (skopeo's transport name) is accepted and dropped.

        Raises:
            InvalidReference: If ``text`` does not follow the grammar; the message says why.
        """
        if not text or text != text.strip():
            raise _fail(text, "empty or surrounded by whitespace" if text else "empty")
        text = text.removeprefix(_DOCKER_TRANSPORT)
        rest, at, digest_text = text.partition("@")
        digest = None
        if at:
            try:
                digest = Digest.parse(digest_text)
            except InvalidDigest as exc:
                raise _fail(text, exc.message) from None
        tag = None
        slash = rest.rfind("/")
        colon = rest.rfind(":")
        if colon > slash:
            rest, tag = rest[:colon], rest[colon + 1 :]
            _check_tag(text, tag)
        if not rest:
            raise _fail(text, "repository name is empty")
        first, sep, remainder = rest.partition("/")
        if sep and (
            first == "localhost"
            or "." in first
            or ":" in first
            or first != first.lower()
            or first.startswith("[")
        ):
            registry, path = first, remainder
        else:
            if _IMAGE_ID.fullmatch(rest):
                raise _fail(text, "a 64-character hex string is an image ID, not a repository name")
            registry, path = DOCKER_HUB, rest
        registry, path = _normalise(text, registry, path)
        if tag is None and digest is None:
            tag = default_tag
        return cls(registry, path, tag, digest)

    @property
    def api_host(self) -> str:
        """The host serving the registry API (``registry-1.docker.io`` for Docker Hub)."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def name(self) -> str:
        """``registry/repository``, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def identifier(self) -> str:
        """What to put in ``/v2/<repo>/manifests/<identifier>``: the digest, else the tag."""
        if self.digest is not None:
            return str(self.digest)
        return self.tag or _DEFAULT_TAG

    @property
    def familiar(self) -> str:
        """The short form docker prints: ``alpine:3.19``, ``user/app:1``, ``ghcr.io/o/x:1``."""
        name = self.name
        if self.registry == DOCKER_HUB:
            name = self.repository
            rest = name.removeprefix("library/")
            if rest != name and "/" not in rest:
                name = rest
        return name + self._suffix()

    @property
    def is_loopback(self) -> bool:
        """Whether the registry is on this machine (localhost, 127.0.0.0/8, ::1)."""
        return is_loopback_host(self.registry)

    def with_tag(self, tag: str) -> Reference:
        """The same repository, by ``tag`` (any digest is dropped).

        Raises:
            InvalidReference: If ``tag`` is not a valid tag.
        """
        _check_tag(f"{self.name}:{tag}", tag)
        return attrs.evolve(self, tag=tag, digest=None)

    def with_digest(self, digest: Digest | str) -> Reference:
        """The same repository, by ``digest``; the tag is kept as a label.

        Raises:
            InvalidReference: If ``digest`` is a string that is not a valid digest.
        """
        if isinstance(digest, str):
            try:
                digest = Digest.parse(digest)
            except InvalidDigest as exc:
                raise _fail(f"{self.name}@{digest}", exc.message) from None
        return attrs.evolve(self, digest=digest)

    def with_repository(self, repository: str) -> Reference:
        """The same registry, tag and digest, in another repository (Hub defaulting applies).

        Raises:
            InvalidReference: If ``repository`` is not a valid repository path.
        """
        _, path = _normalise(f"{self.registry}/{repository}", self.registry, repository)
        return attrs.evolve(self, repository=path)

    def scope(self, actions: str | Iterable[str] = "pull") -> str:
        """The token scope for this repository, e.g. ``repository:library/alpine:pull,push``."""
        joined = actions if isinstance(actions, str) else ",".join(actions)
        return f"repository:{self.repository}:{joined}"

    def _suffix(self) -> str:
        tag = f":{self.tag}" if self.tag is not None else ""
        digest = f"@{self.digest}" if self.digest is not None else ""
        return tag + digest

    def __str__(self) -> str:
        return self.name + self._suffix()


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (optionally with ``:port``, IPv6 optionally bracketed) is loopback.

    True for ``localhost``, ``*.localhost``, ``127.0.0.0/8`` and ``::1``.
    """
    host = host.strip().lower()
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    host = host.rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback
