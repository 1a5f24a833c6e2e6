"""The registry clients, the blob engine and the manifest ledger one session shares: what every
operation takes.

A [ClientPool][] builds one [RegistryClient][imgmirror.transport.client.RegistryClient] per
(registry, credentials, side) with the right connection options and closes them all at the
end, so the ``/v2/`` ping, the challenge and the token cache are shared by every request to one
registry, across calls. When an operation gives no explicit credential, the pool asks its
keychain (by default: ``authfile``, then docker's and podman's standard files and credential
helpers), once per registry. [imgmirror.Session][imgmirror.Session] adds the operations on top of
it.
"""

from __future__ import annotations

import copy as _copy
import threading
from collections.abc import Iterable
from os import PathLike
from types import TracebackType
from typing import Self

import attrs

from imgmirror.auth.credentials import Credential
from imgmirror.auth.keychain import DefaultKeychain, Keychain
from imgmirror.registry.blobs import BlobEngine
from imgmirror.registry.manifests import ManifestLedger
from imgmirror.transport.client import RegistryClient
from imgmirror.transport.limiter import LimiterStats, RegistryLimiter
from imgmirror.transport.options import ClientOptions, Paths, connection_options

__all__ = ["DEFAULT_JOBS", "ClientPool"]

#: Transfers at once by default: enough to hide 20-100 ms round trips.
DEFAULT_JOBS = 8


class ClientPool:
    """Registry clients keyed by (registry, credentials, side), the blob engine and the ledger.

    May be used from several threads at once.

    Args:
        options: connection settings for every client.
        authfile: credentials file consulted first when an operation gives no explicit
            credential (docker config.json, podman auth.json, .dockercfg or a pull Secret).
        keychain: where credentials come from when none are explicit. Default:
            [DefaultKeychain][imgmirror.auth.keychain.DefaultKeychain] (``authfile``, then the
            standard files). A custom keychain is asked after ``authfile`` (if given),
            instead of the standard files.
        jobs: blob transfers at once across everything done through this pool; also each
            call's default ``jobs``.
        timeout: seconds a request may wait for a reply or stall (``options.timeout``
            otherwise); each call may give its own.
        ca_file: a PEM bundle trusted for every registry, on top of the system store (the
            CLI's ``--ca-file``).
        certs_dirs: ``certs.d`` directories searched per host before docker's and podman's
            (``--certs-dir``).
        insecure_registries: hosts reached over plain HTTP or unverified HTTPS
            (``--insecure-registry``).
    """

    def __init__(
        self,
        options: ClientOptions | None = None,
        *,
        authfile: str | PathLike[str] | None = None,
        keychain: Keychain | None = None,
        jobs: int = DEFAULT_JOBS,
        timeout: float | None = None,
        ca_file: str | PathLike[str] | None = None,
        certs_dirs: Paths | None = None,
        insecure_registries: Iterable[str] | None = None,
    ) -> None:
        self.options = connection_options(
            options,
            timeout=timeout,
            ca_file=ca_file,
            certs_dirs=certs_dirs,
            insecure_registries=insecure_registries,
        )
        self.authfile = authfile
        self._keychains: list[Keychain] = []
        if keychain is None:
            self._keychains.append(DefaultKeychain(authfile))
        else:
            if authfile is not None:
                self._keychains.append(DefaultKeychain(authfile, defaults=False))
            self._keychains.append(keychain)
        self._clients: dict[
            tuple[str, Credential | None, str | None, ClientOptions], RegistryClient
        ] = {}
        self._resolved: dict[str, Credential | None] = {}
        self._limiters: dict[str, RegistryLimiter] = {}
        self._lock = threading.Lock()
        self.blobs = BlobEngine(jobs, self.options.retry)
        #: The manifests stored through this pool: the one manifest PUT path (see its module).
        self.manifests = ManifestLedger()
        #: Transfers at once for one call (the engine's budget, or what the call asked).
        self.jobs = jobs

    def credential_for(self, registry: str) -> Credential | None:
        """What the keychain(s) hold for ``registry``; asked once per pool."""
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
        key = (registry, credential, role, self.options)  # one per side: errors name the side
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = RegistryClient(
                    registry, credential=credential, options=self.options, role=role,
                    limiter=self._limiter(registry),
                )  # fmt: skip
                self._clients[key] = client
        return client

    def _limiter(self, registry: str) -> RegistryLimiter:
        """The limits of ``registry``, one for every client of it (both sides, every
        credential); called locked."""
        limiter = self._limiters.get(registry)
        if limiter is None:
            limiter = RegistryLimiter(registry, self.options.rate_limit)
            self._limiters[registry] = limiter
        return limiter

    def limiter_stats(self) -> dict[str, LimiterStats]:
        """What each registry reached through this pool was sent so far (requests, rate
        limits, pauses, its quota)."""
        with self._lock:
            limiters = list(self._limiters.values())
        return {limiter.registry: limiter.stats() for limiter in limiters}

    def scoped(
        self,
        jobs: int | None = None,
        timeout: float | None = None,
        authfile: str | PathLike[str] | None = None,
    ) -> Self:
        """This pool for one call: the same clients, tokens and blob engine, with the call's
        ``jobs`` (at most the engine's) and ``timeout`` (clients of their own), and
        ``authfile`` asked first when the pool was given none (a sync file's)."""
        if jobs is None and timeout is None and (authfile is None or self.authfile is not None):
            return self
        view = _copy.copy(self)  # shares the client cache, the lock and the engine
        if jobs is not None:
            view.jobs = min(jobs, self.blobs.jobs)
        if timeout is not None:
            view.options = attrs.evolve(self.options, timeout=timeout)
        if authfile is not None and self.authfile is None:
            view.authfile = authfile
            view._keychains = [DefaultKeychain(authfile, defaults=False), *self._keychains]
            view._resolved = {}
        return view

    def close(self) -> None:
        """Close every client."""
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
        self.blobs.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
