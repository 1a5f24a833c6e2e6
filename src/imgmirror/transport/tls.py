"""TLS settings per registry host: trusted CAs, client certificates and insecure hosts.

Follows docker's layout for ``certs.d`` directories: ``DIR/<host[:port]>/*.crt`` are extra CAs
trusted for that host only, ``client.cert`` with ``client.key`` (or any ``X.cert``/``X.key``
pair) is the client certificate for mutual TLS. ``/etc/docker/certs.d`` and
``/etc/containers/certs.d`` are read by default, as docker and podman do. TLS failures become
errors naming the fix for that host ([tls_error][]).
"""

from __future__ import annotations

import contextlib
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

from imgmirror.errors import TLSConfigError, TLSVerificationError
from imgmirror.transport.options import DEFAULT_CERTS_DIRS, ClientOptions

__all__ = [
    "DeferredTrust",
    "certs_dir_for",
    "client_cert_for",
    "ssl_context",
    "tls_error",
    "trust_for",
]


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
    """A [TLSVerificationError][] naming the fix, if ``exc`` is a TLS trust failure.

    Covers an untrusted server certificate (put ``ca.crt`` in certs.d, trust a CA file or mark
    the host insecure) and a server refusing our client certificate (put
    ``client.cert``/``client.key`` in certs.d). The error's ``kind`` and ``certs_dir`` let the
    CLI name its options. Other errors give None.
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
                f"put the registry's CA certificate in {host_dir}/ca.crt, trust a CA file "
                f"that signed it, or mark {host} insecure"
            ),
            certs_dir=str(host_dir),
            kind="untrusted",
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
                    f"{host_dir}/client.key (or in {host}/ of another certs.d directory)"
                ),
                certs_dir=str(host_dir),
                kind="client-certificate",
            )
        return TLSVerificationError(
            f"registry {host} did not accept the client certificate {pair[0]} ({cause.reason})",
            host=host,
            hint="use a client certificate signed by a CA the registry trusts",
        )
    return None


_TrustKey = tuple[bool, str | None, str | None, tuple[tuple[str, int, int], ...]]
_trusts: dict[_TrustKey, DeferredTrust] = {}
_trusts_lock = threading.Lock()


def trust_for(host: str, options: ClientOptions) -> DeferredTrust:
    """The shared trust setting for ``host``: one context per distinct setting, per process.

    Registries with the same trust inputs (insecure or not, ``--ca-file``, their certs.d
    directory, and the version of each of those files) share one `ssl.SSLContext`:
    building one and loading the system CA store costs about 30 ms, and most runs touch several
    registries with the same setting.
    """
    directory = certs_dir_for(host, options.certs_dirs)
    files = [Path(options.ca_file)] if options.ca_file else []
    if directory is not None:
        files += sorted(p for p in directory.iterdir() if p.suffix in (".crt", ".cert", ".key"))
    key = (
        options.is_insecure(host),
        options.ca_file,
        str(directory) if directory else None,
        tuple(_stamp(path) for path in files),
    )
    with _trusts_lock:
        trust = _trusts.get(key)
        if trust is None:
            trust = _trusts[key] = DeferredTrust(host, options)
        return trust


def _stamp(path: Path) -> tuple[str, int, int]:
    """What identifies a trust file's version: a changed file gets a new context."""
    try:
        stat = path.stat()
    except OSError:
        return (str(path), -1, -1)
    return (str(path), stat.st_mtime_ns, stat.st_size)


def ssl_context(host: str, options: ClientOptions) -> ssl.SSLContext:
    """The TLS context for one registry host, its trust store loaded (see [trust_for][]).

    Insecure hosts get a context that does not verify. Otherwise the system store is trusted,
    plus ``--ca-file`` and the host's ``certs.d`` CAs; a client certificate found there is
    presented.

    Raises:
        TLSConfigError: ``--ca-file`` or a certs.d file is missing or not PEM.
    """
    trust = trust_for(host, options)
    trust.load()
    return trust.context


class DeferredTrust:
    """A TLS context whose trust store is loaded only before the first TLS connection.

    Most runs against loopback registries never use TLS, and reading the system CA store
    costs about 20 ms. The context given to httpx is complete (verification on, hostname
    checked) but trusts nothing until `load` has run, so an early TLS connection fails
    closed rather than open. Contexts for insecure hosts verify nothing and need no loading.
    """

    def __init__(self, host: str, options: ClientOptions) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self._insecure = options.is_insecure(host)
        self._ca_file = options.ca_file
        self._directory = certs_dir_for(host, options.certs_dirs)
        self._loaded = self._insecure
        self._lock = threading.Lock()
        if self._insecure:
            self.context.check_hostname = False
            self.context.verify_mode = ssl.CERT_NONE

    def load(self) -> None:
        """Load the system store, ``--ca-file``, certs.d CAs and client certificate, once.

        Raises:
            TLSConfigError: a CA or client certificate file is missing or not PEM.
        """
        if self._loaded:
            return
        with self._lock:
            if not self._loaded:
                self.context.load_default_certs(ssl.Purpose.SERVER_AUTH)
                self._load_files()
                self._loaded = True

    def _load_files(self) -> None:
        context = self.context
        if self._ca_file:
            with _readable(self._ca_file, "CA file", "pass a PEM file of CA certificates"):
                context.load_verify_locations(cafile=self._ca_file)
        directory = self._directory
        if directory is None:
            return
        for ca in sorted(directory.glob("*.crt")):
            with _readable(str(ca), "CA file", "make it a PEM file of CA certificates"):
                context.load_verify_locations(cafile=str(ca))
        pair = client_cert_for(directory)
        if pair is not None:
            with _readable(str(pair[0]), "client certificate", "use a PEM certificate and key"):
                context.load_cert_chain(certfile=str(pair[0]), keyfile=str(pair[1]))


@contextlib.contextmanager
def _readable(path: str, what: str, fix: str) -> Iterator[None]:
    """Turn a missing or unparsable trust file into one [TLSConfigError][]."""
    try:
        yield
    except FileNotFoundError:
        raise TLSConfigError(f"{what} {path} does not exist", hint=fix) from None
    except ssl.SSLError as exc:
        reason = exc.reason or exc.strerror or "not PEM"
        raise TLSConfigError(f"{what} {path} cannot be used ({reason})", hint=fix) from None
    except OSError as exc:
        raise TLSConfigError(
            f"{what} {path} cannot be read ({exc.strerror or exc})", hint=fix
        ) from None
