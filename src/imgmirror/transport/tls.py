"""TLS settings per registry host: trusted CAs, client certificates and insecure hosts.

Follows docker's layout for ``certs.d`` directories: ``DIR/<host[:port]>/*.crt`` are extra CAs
trusted for that host only, ``client.cert`` with ``client.key`` (or any ``X.cert``/``X.key``
pair) is the client certificate for mutual TLS. ``/etc/docker/certs.d`` and
``/etc/containers/certs.d`` are read by default, as docker and podman do.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import attrs

from ..reference import is_loopback_host
from .retry import RetryPolicy

__all__ = ["DEFAULT_CERTS_DIRS", "ClientOptions", "certs_dir_for", "ssl_context"]

DEFAULT_CERTS_DIRS: tuple[str, ...] = ("/etc/docker/certs.d", "/etc/containers/certs.d")


@attrs.frozen
class ClientOptions:
    """How registry clients connect. Immutable; use :func:`attrs.evolve` for variants.

    Attributes:
        retry: backoff policy for transient failures.
        timeout: seconds to wait for a connection or for the next bytes of a response.
        ca_file: a PEM bundle trusted for every registry, on top of the system store.
        certs_dirs: docker-style ``certs.d`` directories, searched per host.
        insecure_registries: hosts (``host`` or ``host:port``) reached over plain HTTP or
            HTTPS without verification.
        user_agent: sent with every request.
        max_connections: connection pool size per registry.
    """

    retry: RetryPolicy = attrs.field(factory=RetryPolicy)
    timeout: float = 60.0
    ca_file: str | None = None
    certs_dirs: tuple[str, ...] = DEFAULT_CERTS_DIRS
    insecure_registries: frozenset[str] = frozenset()
    user_agent: str = "imgmirror"
    max_connections: int = 16

    def is_insecure(self, host: str) -> bool:
        """Whether ``host`` was marked insecure, with or without its port."""
        bare = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return host in self.insecure_registries or bare in self.insecure_registries

    def may_use_http(self, host: str) -> bool:
        """Plain HTTP is allowed for loopback registries (as docker does) and insecure ones."""
        return is_loopback_host(host) or self.is_insecure(host)


def certs_dir_for(host: str, certs_dirs: tuple[str, ...]) -> Path | None:
    """The first ``certs.d/<host>`` directory that exists, if any."""
    for base in certs_dirs:
        candidate = Path(base) / host
        if candidate.is_dir():
            return candidate
    return None


def ssl_context(host: str, options: ClientOptions) -> ssl.SSLContext:
    """Build the TLS context for one registry host.

    Insecure hosts get a context that does not verify. Otherwise the system store is trusted,
    plus ``--ca-file`` and the host's ``certs.d`` CAs; a client certificate found there is
    presented.
    """
    if options.is_insecure(host):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    context = ssl.create_default_context()
    if options.ca_file:
        context.load_verify_locations(cafile=options.ca_file)
    directory = certs_dir_for(host, options.certs_dirs)
    if directory is not None:
        for ca in sorted(directory.glob("*.crt")):
            context.load_verify_locations(cafile=str(ca))
        for cert in sorted(directory.glob("*.cert")):
            key = cert.with_suffix(".key")
            if key.exists():
                context.load_cert_chain(certfile=str(cert), keyfile=str(key))
                break
    return context
