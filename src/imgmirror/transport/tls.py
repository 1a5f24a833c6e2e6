"""TLS settings per registry host: trusted CAs, client certificates and insecure hosts.

Follows docker's layout for ``certs.d`` directories: ``DIR/<host[:port]>/*.crt`` are extra CAs
trusted for that host only, ``client.cert`` with ``client.key`` (or any ``X.cert``/``X.key``
pair) is the client certificate for mutual TLS. ``/etc/docker/certs.d`` and
``/etc/containers/certs.d`` are read by default, as docker and podman do. TLS failures become
errors naming the fix for that host (:func:`tls_error`).
"""

from __future__ import annotations

import ssl
import threading
from pathlib import Path

import attrs

from ..errors import TLSVerificationError
from ..reference import is_loopback_host
from .retry import RetryPolicy

__all__ = [
    "DEFAULT_CERTS_DIRS",
    "ClientOptions",
    "DeferredTrust",
    "certs_dir_for",
    "client_cert_for",
    "ssl_context",
    "tls_error",
]

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


def client_cert_for(directory: Path) -> tuple[Path, Path] | None:
    """The first ``X.cert`` with a matching ``X.key`` in a ``certs.d/<host>`` directory."""
    for cert in sorted(directory.glob("*.cert")):
        key = cert.with_suffix(".key")
        if key.exists():
            return cert, key
    return None


#: OpenSSL alert reasons meaning the server refused our (missing or unknown) client certificate.
_CLIENT_CERT_REFUSED = frozenset(
    {
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "TLSV13_ALERT_CERTIFICATE_REQUIRED",
        "TLSV1_ALERT_UNKNOWN_CA",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        "TLSV1_ALERT_ACCESS_DENIED",
    }
)


def _ssl_cause(exc: BaseException) -> ssl.SSLError | None:
    cause: BaseException | None = exc
    seen = 0
    while cause is not None and seen < 10:
        if isinstance(cause, ssl.SSLError):
            return cause
        cause = cause.__cause__ or cause.__context__
        seen += 1
    return None


def tls_error(exc: BaseException, host: str, options: ClientOptions) -> TLSVerificationError | None:
    """A :class:`TLSVerificationError` naming the fix, if ``exc`` is a TLS trust failure.

    Covers an untrusted server certificate (put ``ca.crt`` in certs.d, ``--ca-file`` or
    ``--insecure-registry``) and a server refusing our client certificate (put
    ``client.cert``/``client.key`` in certs.d). Other errors give None.
    """
    cause = _ssl_cause(exc)
    certs_base = options.certs_dirs[0] if options.certs_dirs else DEFAULT_CERTS_DIRS[0]
    host_dir = Path(certs_base) / host
    if isinstance(cause, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
        reason = getattr(cause, "verify_message", None) or "certificate verify failed"
        return TLSVerificationError(
            f"TLS certificate of {host} could not be verified ({reason})",
            host=host,
            hint=(
                f"put the registry's CA certificate in {host_dir}/ca.crt, "
                f"pass --ca-file FILE, or pass --insecure-registry {host}"
            ),
        )
    if cause is not None and getattr(cause, "reason", None) in _CLIENT_CERT_REFUSED:
        existing = certs_dir_for(host, options.certs_dirs)
        pair = client_cert_for(existing) if existing is not None else None
        if pair is None:
            return TLSVerificationError(
                f"registry {host} refused the TLS handshake: it requires a client certificate "
                f"and none was presented ({cause.reason})",
                host=host,
                hint=(
                    f"put the client certificate and key in {host_dir}/client.cert and "
                    f"{host_dir}/client.key (or in DIR/{host}/ with --certs-dir DIR)"
                ),
            )
        return TLSVerificationError(
            f"registry {host} did not accept the client certificate {pair[0]} ({cause.reason})",
            host=host,
            hint="use a client certificate signed by a CA the registry trusts",
        )
    return None


_system_lock = threading.Lock()
_system_context: list[ssl.SSLContext] = []


def _system_store_context() -> ssl.SSLContext:
    """One verifying context over the system CA store, shared by every client.

    Loading the store takes about 20 ms per context, paid at every start of the command;
    like Go's crypto/x509, the store is read once per process.
    """
    with _system_lock:
        if not _system_context:
            _system_context.append(ssl.create_default_context())
        return _system_context[0]


def ssl_context(host: str, options: ClientOptions) -> ssl.SSLContext:
    """Build the TLS context for one registry host.

    Insecure hosts get a context that does not verify. Otherwise the system store is trusted,
    plus ``--ca-file`` and the host's ``certs.d`` CAs; a client certificate found there is
    presented.
    """
    if options.is_insecure(host):
        return _unverified_context()
    directory = certs_dir_for(host, options.certs_dirs)
    if not options.ca_file and directory is None:
        return _system_store_context()
    context = ssl.create_default_context()
    _load_host_trust(context, host, options)
    return context


class DeferredTrust:
    """A verifying context whose trust store is loaded only before the first TLS connection.

    For loopback registries, which are usually plain HTTP: reading the system CA store costs
    about 20 ms at every start of the command, for a context most runs never use. The context
    given to httpx is complete (verification on, hostname checked) but trusts nothing until
    :meth:`load` has run, so an early TLS connection fails closed rather than open.
    """

    def __init__(self, host: str, options: ClientOptions) -> None:
        self.host = host
        self.options = options
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self._loaded = False
        self._lock = threading.Lock()

    def load(self) -> None:
        """Load the system store, ``--ca-file``, certs.d CAs and client certificate, once."""
        if self._loaded:
            return
        with self._lock:
            if not self._loaded:
                self.context.load_default_certs(ssl.Purpose.SERVER_AUTH)
                _load_host_trust(self.context, self.host, self.options)
                self._loaded = True


def _unverified_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _load_host_trust(context: ssl.SSLContext, host: str, options: ClientOptions) -> None:
    """Add ``--ca-file``, the host's certs.d CAs and its client certificate to ``context``."""
    if options.ca_file:
        context.load_verify_locations(cafile=options.ca_file)
    directory = certs_dir_for(host, options.certs_dirs)
    if directory is not None:
        for ca in sorted(directory.glob("*.crt")):
            context.load_verify_locations(cafile=str(ca))
        pair = client_cert_for(directory)
        if pair is not None:
            context.load_cert_chain(certfile=str(pair[0]), keyfile=str(pair[1]))
