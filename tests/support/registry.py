"""Run the real distribution registry (``docker-registry serve config.yml``) on loopback.

A :class:`RegistryFactory` starts registries in flavours (anonymous, htpasswd, token auth; plain
HTTP or TLS, optionally mutual TLS; absolute or relative ``Location`` URLs) and stops all of
them in :meth:`RegistryFactory.stop_all`. Each registry gets its own directory with
``config.yml``, ``registry.log`` (stdout+stderr), ``htpasswd`` and ``storage/``.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import socket
import ssl
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import httpx
import yaml

from .certs import TestPKI
from .tokenserver import DEFAULT_ISSUER, DEFAULT_SERVICE, TokenServer
from .tools import require_tool, stop_process

__all__ = ["AuthKind", "Registry", "RegistryFactory", "RegistryStartError", "free_port"]

AuthKind = Literal["htpasswd", "token"] | None

START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0

DEFAULT_HTPASSWD_USERS = {"alice": "secret"}
DEFAULT_TOKEN_USERS = {"pusher": "pushpass"}


class RegistryStartError(RuntimeError):
    pass


_ACCESS_LINE = re.compile(r'"([A-Z]+) (\S+) HTTP/[0-9.]+" ([0-9]{3}) ')


def free_port(host: str = "127.0.0.1") -> int:
    """A currently free TCP port on ``host`` (bind to port 0, read it back, close)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = value
    return base


def tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Registry:
    """A running (or stopped) registry process."""

    name: str
    bind: str
    port: int
    tls: bool
    auth: AuthKind
    relativeurls: bool
    directory: Path
    config_path: Path
    log_path: Path
    storage_dir: Path
    users: dict[str, str]
    ca_file: Path | None
    """CA certificate to trust (TLS registries only)."""
    cert_dir: Path | None
    """containers-style ``--cert-dir`` for skopeo (CA, plus client pair if mTLS)."""
    client_cert: Path | None
    """Client certificate/key the registry requires (mutual TLS only)."""
    client_key: Path | None
    token_server: TokenServer | None
    anonymous_pull: bool
    netns: str | None = None
    """The network namespace it runs in (``ip netns exec``), or None for this one."""
    process: subprocess.Popen[bytes] | None = None
    started_in: float = 0.0
    _log_file: IO[bytes] | None = field(default=None, repr=False)
    _owns_token_server: bool = field(default=False, repr=False)
    _config: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT`` (or ``[::1]:PORT``): the registry part of image references."""
        h = f"[{self.bind}]" if ":" in self.bind else self.bind
        return f"{h}:{self.port}"

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def default_creds(self) -> tuple[str, str] | None:
        """The first configured user (``alice:secret`` / ``pusher:pushpass`` by default)."""
        if not self.users:
            return None
        user = next(iter(self.users))
        return user, self.users[user]

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ref(self, repo: str, tag_or_digest: str = "latest") -> str:
        """``host:port/repo:tag`` or ``host:port/repo@sha256:...``."""
        sep = "@" if ":" in tag_or_digest else ":"
        return f"{self.host}/{repo}{sep}{tag_or_digest}"

    def ssl_context(self, *, client_cert: bool = True) -> ssl.SSLContext:
        """SSL context trusting the test CA (and presenting the client cert for mTLS)."""
        ctx = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        if client_cert and self.client_cert and self.client_key:
            ctx.load_cert_chain(str(self.client_cert), str(self.client_key))
        return ctx

    def verify(self) -> ssl.SSLContext | bool:
        """Value for ``httpx.Client(verify=...)``."""
        return self.ssl_context() if self.tls else True

    def log_tail(self, lines: int = 60) -> str:
        return tail(self.log_path, lines)

    def requests(self) -> list[tuple[str, str, int]]:
        """Every request the registry served so far, as (method, path, status), from its
        access log (query strings kept). Take ``len()`` before an action to count its own."""
        text = self.log_path.read_text(errors="replace")
        return [(m[1], m[2], int(m[3])) for m in _ACCESS_LINE.finditer(text)]

    def describe(self) -> str:
        flavour = [self.auth or "anonymous", "tls" if self.tls else "http"]
        if self.client_cert:
            flavour.append("mtls")
        if self.relativeurls:
            flavour.append("relativeurls")
        return f"registry {self.name} at {self.url} ({', '.join(flavour)})"

    # -- lifecycle ---------------------------------------------------------------------------

    def _spawn(self, exe: str) -> None:
        self._log_file = self.log_path.open("ab")
        argv = [exe, "serve", str(self.config_path)]
        if self.netns is not None:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            cwd=self.directory,
            start_new_session=True,
        )

    def _wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        last_error = "no attempt"
        with httpx.Client(verify=self.verify(), timeout=2.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                if self.process is None or self.process.poll() is not None:
                    code = None if self.process is None else self.process.returncode
                    raise RegistryStartError(
                        f"{self.describe()} exited with {code} during start-up; log tail:\n"
                        + self.log_tail()
                    )
                try:
                    response = client.get(f"{self.url}/v2/")
                except httpx.HTTPError as exc:
                    last_error = repr(exc)
                else:
                    if response.status_code in (200, 401):
                        return
                    last_error = f"GET /v2/ -> {response.status_code}"
                time.sleep(0.02)
        raise RegistryStartError(
            f"{self.describe()} did not answer /v2/ within {timeout}s ({last_error}); log tail:\n"
            + self.log_tail()
        )

    def stop(self) -> None:
        """Stop the registry (and its token server if the factory created it). Idempotent."""
        proc, self.process = self.process, None
        stop_process(proc, STOP_TIMEOUT)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._owns_token_server and self.token_server is not None:
            self.token_server.stop()

    def restart(self) -> None:
        """Stop and start again on the same port with the same storage."""
        self.stop()
        if self._owns_token_server and self.token_server is not None:
            self.token_server.start()
            # the realm in config.yml would be stale if the token server moved ports
            _write_config(self, self._config)
        self._spawn(require_tool("docker-registry"))
        self._wait_ready()


def _write_config(registry: Registry, config: dict[str, Any]) -> None:
    if registry.token_server is not None:
        config["auth"]["token"]["realm"] = registry.token_server.realm
    registry.config_path.write_text(yaml.safe_dump(config, sort_keys=False))


# bcrypt hashes (cost 4) of the default passwords, so the default flavours work even where the
# bcrypt package is missing; other passwords are hashed with it on demand.
_KNOWN_HASHES = {
    ("alice", "secret"): "$2b$04$8MwFJBQPYuj2G9lvrBmtjOHjH9zjfr.kO8T0TJuLW2wxCW.XY3dLO",
    ("pusher", "pushpass"): "$2b$04$ePtlh.XAkmF1KNH1gINlXeoYuR7TOZMbWKlOjWWi7MvKzEpY9mAWO",
}


def _htpasswd_line(user: str, password: str) -> str:
    """``user:bcrypt-hash`` (distribution only accepts bcrypt entries)."""
    hashed = _KNOWN_HASHES.get((user, password))
    if hashed is None:
        import bcrypt  # only custom htpasswd users need it

        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    return f"{user}:{hashed}\n"


class RegistryFactory:
    """Starts registries under ``base_dir``; :meth:`stop_all` stops every one it started."""

    def __init__(self, base_dir: Path, pki: TestPKI) -> None:
        self.base_dir = base_dir
        self.pki = pki
        self.registries: list[Registry] = []
        self.token_servers: list[TokenServer] = []
        self._counter = 0

    def token_server(
        self,
        *,
        users: Mapping[str, str] | None = None,
        algorithm: Literal["RS256", "ES256"] = "RS256",
        **kwargs: Any,
    ) -> TokenServer:
        """Start a token server signing with the test PKI; stopped by :meth:`stop_all`."""
        ts = TokenServer(
            self.pki.signing_key(algorithm),
            users=DEFAULT_TOKEN_USERS if users is None else users,
            **kwargs,
        ).start()
        self.token_servers.append(ts)
        return ts

    def __call__(
        self,
        *,
        auth: AuthKind = None,
        tls: bool = False,
        tls_client_ca: bool = False,
        relativeurls: bool = False,
        users: Mapping[str, str] | None = None,
        anonymous_pull: bool = True,
        token_server: TokenServer | None = None,
        token_algorithm: Literal["RS256", "ES256"] = "RS256",  # noqa: S107 - not a secret
        token_expires_in: int = 300,
        service: str = DEFAULT_SERVICE,
        issuer: str = DEFAULT_ISSUER,
        bind: str = "127.0.0.1",
        log_level: str = "info",
        extra_config: Mapping[str, Any] | None = None,
        name: str | None = None,
        port: int | None = None,
        netns: str | None = None,
    ) -> Registry:
        """Start a registry and wait until ``/v2/`` answers.

        ``auth``: ``None`` (anonymous, everything allowed), ``"htpasswd"`` (Basic auth for
        everything; default user ``alice:secret``) or ``"token"`` (Bearer; default user
        ``pusher:pushpass``, anonymous pull when ``anonymous_pull``). ``tls_client_ca`` implies
        ``tls`` and makes the registry require a client certificate signed by the test CA.
        Pass ``token_server`` to share one; otherwise one is started for this registry
        (``registry.token_server``) and stopped with it. ``port`` fixes the port (default: a
        free one); ``netns`` runs the registry inside that network namespace, where ``bind``
        must be one of its addresses.
        """
        if tls_client_ca:
            tls = True
        exe = require_tool("docker-registry")
        self._counter += 1
        label = name or f"r{self._counter}"
        directory = self.base_dir / f"registry-{label}"
        suffix = 1
        while directory.exists():
            suffix += 1
            directory = self.base_dir / f"registry-{label}-{suffix}"
        directory.mkdir(parents=True)
        storage = directory / "storage"
        storage.mkdir()

        if auth == "htpasswd":
            user_map = dict(DEFAULT_HTPASSWD_USERS if users is None else users)
        elif auth == "token":
            user_map = dict(DEFAULT_TOKEN_USERS if users is None else users)
        elif auth is None:
            user_map = dict(users or {})
        else:
            raise ValueError(f"unknown auth flavour {auth!r}")

        owns_ts = False
        if auth == "token" and token_server is None:
            token_server = TokenServer(
                self.pki.signing_key(token_algorithm),
                users=user_map,
                service=service,
                issuer=issuer,
                anonymous_pull=anonymous_pull,
                expires_in=token_expires_in,
                host=bind,
            ).start()
            owns_ts = True
        elif auth != "token":
            token_server = None

        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": log_level, "formatter": "text", "accesslog": {"disabled": False}},
            "storage": {
                "filesystem": {"rootdirectory": str(storage)},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {
                "addr": "",
                "secret": secrets.token_hex(16),
                "relativeurls": relativeurls,
                "headers": {"X-Content-Type-Options": ["nosniff"]},
            },
            "health": {"storagedriver": {"enabled": False}},
        }
        if tls:
            config["http"]["tls"] = {
                "certificate": str(self.pki.server_cert),
                "key": str(self.pki.server_key),
            }
            if tls_client_ca:
                config["http"]["tls"]["clientcas"] = [str(self.pki.ca_cert)]
        if auth == "htpasswd":
            htpasswd = directory / "htpasswd"
            htpasswd.write_text("".join(_htpasswd_line(u, p) for u, p in user_map.items()))
            config["auth"] = {"htpasswd": {"realm": "imgmirror-test", "path": str(htpasswd)}}
        elif auth == "token":
            assert token_server is not None
            config["auth"] = {
                "token": {
                    "realm": token_server.realm,
                    "service": token_server.service,
                    "issuer": token_server.issuer,
                    "rootcertbundle": str(self.pki.token_bundle),
                }
            }
        if extra_config:
            _deep_merge(config, extra_config)

        registry = Registry(
            name=label,
            bind=bind,
            port=0,
            tls=tls,
            auth=auth,
            relativeurls=relativeurls,
            directory=directory,
            config_path=directory / "config.yml",
            log_path=directory / "registry.log",
            storage_dir=storage,
            users=user_map,
            ca_file=self.pki.ca_cert if tls else None,
            cert_dir=(self.pki.client_cert_dir if tls_client_ca else self.pki.cert_dir)
            if tls
            else None,
            client_cert=self.pki.client_cert if tls_client_ca else None,
            client_key=self.pki.client_key if tls_client_ca else None,
            token_server=token_server,
            anonymous_pull=anonymous_pull,
            netns=netns,
            _owns_token_server=owns_ts,
        )
        self.registries.append(registry)

        # The port is chosen by binding :0 and released before the registry binds it, so
        # another process can win the race: retry with a fresh port if the bind fails.
        started = time.monotonic()
        for attempt in range(5):
            registry.port = port or free_port(bind)
            config["http"]["addr"] = f"{registry.host}"
            registry._config = config
            _write_config(registry, config)
            registry._spawn(exe)
            try:
                registry._wait_ready()
            except RegistryStartError:
                log = registry.log_tail()
                _stop_process_only(registry)
                if "address already in use" in log and attempt < 4 and port is None:
                    continue
                if owns_ts and token_server is not None:
                    token_server.stop()
                raise
            break
        registry.started_in = time.monotonic() - started
        return registry

    def stop_all(self) -> None:
        errors: list[BaseException] = []
        for registry in reversed(self.registries):
            try:
                registry.stop()
            except Exception as exc:  # keep stopping the others
                errors.append(exc)
        for ts in self.token_servers:
            with contextlib.suppress(Exception):
                ts.stop()
        self.registries.clear()
        self.token_servers.clear()
        if errors:
            raise errors[0]


def _stop_process_only(registry: Registry) -> None:
    owns, registry._owns_token_server = registry._owns_token_server, False
    try:
        registry.stop()
    finally:
        registry._owns_token_server = owns
