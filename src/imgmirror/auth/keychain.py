"""Where credentials come from when none are given explicitly: files and credential helpers.

A [Keychain][] answers ``resolve(registry) -> Credential | None``; it is the pluggable
credential source (provisioning code can pass its own to ``copy``/``save``/``push``).
[DefaultKeychain][] reads what people already have, in docker's order: ``--authfile``,
then ``$REGISTRY_AUTH_FILE``, ``$XDG_RUNTIME_DIR/containers/auth.json`` (podman's
``/run/containers/<uid>/auth.json`` when ``XDG_RUNTIME_DIR`` is unset),
``$XDG_CONFIG_HOME/containers/auth.json`` (``~/.config``), ``$DOCKER_AUTH_CONFIG``,
``$DOCKER_CONFIG/config.json`` (or ``~/.docker/config.json``); the first source with
credentials for the registry wins.
``credHelpers``/``credsStore`` run ``docker-credential-<name> get``.

This is the I/O edge of credential handling; parsing lives in
[imgmirror.auth.dockerconfig][imgmirror.auth.dockerconfig]
and [imgmirror.auth.pullsecret][imgmirror.auth.pullsecret]. Errors name the file, helper and
registry, never a secret.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

from imgmirror.auth.credentials import Credential, CredentialInput
from imgmirror.auth.dockerconfig import DockerConfig
from imgmirror.auth.pullsecret import parse_authfile
from imgmirror.errors import CredentialsError
from imgmirror.model.documents import load_json, read_capped_text

__all__ = [
    "DOCKER_AUTH_CONFIG",
    "DefaultKeychain",
    "Keychain",
    "StaticKeychain",
    "default_authfiles",
    "load_authfile",
    "run_helper",
]

log = logging.getLogger("imgmirror")

_HELPER_TIMEOUT = 60.0
_NOT_FOUND = "credentials not found"
#: The ``Username`` a helper returns when ``Secret`` is an identity (refresh) token.
IDENTITY_TOKEN_USER = "<token>"  # noqa: S105 - a marker, not a secret

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


@runtime_checkable
class Keychain(Protocol):
    """A source of credentials, asked once per registry per operation."""

    def resolve(self, registry: str) -> Credential | None:
        """Credentials for ``registry`` (as written in references), or None for anonymous."""
        ...


class StaticKeychain:
    """A fixed map ``registry -> credentials`` (``"user:pass"``, a tuple or a Credential)."""

    def __init__(self, credentials: Mapping[str, CredentialInput]) -> None:
        self._credentials = {k: Credential.coerce(v) for k, v in credentials.items()}

    def resolve(self, registry: str) -> Credential | None:
        """The credential configured for ``registry``, if any."""
        return self._credentials.get(registry)

    def __repr__(self) -> str:
        return f"StaticKeychain(registries={sorted(self._credentials)!r})"


#: Stands in the list of credential files for the ``$DOCKER_AUTH_CONFIG`` variable.
DOCKER_AUTH_CONFIG = Path("$DOCKER_AUTH_CONFIG")


def default_authfiles(env: Mapping[str, str], home: Path, uid: int | None = None) -> list[Path]:
    """The standard credential sources, in the order they are consulted.

    podman's, in podman's order (``$REGISTRY_AUTH_FILE``, ``$XDG_RUNTIME_DIR/containers/auth.json``
    or, when ``XDG_RUNTIME_DIR`` is unset, ``/run/containers/<uid>/auth.json`` where a root
    ``podman login`` writes, then ``$XDG_CONFIG_HOME/containers/auth.json`` with
    ``XDG_CONFIG_HOME`` defaulting to ``~/.config``), then docker's: the
    ``$DOCKER_AUTH_CONFIG`` variable (as [DOCKER_AUTH_CONFIG][]), then
    ``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``. ``uid`` defaults to this
    process's.
    """
    files: list[Path] = []
    if env.get("REGISTRY_AUTH_FILE"):
        files.append(Path(env["REGISTRY_AUTH_FILE"]))
    if env.get("XDG_RUNTIME_DIR"):
        files.append(Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    else:
        files.append(Path(f"/run/containers/{os.getuid() if uid is None else uid}/auth.json"))
    config_home = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else home / ".config"
    files.append(config_home / "containers" / "auth.json")
    if env.get("DOCKER_AUTH_CONFIG"):
        files.append(DOCKER_AUTH_CONFIG)
    docker_config = env.get("DOCKER_CONFIG")
    files.append(
        Path(docker_config) / "config.json" if docker_config else home / ".docker" / "config.json"
    )
    return files


def load_authfile(path: Path) -> DockerConfig:
    """Read and parse a credentials file of any kind ``--authfile`` accepts.

    Raises:
        CredentialsError: If it cannot be read or parsed.
    """
    try:
        text = read_capped_text(path)
    except FileNotFoundError:
        raise CredentialsError(
            f"credentials file {path} does not exist",
            hint="check the authfile path (or $REGISTRY_AUTH_FILE)",
            setting="authfile",
        ) from None
    except (OSError, ValueError) as exc:  # a DocumentLimit or a UnicodeDecodeError
        raise CredentialsError(f"cannot read credentials file {path}: {exc}") from None
    return parse_authfile(text, str(path))


def _first_line(text: str, limit: int = 200) -> str:
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[:limit] + "…"


def run_helper(
    name: str,
    server_url: str,
    registry: str,
    *,
    source: str,
    env: Mapping[str, str],
    run: Runner = subprocess.run,
) -> Credential | None:
    """Ask ``docker-credential-<name> get`` for ``server_url``.

    "credentials not found" means anonymous (None). ``Username == "<token>"`` makes the
    secret an identity token.

    Raises:
        CredentialsError: The helper is missing, fails or answers garbage; the message names
            the helper, the registry and ``source`` (the file configuring it).
    """
    program = f"docker-credential-{name}"
    executable = shutil.which(program, path=env.get("PATH", os.defpath))
    if executable is None:
        raise CredentialsError(
            f"credential helper {program} (configured in {source} for {registry}) is not "
            "installed or not on PATH",
            hint=f"install {program}, or remove it from credHelpers/credsStore in {source}",
        )
    try:
        done = run(
            [executable, "get"],
            input=server_url,
            capture_output=True,
            text=True,
            timeout=_HELPER_TIMEOUT,
            env=dict(env),
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise CredentialsError(
            f"credential helper {program} could not run for {registry}: {type(exc).__name__}",
            hint=f"check that {executable} works: echo {server_url} | {program} get",
        ) from None
    if done.returncode != 0:
        said = _first_line(done.stdout) or _first_line(done.stderr)
        if _NOT_FOUND in said.lower():
            log.debug("%s has no credentials for %s", program, registry)
            return None
        raise CredentialsError(
            f"credential helper {program} failed for {registry} (exit {done.returncode}): "
            f"{said or 'no message'}",
            hint=f"run: echo {server_url} | {program} get; or log in again (docker login)",
        )
    try:
        reply = load_json(done.stdout)
        username, secret = reply.get("Username", ""), reply.get("Secret", "")
    except (ValueError, AttributeError):
        reply, username, secret = None, None, None
    if not isinstance(username, str) or not isinstance(secret, str):
        raise CredentialsError(
            f"credential helper {program} answered {registry} with something that is not "
            "a JSON {Username, Secret} object",
            hint=f"check the helper: echo {server_url} | {program} get",
        )
    if not secret:
        return None
    if username == IDENTITY_TOKEN_USER:
        return Credential(username, "", identity_token=secret)
    return Credential(username, secret)


class DefaultKeychain:
    """Credentials from files and credential helpers, in docker's order.

    Args:
        authfile: a file to consult first (any kind ``load_authfile`` reads).
        env: environment (``REGISTRY_AUTH_FILE``, ``XDG_RUNTIME_DIR``, ``DOCKER_CONFIG``,
            ``HOME``, ``PATH`` for helpers); defaults to ``os.environ``.
        defaults: whether to read the standard files after ``authfile``.
        run: runs credential helpers (injectable for tests).
    """

    def __init__(
        self,
        authfile: str | os.PathLike[str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        defaults: bool = True,
        run: Runner = subprocess.run,
    ) -> None:
        self.env: Mapping[str, str] = os.environ if env is None else env
        self.authfile = Path(authfile) if authfile is not None else None
        self.defaults = defaults
        self._run = run
        self._configs: dict[Path, DockerConfig | None] = {}
        self._lock = threading.Lock()

    def files(self) -> list[Path]:
        """The files consulted, in order (whether or not they exist)."""
        files = [self.authfile] if self.authfile is not None else []
        if self.defaults:
            home = Path(self.env.get("HOME") or Path.home())
            files.extend(p for p in default_authfiles(self.env, home) if p not in files)
        return files

    def _config(self, path: Path) -> DockerConfig | None:
        with self._lock:
            if path not in self._configs:
                if path == DOCKER_AUTH_CONFIG:
                    text = self.env.get("DOCKER_AUTH_CONFIG", "")
                    self._configs[path] = parse_authfile(text, "$DOCKER_AUTH_CONFIG")
                elif path != self.authfile and not path.is_file():
                    self._configs[path] = None
                else:
                    self._configs[path] = load_authfile(path)
            return self._configs[path]

    def resolve(self, registry: str) -> Credential | None:
        """The first credential any file (or its helper) has for ``registry``."""
        for path in self.files():
            config = self._config(path)
            if config is None:
                continue
            found = config.lookup(registry)
            credential = found.credential
            if found.helper is not None:
                credential = run_helper(
                    found.helper,
                    found.server_url or registry,
                    registry,
                    source=str(path),
                    env=self.env,
                    run=self._run,
                )
            if credential is not None:
                log.debug("credentials for %s from %s", registry, path)
                return credential
        return None

    def __repr__(self) -> str:
        return f"DefaultKeychain(authfile={self.authfile!s}, defaults={self.defaults})"
