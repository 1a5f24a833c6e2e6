"""Docker credential files as values: ``config.json``/``auth.json`` and legacy ``.dockercfg``.

[parse_docker_config][] turns the text of a docker ``config.json``, a podman ``auth.json``
or a legacy ``.dockercfg`` (the bare map without ``auths``) into a [DockerConfig][];
[DockerConfig.lookup][] answers, for one registry, which inline credential or which
credential helper applies, with docker's key rules: Docker Hub is keyed
``https://index.docker.io/v1/`` (``docker.io``, ``index.docker.io`` and
``registry-1.docker.io`` are accepted too), other keys may carry a scheme and a path and match
by host name. An ``auth`` value wins over ``username``/``password``, as the kubelet does.

This module does no I/O; errors name the file and the registry key, never a secret.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from imgmirror.auth.credentials import Credential
from imgmirror.errors import CredentialsError
from imgmirror.model.documents import load_json

__all__ = [
    "DOCKER_HUB_KEY",
    "DockerConfig",
    "Lookup",
    "decode_auth",
    "encode_auth",
    "entry_credential",
    "find_key",
    "key_host",
    "parse_docker_config",
    "registry_key",
]

#: How Docker Hub is keyed in ``auths`` and asked of credential helpers.
DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
#: Top-level keys that mark a ``config.json`` (as opposed to a legacy ``.dockercfg`` map).
_CONFIG_KEYS = frozenset(
    {"auths", "credsStore", "credHelpers", "HttpHeaders", "psFormat", "imagesFormat",
     "detachKeys", "currentContext", "experimental", "plugins", "proxies", "aliases",
     "features", "stackOrchestrator", "kubernetes", "cliPluginsExtraDirs"}
)  # fmt: skip


def _freeze(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


def key_host(key: str) -> str:
    """The host part of an ``auths`` key (docker ``ConvertToHostname``), Hub folded.

    ``https://reg.example.com/v1/`` → ``reg.example.com``; any Docker Hub spelling →
    ``docker.io``. Lower-cased.
    """
    host = key.strip()
    for prefix in ("http://", "https://"):
        if host.lower().startswith(prefix):
            host = host[len(prefix) :]
            break
    host = host.split("/", 1)[0].lower()
    return "docker.io" if host in _HUB_HOSTS else host


def registry_key(registry: str) -> str:
    """The key docker uses for ``registry``: ``https://index.docker.io/v1/`` for Hub."""
    return DOCKER_HUB_KEY if key_host(registry) == "docker.io" else registry


def find_key(keys: Mapping[str, Any], registry: str) -> str | None:
    """The key of ``keys`` that applies to ``registry``: exact first, then by host name."""
    for exact in (registry_key(registry), registry):
        if exact in keys:
            return exact
    wanted = key_host(registry)
    for key in keys:
        if key_host(key) == wanted:
            return key
    return None


def encode_auth(username: str, password: str) -> str:
    """``base64(username:password)``, the ``auth`` field of a config entry."""
    return base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def decode_auth(value: str, where: str) -> tuple[str, str]:
    """Split an ``auth`` field into (username, password), as docker ``decodeAuth`` does.

    Raises:
        CredentialsError: If it is not base64 of ``USER:PASSWORD``; the message names
            ``where`` and never the value.
    """
    text = value.strip()
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        decoded = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        raise CredentialsError(
            f"{where}: 'auth' is not base64-encoded text",
            hint="it must be base64 of USER:PASSWORD (echo -n USER:PASSWORD | base64 -w0)",
        ) from None
    username, sep, password = decoded.partition(":")
    if not sep or not username:
        raise CredentialsError(
            f"{where}: 'auth' does not decode to USER:PASSWORD",
            hint="it must be base64 of USER:PASSWORD (echo -n USER:PASSWORD | base64 -w0)",
        )
    return username, password.rstrip("\x00")


def _text(entry: Mapping[str, Any], name: str, where: str) -> str:
    value = entry.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise CredentialsError(f"{where}: {name!r} is not a string")
    return value


def entry_credential(entry: object, where: str) -> Credential | None:
    """The credential in one ``auths`` entry, or None for an empty entry (``{}``).

    ``auth`` wins over ``username``/``password``; ``identitytoken`` and ``registrytoken``
    are kept alongside.

    Raises:
        CredentialsError: If the entry is not an object or ``auth`` is malformed.
    """
    if not isinstance(entry, Mapping):
        raise CredentialsError(f"{where}: the entry is not a JSON object")
    auth = _text(entry, "auth", where)
    if auth.strip():
        username, password = decode_auth(auth, where)
    else:
        username = _text(entry, "username", where)
        password = _text(entry, "password", where)
    identity = _text(entry, "identitytoken", where) or None
    registry_token = _text(entry, "registrytoken", where) or None
    if not (username or password or identity or registry_token):
        return None
    return Credential(username, password, identity_token=identity, registry_token=registry_token)


