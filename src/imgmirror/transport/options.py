"""How registry clients connect: the one immutable settings value every client takes.

Pure values, no I/O: the command line's option parsing imports this without ``ssl`` or httpx.
"""

from __future__ import annotations

from collections.abc import Iterable
from os import PathLike

import attrs

from imgmirror._version import __version__
from imgmirror.transport.limiter import RateLimitPolicy
from imgmirror.transport.retry import RetryPolicy

__all__ = ["DEFAULT_CERTS_DIRS", "ClientOptions", "Paths", "connection_options"]

#: Directories (or files) given as strings or paths.
Paths = Iterable[str | PathLike[str]]

DEFAULT_CERTS_DIRS: tuple[str, ...] = ("/etc/docker/certs.d", "/etc/containers/certs.d")


@attrs.frozen
class ClientOptions:
    """How registry clients connect. Immutable; use `attrs.evolve` for variants.

    Attributes:
        retry: the one retry policy (transient statuses, backoff, attempts, deadline).
        rate_limit: how a registry's rate limits slow a run down (concurrency, pauses, its
            pull quota); see ``imgmirror.transport.limiter``.
        timeout: the stall timeout in seconds: a request or blob transfer fails
            ([TransferStalled][imgmirror.errors.TransferStalled], never retried) once this long of
            waiting on the registry, reply head included, retries and resumes included,
            moved under ``min_rate`` bytes per second (see
            ``imgmirror.transport.stall``).
        connect_timeout: seconds to wait for a TCP (and TLS) connection.
        min_rate: the floor rate in bytes per second below which a transfer counts as stalled.
            ``min_rate * timeout`` bytes is also what a resumed attempt must gain to count as
            progress (`progress_bytes`).
        max_reply_bytes: cap on small reply bodies (ping, upload replies, error bodies).
        max_manifest_bytes: cap on a manifest or a page of tags (containerd uses 4 MiB).
        monolithic_bytes: blobs up to this size are uploaded in one ``PUT``.
        replay_bytes: how much of an upload is kept to send again when it breaks off.
        ca_file: a PEM bundle trusted for every registry, on top of the system store.
        certs_dirs: docker-style ``certs.d`` directories, searched per host.
        insecure_registries: hosts (``host`` or ``host:port``) reached over plain HTTP or
            HTTPS without verification.
        user_agent: sent with every request.
        max_connections: connection pool size per registry.
    """

    retry: RetryPolicy = attrs.field(factory=RetryPolicy)
    rate_limit: RateLimitPolicy = attrs.field(factory=RateLimitPolicy)
    timeout: float = 30.0
    connect_timeout: float = 5.0
    min_rate: float = 1024.0
    max_reply_bytes: int = 256 * 1024
    max_manifest_bytes: int = 4 * 1024 * 1024
    monolithic_bytes: int = 1024 * 1024
    replay_bytes: int = 4 * 1024 * 1024
    ca_file: str | None = None
    certs_dirs: tuple[str, ...] = DEFAULT_CERTS_DIRS
    insecure_registries: frozenset[str] = frozenset()
    user_agent: str = "imgmirror"
    max_connections: int = 16

    @property
    def progress_bytes(self) -> int:
        """What an attempt must move to count as progress: a ``timeout`` at ``min_rate``
        (30 KiB by default). A resume that gained less is a failed attempt."""
        return max(1, int(self.min_rate * self.timeout))

    def is_insecure(self, host: str) -> bool:
        """Whether ``host`` was marked insecure, with or without its port."""
        bare = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return host in self.insecure_registries or bare in self.insecure_registries


def connection_options(
    options: ClientOptions | None = None,
    *,
    timeout: float | None = None,
    ca_file: str | PathLike[str] | None = None,
    certs_dirs: Paths | None = None,
    insecure_registries: Iterable[str] | None = None,
) -> ClientOptions:
    """``options`` (default: the library's) with the settings a call gave on top.

    The same settings as the CLI's ``--timeout``, ``--ca-file``, ``--certs-dir`` and
    ``--insecure-registry``: ``certs_dirs`` are searched before the directories already set
    (by default docker's and podman's), ``insecure_registries`` add to those already marked.
    """
    chosen = options or ClientOptions(user_agent=f"imgmirror/{__version__}")
    if timeout is None and ca_file is None and certs_dirs is None and insecure_registries is None:
        return chosen
    return attrs.evolve(
        chosen,
        timeout=chosen.timeout if timeout is None else timeout,
        ca_file=chosen.ca_file if ca_file is None else str(ca_file),
        certs_dirs=chosen.certs_dirs
        if certs_dirs is None
        else (*(str(d) for d in certs_dirs), *chosen.certs_dirs),
        insecure_registries=chosen.insecure_registries | frozenset(insecure_registries or ()),
    )
