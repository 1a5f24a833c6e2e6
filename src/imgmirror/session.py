"""One registry client per registry for the length of an operation.

Operations (copy, save, push) ask a :class:`Session` for the client of a registry; the session
builds it once with the right credentials and connection options and closes them all at the
end, so the ``/v2/`` ping, the challenge and the token cache are shared by every request to the
same registry. When an operation gives no explicit credential, the session asks its keychain
(by default: ``authfile``, then docker's and podman's standard files and credential helpers),
once per registry.
"""

from __future__ import annotations

import threading
from types import TracebackType

from ._version import __version__
from .blobs import BlobEngine
from .credentials import Credential
from .keychain import DefaultKeychain, Keychain
from .transport.client import RegistryClient
from .transport.tls import ClientOptions

__all__ = ["DEFAULT_JOBS", "Session"]

#: Transfers at once by default: enough to hide 20-100 ms round trips.
DEFAULT_JOBS = 8


class Session:
    """Registry clients keyed by (registry, credentials), and the blob engine, closed together.

    Args:
        options: connection settings for every client.
        authfile: credentials file consulted first when an operation gives no explicit
            credential (docker config.json, podman auth.json, .dockercfg or a pull Secret).
        keychain: where credentials come from when none are explicit. Default:
            :class:`~imgmirror.keychain.DefaultKeychain` (``authfile``, then the standard
            files). A custom keychain is asked after ``authfile`` (if given), instead of the
            standard files.
        jobs: blob transfers at once across everything done through this session.
    """

    def __init__(
        self,
        options: ClientOptions | None = None,
        *,
        authfile: str | None = None,
        keychain: Keychain | None = None,
        jobs: int = DEFAULT_JOBS,
    ) -> None:
        self.options = options or ClientOptions(user_agent=f"imgmirror/{__version__}")
        self._keychains: list[Keychain] = []
        if keychain is None:
            self._keychains.append(DefaultKeychain(authfile))
        else:
            if authfile is not None:
                self._keychains.append(DefaultKeychain(authfile, defaults=False))
            self._keychains.append(keychain)
        self._clients: dict[tuple[str, Credential | None, str | None], RegistryClient] = {}
        self._resolved: dict[str, Credential | None] = {}
        self._lock = threading.Lock()
        self.blobs = BlobEngine(jobs, self.options.retry)

    def credential_for(self, registry: str) -> Credential | None:
        """What the keychain(s) hold for ``registry``; asked once per session."""
        with self._lock:
            if registry not in self._resolved:
                found: Credential | None = None
                for keychain in self._keychains:
                    found = keychain.resolve(registry)
                    if found is not None:
                        break
                self._resolved[registry] = found
            return self._resolved[registry]

    def client(
        self, registry: str, credential: Credential | None, *, role: str | None = None
    ) -> RegistryClient:
        """The client for ``registry``, created on first use.

        ``credential`` (explicit) wins; if None, the keychain is asked.
        """
        if credential is None:
            credential = self.credential_for(registry)
        key = (registry, credential, role)  # one per side: errors name the side that failed
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = RegistryClient(
                    registry, credential=credential, options=self.options, role=role
                )
                self._clients[key] = client
        return client

    def close(self) -> None:
        """Close every client."""
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
        self.blobs.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
