"""One registry connection: scheme, TLS, authentication, retries and error translation.

:class:`Connection` owns the httpx client for one registry. It picks the scheme at the
``/v2/`` ping, attaches ``Authorization`` only to requests for the registry's own host (so
redirects to object storage and upload locations on other hosts carry none), re-authenticates
once on a 401, retries replayable requests on transient failures, and turns httpx exceptions
and registry error bodies into the :mod:`imgmirror.errors` tree, once, here. The endpoints
live in :mod:`.client`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Self

import httpx

from ..challenge import parse_www_authenticate
from ..credentials import Credential
from ..errors import (
    AuthenticationError,
    NetworkError,
    RegistryError,
    TLSVerificationError,
    redact_url,
    registry_error_from_response,
)
from ..reference import is_loopback_host
from .auth import Authenticator, TokenReply
from .retry import parse_retry_after
from .tls import ClientOptions, DeferredTrust, ssl_context, tls_error

__all__ = ["MAX_SMALL_BODY", "Body", "Connection", "api_host", "raw_chunks", "read_capped"]

log = logging.getLogger("imgmirror")

#: Largest error or token body we read.
MAX_SMALL_BODY = 64 * 1024

Body = bytes | Iterable[bytes] | None


def api_host(registry: str) -> str:
    """The host that serves the registry API (Docker Hub's differs from its name)."""
    return "registry-1.docker.io" if registry == "docker.io" else registry


def raw_chunks(response: httpx.Response, size: int | None = None) -> Iterator[bytes]:
    """The body as sent (no content decoding); also for responses already read in memory."""
    if response.is_stream_consumed:
        yield response.content
    else:
        yield from response.iter_raw(size)


def read_capped(response: httpx.Response, cap: int) -> bytes:
    parts: list[bytes] = []
    total = 0
    for chunk in raw_chunks(response):
        total += len(chunk)
        if total > cap:
            break
        parts.append(chunk)
    return b"".join(parts)


class Connection:
    """The HTTP session with one registry (see the module docstring).

    Args:
        registry: the registry as written in references (``docker.io``, ``host:port``).
        credential: credentials for this registry, or None for anonymous.
        options: connection settings shared by all registries.
        http: an httpx client to use instead of building one (tests inject mock transports).
        creds_hint: how the user passes credentials for this side, for error hints.
        sleep: injectable for tests.
    """

    def __init__(
        self,
        registry: str,
        *,
        credential: Credential | None = None,
        options: ClientOptions | None = None,
        http: httpx.Client | None = None,
        creds_hint: str = "--src-creds/--dest-creds",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.registry = registry
        self.host = api_host(registry)
        self.options = options or ClientOptions()
        self._owns_http = http is None
        self._deferred: DeferredTrust | None = None
        self._http = http or self._build_http()
        self._sleep = sleep
        self._base: str | None = None
        self._ping_lock = threading.Lock()
        self.auth = Authenticator(self.host, credential, self._fetch_token, creds_hint=creds_hint)

    def _build_http(self) -> httpx.Client:
        opts = self.options
        if is_loopback_host(self.host) and not opts.is_insecure(self.host):
            self._deferred = DeferredTrust(self.host, opts)
            verify = self._deferred.context
        else:
            verify = ssl_context(self.host, opts)
        return httpx.Client(
            verify=verify,
            timeout=httpx.Timeout(opts.timeout, connect=min(opts.timeout, 15.0)),
            limits=httpx.Limits(
                max_connections=opts.max_connections,
                max_keepalive_connections=opts.max_connections,
            ),
            headers={"User-Agent": opts.user_agent},
            follow_redirects=False,
        )

    def close(self) -> None:
        """Release pooled connections."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- connection set-up -------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``scheme://host``, once the ping has chosen the scheme."""
        if self._base is None:
            self.ping()
        assert self._base is not None
        return self._base

    def ping(self) -> None:
        """``GET /v2/``: choose the scheme and learn the auth challenge.

        Raises:
            NetworkError: the registry cannot be reached (TLSVerificationError for bad certs).
            RegistryError: the host answers but is not a v2 registry.
        """
        with self._ping_lock:
            if self._base is None:
                self._base = self._choose_base()

    def _choose_base(self) -> str:
        if is_loopback_host(self.host):
            # Local registries are mostly plain HTTP; a TLS one answers the HTTP probe with
            # 400 ("HTTP request to an HTTPS server") or drops it, and is then tried over TLS.
            schemes = ["http", "https"]
        elif self.options.is_insecure(self.host):
            schemes = ["https", "http"]
        else:
            schemes = ["https"]
        for position, scheme in enumerate(schemes, start=1):
            url = f"{scheme}://{self.host}/v2/"
            try:
                response = self._ping_once(url, retry=position == len(schemes))
            except TLSVerificationError:
                raise
            except NetworkError:
                if position == len(schemes):
                    raise
                continue
            status = response.status_code
            if status == 400 and scheme == "http" and position < len(schemes):
                continue  # a TLS server refusing plain HTTP
            if status == 401:
                challenges = parse_www_authenticate(response.headers.get_list("www-authenticate"))
                self.auth.set_challenges(challenges)
            elif status == 404:
                raise RegistryError(
                    f"{self.host} does not serve the registry v2 API (GET /v2/ gave 404)",
                    status=404,
                    method="GET",
                    url=url,
                    hint="check the registry host name and port",
                )
            elif status >= 400 and status != 403:
                raise registry_error_from_response(
                    status, "GET", url, response.content, response.headers.get("content-type")
                )
            log.debug("registry %s reached over %s", self.host, scheme)
            return f"{scheme}://{self.host}"
        raise AssertionError("unreachable")  # pragma: no cover - the last scheme raises

    def _ping_once(self, url: str, *, retry: bool) -> httpx.Response:
        """``GET /v2/``, retried on transient failures when ``retry``."""
        policy = self.options.retry
        attempt, waited = 0, 0.0
        while True:
            attempt += 1
            try:
                response = self._send_once("GET", url, {}, None, stream=False)
            except TLSVerificationError:
                raise
            except NetworkError:
                delay = policy.delay(attempt)
                if not (retry and policy.allows(attempt, waited, delay)):
                    raise
            else:
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                delay = policy.delay(attempt, retry_after)
                transient = policy.should_retry_status(response.status_code)
                if not (transient and retry and policy.allows(attempt, waited, delay)):
                    return response
            self._sleep(delay)
            waited += delay

    def _fetch_token(
        self,
        method: str,
        url: str,
        params: Sequence[tuple[str, str]],
        form: dict[str, str] | None,
        headers: dict[str, str],
    ) -> TokenReply:
        request = self._http.build_request(
            method, url, params=list(params) or None, data=form, headers=headers
        )
        with self._translate(url):
            response = self._http.send(request, stream=True)
        try:
            with self._translate(url):
                body = read_capped(response, MAX_SMALL_BODY)
        finally:
            response.close()
        return response.status_code, body

    # -- the send loop ---------------------------------------------------------------

    @contextlib.contextmanager
    def _translate(self, url: str) -> Iterator[None]:
        """Map httpx transport errors to :class:`NetworkError`, once, here."""
        try:
            yield
        except httpx.TransportError as exc:
            raise self._network_error(exc, url) from exc

    def _network_error(self, exc: httpx.TransportError, url: str) -> NetworkError:
        host = httpx.URL(url).netloc.decode("ascii", "replace")
        refused = tls_error(exc, host, self.options)
        if refused is not None:
            return refused
        if isinstance(exc, httpx.TimeoutException):
            return NetworkError(
                f"timed out talking to {host} ({type(exc).__name__})",
                hint="check the network path to the registry, or retry later",
            )
        if isinstance(exc, httpx.ConnectError):
            return NetworkError(
                f"cannot connect to registry {host}: {exc}",
                hint="check the host name and port, and that this machine can reach it",
            )
        return NetworkError(
            f"connection to {host} failed: {exc or type(exc).__name__}",
            hint="the transfer broke off; retry",
        )

    def _send_once(
        self, method: str, url: str, headers: dict[str, str], content: Body, *, stream: bool
    ) -> httpx.Response:
        if self._deferred is not None and url.startswith("https:"):
            self._deferred.load()
        request = self._http.build_request(method, url, headers=headers, content=content)
        log.debug("%s %s", method, redact_url(url))
        with self._translate(url):
            return self._http.send(request, stream=stream)

    def _same_host(self, url: str) -> bool:
        return httpx.URL(url).netloc.decode("ascii", "replace") == self.host

    def request(
        self,
        method: str,
        url: str,
        *,
        scopes: Sequence[str],
        headers: dict[str, str] | None = None,
        content: Body = None,
        stream: bool = False,
    ) -> httpx.Response:
        """Send one request with auth, re-authentication and bounded retries.

        A body that is an iterator cannot be sent twice, so such requests are never retried
        here; callers retry the whole operation with a fresh body instead.
        """
        replayable = content is None or isinstance(content, bytes)
        policy = self.options.retry
        attempt = 0
        waited = 0.0
        reauthenticated = False
        while True:
            attempt += 1
            sent = dict(headers or {})
            if self._same_host(url):
                authorization = self.auth.authorization(scopes)
                if authorization:
                    sent["Authorization"] = authorization
            try:
                response = self._send_once(method, url, sent, content, stream=stream)
            except TLSVerificationError:
                raise
            except NetworkError:
                delay = policy.delay(attempt)
                if not (replayable and policy.allows(attempt, waited, delay)):
                    raise
                log.debug(
                    "network error on %s %s; retrying in %.2fs", method, redact_url(url), delay
                )
                self._sleep(delay)
                waited += delay
                continue
            status = response.status_code
            if status == 401 and self._same_host(url) and not reauthenticated:
                challenges = parse_www_authenticate(response.headers.get_list("www-authenticate"))
                usable = self.auth.set_challenges(challenges)
                if usable or "Authorization" in sent:
                    self.auth.forget(scopes)
                    if replayable:
                        response.close()
                        reauthenticated = True
                        continue
                return response
            if policy.should_retry_status(status) and replayable:
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                delay = policy.delay(attempt, retry_after)
                if policy.allows(attempt, waited, delay):
                    response.close()
                    log.debug("HTTP %s on %s; retrying in %.2fs", status, redact_url(url), delay)
                    self._sleep(delay)
                    waited += delay
                    continue
            return response

    def fail(self, response: httpx.Response, method: str, url: str) -> RegistryError:
        """Turn a non-success response into the matching :class:`RegistryError`."""
        try:
            body = read_capped(response, MAX_SMALL_BODY) if not response.is_closed else b""
        except (httpx.HTTPError, httpx.StreamError):
            body = b""
        finally:
            response.close()
        error = registry_error_from_response(
            response.status_code,
            method,
            url,
            body,
            response.headers.get("content-type"),
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )
        if isinstance(error, AuthenticationError):
            if self.auth.credential is None:
                error.hint = (
                    f"{self.host} needs credentials: pass {self.auth.creds_hint} "
                    "USER:PASSWORD, or log in with docker login"
                )
            else:
                user = self.auth.credential.username
                error.hint = (
                    f"{self.host} refused the credentials of user {user!r}: "
                    f"check the username and password given with {self.auth.creds_hint}"
                )
        return error

    def _expect(
        self, response: httpx.Response, method: str, url: str, ok: Iterable[int] = ()
    ) -> httpx.Response:
        codes = set(ok)
        if (codes and response.status_code in codes) or (
            not codes and 200 <= response.status_code < 300
        ):
            return response
        raise self.fail(response, method, url)
