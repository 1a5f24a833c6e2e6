"""One registry client per registry for the length of an operation.

Operations (copy, save, push) ask a :class:`Session` for the client of a registry; the session
builds it once with the right credentials and connection options and closes them all at the
end, so the ``/v2/`` ping, the challenge and the token cache are shared by every request to the
same registry.
"""

from __future__ import annotations

import threading
from types import TracebackType

from ._version import __version__
from .credentials import Credential
from .transport.client import RegistryClient
from .transport.tls import ClientOptions

__all__ = ["Session"]


class Session:
    """Registry clients keyed by (registry, credentials), closed together.

    Args:
        options: connection settings for every client.
        authfile: credentials file consulted when an operation gives no explicit credential.
    """

    def __init__(
        self, options: ClientOptions | None = None, *, authfile: str | None = None
    ) -> None:
        self.authfile = authfile
        self.options = options or ClientOptions(user_agent=f"imgmirror/{__version__}")
        self._clients: dict[tuple[str, Credential | None], RegistryClient] = {}
        self._lock = threading.Lock()

    def client(
        self, registry: str, credential: Credential | None, *, creds_hint: str
    ) -> RegistryClient:
        """The client for ``registry`` using ``credential``, created on first use."""
        key = (registry, credential)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = RegistryClient(
                    registry, credential=credential, options=self.options, creds_hint=creds_hint
                )
                self._clients[key] = client
        return client

    def close(self) -> None:
        """Close every client."""
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