@attrs.frozen
class Lookup:
    """What applies to one registry: an inline credential, or a helper to ask.

    Attributes:
        credential: the inline credential (None when absent or when a helper applies).
        helper: the credential helper's name (``docker-credential-<helper>``), if one applies.
        server_url: what to send the helper on stdin.
    """

    credential: Credential | None = None
    helper: str | None = None
    server_url: str | None = None


@attrs.frozen
class DockerConfig:
    """The credential part of a docker ``config.json`` (or a legacy ``.dockercfg``).

    Attributes:
        auths: key → credential (None for an entry that only lists the registry).
        cred_helpers: key → helper name.
        creds_store: the helper used for every registry without a ``credHelpers`` entry.
        source: where it came from (a path), for messages.
    """

    auths: Mapping[str, Credential | None] = attrs.field(factory=dict, converter=_freeze)
    cred_helpers: Mapping[str, str] = attrs.field(factory=dict, converter=_freeze)
    creds_store: str | None = None
    source: str = "config.json"

    def lookup(self, registry: str) -> Lookup:
        """Docker's exclusive choice for ``registry`` (CLI ``GetCredentialsStore``).

        A ``credHelpers`` entry wins, then ``credsStore``, then the inline ``auths`` entry;
        once a helper is chosen, inline secrets are not used as a fallback.
        """
        helper_key = find_key(self.cred_helpers, registry)
        if helper_key is not None:
            helper = self.cred_helpers[helper_key]
            return Lookup(helper=helper, server_url=registry_key(registry))
        if self.creds_store:
            return Lookup(helper=self.creds_store, server_url=registry_key(registry))
        key = find_key(self.auths, registry)
        return Lookup(credential=None if key is None else self.auths[key])

    def merged(self, other: DockerConfig) -> DockerConfig:
        """This config with ``other``'s entries added where this one has none."""
        return DockerConfig(
            auths={**other.auths, **self.auths},
            cred_helpers={**other.cred_helpers, **self.cred_helpers},
            creds_store=self.creds_store or other.creds_store,
            source=self.source,
        )


def is_config_json(doc: Mapping[str, Any]) -> bool:
    """Whether a decoded document is ``config.json``-shaped (rather than a legacy map)."""
    return any(key in _CONFIG_KEYS for key in doc)


def _auths(doc: Mapping[str, Any], source: str) -> dict[str, Credential | None]:
    return {
        str(key): entry_credential(entry, f"{source}: entry {key!r}") for key, entry in doc.items()
    }


def config_from_json(doc: object, source: str) -> DockerConfig:
    """Build a [DockerConfig][] from a decoded ``config.json`` or ``.dockercfg``.

    Raises:
        CredentialsError: If the shape is wrong or an entry is malformed.
    """
    if not isinstance(doc, Mapping):
        raise CredentialsError(f"{source}: expected a JSON object at the top level")
    if not is_config_json(doc):
        return DockerConfig(auths=_auths(doc, source), source=source)
    auths = doc.get("auths")
    auths = {} if auths is None else auths
    helpers = doc.get("credHelpers")
    helpers = {} if helpers is None else helpers
    store = doc.get("credsStore") or None
    if not isinstance(auths, Mapping):
        raise CredentialsError(f"{source}: 'auths' is not an object")
    if not isinstance(helpers, Mapping) or not all(isinstance(v, str) for v in helpers.values()):
        raise CredentialsError(f"{source}: 'credHelpers' is not an object of helper names")
    if store is not None and not isinstance(store, str):
        raise CredentialsError(f"{source}: 'credsStore' is not a helper name")
    return DockerConfig(
        auths=_auths(auths, source),
        cred_helpers={str(k): v for k, v in helpers.items() if v},
        creds_store=store,
        source=source,
    )


def parse_docker_config(text: str | bytes, source: str) -> DockerConfig:
    """Parse a ``config.json``, ``auth.json`` or legacy ``.dockercfg``.

    Raises:
        CredentialsError: If it is not JSON or not shaped like one of those.
    """
    try:
        doc = load_json(text) if text.strip() else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise CredentialsError(
            f"{source} is not valid JSON (line {getattr(exc, 'lineno', '?')})",
            hint="fix the file, or point authfile at a docker config.json",
            setting="authfile",
        ) from None
    return config_from_json(doc, source)
