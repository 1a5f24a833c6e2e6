"""One registry connection: scheme, TLS, authentication, retries, limits and errors.

[Connection][] owns the httpx client for one registry. It picks the scheme at the
``/v2/`` ping, attaches ``Authorization`` only to requests for the registry's own host and
scheme (so redirects to object storage, upload locations on other hosts and any plain-HTTP
location of an HTTPS registry carry none), re-authenticates once on a 401, retries replayable
requests as the [RetryPolicy][imgmirror.transport.retry.RetryPolicy] says, caps every body it reads
whole, fails
stalled requests and transfers (``.stall``, through the socket layer of
[.sockets][imgmirror.transport.sockets]:
a whole ``timeout`` of waiting that moved under ``min_rate`` bytes/s, the reply head
included, retries and resumes included), and turns httpx exceptions and registry error bodies into
the [imgmirror.errors][imgmirror.errors] tree, once, here. The endpoints live in
[.client][imgmirror.transport.client].
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Self, TypeVar
from urllib.parse import urlsplit

import httpx

from imgmirror.auth.challenge import parse_www_authenticate
from imgmirror.auth.credentials import Credential
from imgmirror.errors import (
    AuthenticationError,
    ImgmirrorError,
    InsecureLocation,
    NetworkError,
    RegistryError,
    ReplyTooLarge,
    TLSVerificationError,
    TransferStalled,
    is_transient,
    redact_url,
    registry_error_from_response,
)
from imgmirror.model.reference import is_loopback_host
from imgmirror.transport import meter
from imgmirror.transport.auth import Authenticator, TokenFetcher, TokenReply
from imgmirror.transport.limiter import RegistryLimiter
from imgmirror.transport.options import ClientOptions
from imgmirror.transport.retry import Attempts, parse_retry_after
from imgmirror.transport.sockets import install, limited, pause, watched
from imgmirror.transport.stall import StallWatch
from imgmirror.transport.tls import DeferredTrust, tls_error, trust_for
from imgmirror.transport.urls import resolve

__all__ = ["MAX_SMALL_BODY", "Body", "Connection", "api_host", "raw_chunks", "read_capped"]

log = logging.getLogger("imgmirror")

#: Where a streamed response keeps the stall window of its request (``Response.extensions``).
_WATCH = "imgmirror.stall_watch"

#: Default cap on a small reply body (ping, token, upload replies, errors).
MAX_SMALL_BODY = 256 * 1024

Body = bytes | Iterable[bytes] | None
_E = TypeVar("_E", bound=ImgmirrorError)


def api_host(registry: str) -> str:
    """The host that serves the registry API (Docker Hub's differs from its name)."""
    return "registry-1.docker.io" if registry == "docker.io" else registry


def raw_chunks(response: httpx.Response, size: int | None = None) -> Iterator[bytes]:
    """The body as sent (no content decoding); also for responses already read in memory."""
    if response.is_stream_consumed:
        yield response.content
    else:
        yield from response.iter_raw(size)


def read_capped(response: httpx.Response, cap: int, chunks: Iterable[bytes] | None = None) -> bytes:
    """The whole body of ``response``, or [ReplyTooLarge][] once it passes ``cap`` bytes.

    ``chunks`` replaces [raw_chunks][] (a stall-watched stream of the same body).
    """
    parts: list[bytes] = []
    total = 0
    for chunk in raw_chunks(response) if chunks is None else chunks:
        total += len(chunk)
        if total > cap:
            request = response.request
            raise ReplyTooLarge(
                f"reply to {request.method} {redact_url(str(request.url))} is too large: "
                f"over {cap} bytes",
                limit=cap,
                status=response.status_code,
                method=request.method,
                url=str(request.url),
                hint="the registry sent more than a reply of this kind may hold; "
                "if it is right, raise the cap in ClientOptions",
            )
        parts.append(chunk)
    return b"".join(parts)


def _doing(method: str, url: str) -> str:
    """``GET /v2/app/manifests/1``: what a request does, for messages (no query string)."""
    return f"{method} {urlsplit(url).path or '/'}"


def _weak_fetch(method: Callable[..., TokenReply]) -> TokenFetcher:
    """A token fetcher that does not keep its connection alive (no reference cycle)."""
    ref = weakref.WeakMethod(method)

    def fetch(*args: object) -> TokenReply:
        bound = ref()
        if bound is None:
            raise ImgmirrorError("the registry connection was closed")
        return bound(*args)

    return fetch


def _plain_http_server(error: NetworkError) -> bool:
    """Whether a TLS handshake failed because the server answered in plain HTTP."""
    return "WRONG_VERSION_NUMBER" in str(error.__cause__ or error)


class _Cookieless(httpx.Cookies):
    """A jar that keeps nothing: registries need no cookies (skopeo and crane keep none)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class _RegistryHTTP(httpx.Client):
    """httpx's client without cookie handling, which cost a tenth of its CPU per request."""

    _none = _Cookieless()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._none

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        raise TypeError("a registry client keeps no cookies")


class Connection:
    """The HTTP session with one registry (see the module docstring).

    Args:
        registry: the registry as written in references (``docker.io``, ``host:port``).
        credential: credentials for this registry, or None for anonymous.
        options: connection settings shared by all registries.
        http: an httpx client to use instead of building one (tests inject mock transports).
        role: ``"source"`` or ``"destination"``: which side this registry is; errors carry it.
        limiter: the registry's limits, shared with every other client of it (a pool's);
            None: no limits but the retry policy's.
        sleep: the retry policy's waits; injectable for tests (by default they end at once
            when the process is interrupted, see
            [.sockets.interrupt][imgmirror.transport.sockets.interrupt]).
        clock: monotonic seconds for retry budgets; injectable for tests.
    """

    def __init__(
        self,
        registry: str,
        *,
        credential: Credential | None = None,
        options: ClientOptions | None = None,
        http: httpx.Client | None = None,
        role: str | None = None,
        limiter: RegistryLimiter | None = None,
        sleep: Callable[[float], None] = pause,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.limiter = limiter
        self.host = api_host(registry)
        self.options = options or ClientOptions()
        self.role = role
        self._owns_http = http is None
        self._trust: DeferredTrust | None = None
        self._http = http or self._build_http()
        self.sleep = sleep
        self.clock = clock
        self._base: str | None = None
        self._ping_lock = threading.Lock()
        self._pings_done = 0  # with the last one's error, for the callers that waited for it
        self._ping_error: ImgmirrorError | None = None
        self._ping_stalled: TransferStalled | None = None
        self.auth = Authenticator(self.host, credential, _weak_fetch(self._fetch_token), role=role)

    def _build_http(self) -> httpx.Client:
        opts = self.options
        self._trust = trust_for(self.host, opts)
        client = _RegistryHTTP(
            verify=self._trust.context,
            timeout=httpx.Timeout(opts.timeout, connect=min(opts.connect_timeout, opts.timeout)),
            limits=httpx.Limits(
                max_connections=opts.max_connections,
                max_keepalive_connections=opts.max_connections,
            ),
            # Blobs are compressed already and manifests must arrive byte for byte.
            headers={"User-Agent": opts.user_agent, "Accept-Encoding": "identity"},
            follow_redirects=False,
        )
        install(client)  # every connect, read and write ends when its transfer stalls
        return client

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

        A ping that stalled is not sent again: every later request fails with its error (the
        requests of a run waiting for the ping would otherwise stall one after the other).

        Raises:
            NetworkError: the registry cannot be reached (TLSVerificationError for bad certs,
                TransferStalled when it drips its answer).
            RegistryError: the host answers but is not a v2 registry.
        """
        done = self._pings_done
        with self._ping_lock:
            if self._base is not None:
                return
            if self._ping_stalled is not None:
                raise self._ping_stalled  # a stalled ping spent its timeout: not sent again
            if self._pings_done != done and self._ping_error is not None:
                raise self._ping_error  # the ping this caller waited for has just failed
            try:
                self._base = self._choose_base()
            except TransferStalled as exc:
                self._ping_stalled = self._ping_error = exc
                raise
            except ImgmirrorError as exc:
                self._ping_error = exc
                raise
            finally:
                self._pings_done += 1

    def _choose_base(self) -> str:
        if is_loopback_host(self.host):
            # Local registries are mostly plain HTTP; a TLS one answers the HTTP probe with
            # 400 ("HTTP request to an HTTPS server") or drops it, and is then tried over TLS.
            schemes = ["http", "https"]
        elif self.options.is_insecure(self.host):
            schemes = ["https", "http"]
        else:
            schemes = ["https"]
        for position, candidate in enumerate(schemes, start=1):
            scheme, url = candidate, f"{candidate}://{self.host}/v2/"
            try:
                response = self._ping_once(url, retry=position == len(schemes))
            except (TLSVerificationError, TransferStalled):
                raise  # a server that drips its answer speaks this scheme
            except NetworkError as exc:
                if position < len(schemes):
                    continue
                if not (scheme == "https" and "http" in schemes and _plain_http_server(exc)):
                    raise
                # The HTTP probe broke off, yet the server speaks plain HTTP: probe it again.
                scheme, url = "http", f"http://{self.host}/v2/"
                response = self._ping_once(url, retry=True)
            status = response.status_code
            if status == 400 and scheme == "http" and position < len(schemes):
                continue  # a TLS server refusing plain HTTP
            if status == 401:
                challenges = parse_www_authenticate(response.headers.get_list("www-authenticate"))
                self.auth.set_challenges(challenges)
            elif status == 404:
                raise self._with_role(
                    RegistryError(
                        f"{self.host} does not serve the registry v2 API (GET /v2/ gave 404)",
                        status=404,
                        method="GET",
                        url=url,
                        hint="check the registry host name and port",
                    )
                )
            elif status >= 400 and status != 403:
                raise self.fail(response, "GET", url)
            log.debug("registry %s reached over %s", self.host, scheme)
            return f"{scheme}://{self.host}"
        raise AssertionError("unreachable")  # pragma: no cover - the last scheme raises

    def _ping_once(self, url: str, *, retry: bool) -> httpx.Response:
        """``GET /v2/`` with its body capped. A transient status (429 after its
        ``Retry-After``, 503...) is retried as the retry policy says: whatever the scheme, it
        came from a registry speaking it. A broken connection is retried when ``retry`` (the
        last scheme to try)."""
        policy = self.options.retry
        attempts = policy.start(clock=self.clock)
        watch = self.stall_watch()
        while True:
            try:
                with self._limited("GET", url, attempts):
                    sent = self._send_once("GET", url, {}, None, watch)
                response = self._receive(sent, url)
                self._observe(response)
            except TLSVerificationError:
                raise
            except NetworkError as exc:
                delay = attempts.next_delay() if retry and is_transient(exc) else None
                if delay is None:
                    raise
            else:
                delay = None
                if policy.should_retry_status(response.status_code):
                    delay = attempts.next_delay(self._retry_after(response))
                if delay is None:
                    return response
            self.sleep(delay)

    def _fetch_token(
        self,
        method: str,
        url: str,
        params: Sequence[tuple[str, str]],
        form: dict[str, str] | None,
        headers: dict[str, str],
    ) -> TokenReply:
        self._load_trust(url)
        request = self._http.build_request(
            method, url, params=list(params) or None, data=form, headers=headers
        )
        response = self._receive(self._sent(request, url, self.stall_watch()), url)
        return response.status_code, response.content

    # -- errors, limits and stalls ---------------------------------------------------------

    def _with_role(self, error: _E) -> _E:
        error.role = self.role
        return error

    @contextlib.contextmanager
    def _translate(self, url: str, doing: str) -> Iterator[None]:
        """Map httpx transport errors to [NetworkError][], once, here."""
        try:
            yield
        except httpx.TransportError as exc:
            raise self._network_error(exc, url, doing) from exc

    def _network_error(self, exc: httpx.TransportError, url: str, doing: str) -> NetworkError:
        host = httpx.URL(url).netloc.decode("ascii", "replace")
        opts = self.options
        refused = tls_error(exc, host, opts)
        if refused is not None:
            return self._with_role(refused)
        if isinstance(exc, httpx.ConnectTimeout):
            connect = min(opts.connect_timeout, opts.timeout)
            error = NetworkError(
                f"cannot connect to {host}: no answer within {connect:g} s",
                hint="check the host name and port, and that this machine can reach it",
            )
        elif isinstance(exc, httpx.TimeoutException):
            verb = "took nothing" if isinstance(exc, httpx.WriteTimeout) else "sent nothing"
            error = NetworkError(
                f"{host} {verb} for {opts.timeout:g} s during {doing}",
                hint="the registry or the network stalled; retry later or allow a longer timeout",
                setting="timeout",
            )
        elif isinstance(exc, httpx.ConnectError):
            error = NetworkError(
                f"cannot connect to registry {host}: {exc}",
                hint="check the host name and port, and that this machine can reach it",
            )
        else:
            error = NetworkError(
                f"connection to {host} failed during {doing}: {exc or type(exc).__name__}",
                hint="the transfer broke off; retry",
            )
        return self._with_role(error)

    def stall_watch(self) -> StallWatch:
        """A new stall window for one request or transfer (see
        ``.stall``)."""
        opts = self.options
        return StallWatch(opts.timeout, opts.min_rate)

    def _stalled(self, url: str, doing: str) -> Callable[[], TransferStalled]:
        """What a stall of ``doing`` raises (built only when it happens)."""
        opts = self.options

        def stalled() -> TransferStalled:
            host = httpx.URL(url).netloc.decode("ascii", "replace")
            return self._with_role(
                TransferStalled(
                    f"{host} stalled during {doing}: under {opts.min_rate:g} bytes/s "
                    f"for {opts.timeout:g} s",
                    hint="the registry or the network is too slow; retry later or allow a "
                    "longer timeout",
                    setting="timeout",
                )
            )

        return stalled

    def body_chunks(self, response: httpx.Response, url: str) -> Iterator[bytes]:
        """The raw body of a streamed response, stall-watched, transport errors translated.

        The body is read under the stall window its request ran under (`request`): a
        reply head and its body, a request and its retries, share one window.
        """
        doing = _doing(response.request.method, url)
        watch = response.extensions.get(_WATCH) or self.stall_watch()
        with self._translate(url, doing):
            yield from watched(raw_chunks(response), watch, self._stalled(url, doing))

    def read_body(self, response: httpx.Response, url: str, cap: int | None = None) -> bytes:
        """The whole body of a streamed response, capped (``max_reply_bytes`` by default).

        Raises:
            ReplyTooLarge: the body is larger than ``cap``; nothing of it is returned.
            NetworkError: the body broke off or stalled.
        """
        limit = self.options.max_reply_bytes if cap is None else cap
        try:
            return read_capped(response, limit, self.body_chunks(response, url))
        except ReplyTooLarge as exc:
            raise self._with_role(exc) from None
        finally:
            response.close()

    def _receive(
        self, response: httpx.Response, url: str, cap: int | None = None
    ) -> httpx.Response:
        """Read a streamed response into memory, capped; an error's oversized body is dropped."""
        method = response.request.method
        if method == "HEAD" or (
            response.headers.get("content-length") == "0"
            and "content-encoding" not in response.headers
        ):
            # no body to cap, watch or keep undecoded: finish the empty stream in place
            with self._translate(url, _doing(method, url)):
                response.read()
            return response
        try:
            body = self.read_body(response, url, cap)
        except ReplyTooLarge:
            if response.status_code < 300:
                raise
            body = b""  # the status says enough; the body is not worth more memory
        headers: httpx.Headers | list[tuple[str, str]] = response.headers
        if "content-encoding" in response.headers:  # the body is kept as sent: never decoded
            headers = [(k, v) for k, v in response.headers.multi_items() if k != "content-encoding"]
        return httpx.Response(
            response.status_code, headers=headers, content=body, request=response.request
        )

    @staticmethod
    def _retry_after(response: httpx.Response) -> float | None:
        return parse_retry_after(response.headers.get("retry-after"))

    # -- the send loop ---------------------------------------------------------------

    def _load_trust(self, url: str) -> None:
        if self._trust is not None and url.startswith("https:"):
            self._trust.load()

    def _send_once(
        self, method: str, url: str, headers: dict[str, str], content: Body, watch: StallWatch
    ) -> httpx.Response:
        request = self._http.build_request(method, url, headers=headers, content=content)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s", method, redact_url(url))
        return self._sent(request, url, watch)

    def _sent(self, request: httpx.Request, url: str, watch: StallWatch) -> httpx.Response:
        """Send ``request`` (its body and the wait for the reply head under ``watch``)."""
        self._load_trust(url)
        doing = _doing(request.method, url)
        with self._translate(url, doing), limited(watch, self._stalled(url, doing)):
            response = self._http.send(request, stream=True)
        response.extensions[_WATCH] = watch
        return response

    def _may_authorize(self, url: str) -> bool:
        """Credentials go to the registry's own host, never over plain HTTP after HTTPS."""
        if self._base is not None and url.startswith(self._base + "/"):
            return True  # the common case, decided without parsing the URL
        target = httpx.URL(url)
        if target.netloc.decode("ascii", "replace") != self.host:
            return False
        base_scheme = self._base.split(":", 1)[0] if self._base else "https"
        return target.scheme in (base_scheme, "https")

    def location(self, url: str, location: str, response: httpx.Response) -> str:
        """Resolve a ``Location`` sent in reply to ``url``, refusing an HTTPS->HTTP downgrade.

        Raises:
            InsecureLocation: the registry, reached over HTTPS, points its own host name (on
                any port) at plain HTTP.
        """
        target = resolve(url, location)
        base = self._base or "http://-"
        if (
            target.startswith("http:")
            and base.startswith("https:")
            and urlsplit(target).hostname == urlsplit(base).hostname
        ):
            method = response.request.method
            raise self._with_role(
                InsecureLocation(
                    f"{self.host} was reached over HTTPS but its reply to {_doing(method, url)} "
                    f"points to plain HTTP ({redact_url(target)}); refusing to send "
                    "credentials or data in cleartext",
                    status=response.status_code,
                    method=method,
                    url=url,
                    hint="fix the registry's (or its proxy's) external URL to use https",
                )
            )
        return target

    def request(
        self,
        method: str,
        url: str,
        *,
        scopes: Sequence[str],
        headers: dict[str, str] | None = None,
        content: Body = None,
        stream: bool = False,
        cap: int | None = None,
        watch: StallWatch | None = None,
    ) -> httpx.Response:
        """Send one request with auth, re-authentication and bounded retries.

        Without ``stream``, the body is read into memory, capped at ``cap`` (default
        ``max_reply_bytes``): a larger successful reply is [ReplyTooLarge][]. With
        ``stream``, read it with `body_chunks` or `read_body`.

        A body that is an iterator cannot be sent twice, so such requests are never retried
        here; callers retry the whole operation with a fresh body instead.

        The request, its retries and (``stream``) the body read later share one stall window,
        ``watch`` (a new one by default; a resumed blob passes its own). A stall is never
        retried: [TransferStalled][].
        """
        replayable = content is None or isinstance(content, bytes)
        policy = self.options.retry
        attempts = policy.start(clock=self.clock)
        watch = watch or self.stall_watch()
        reauthenticated = False
        while True:
            sent = dict(headers or {})
            if self._may_authorize(url):
                authorization = self.auth.authorization(scopes)
                if authorization:
                    sent["Authorization"] = authorization
            try:
                with self._limited(method, url, attempts):
                    response = self._send_once(method, url, sent, content, watch)
                if not stream:
                    response = self._receive(response, url, cap)
            except TLSVerificationError:
                raise
            except NetworkError as exc:
                delay = attempts.next_delay() if replayable and is_transient(exc) else None
                if delay is None:
                    raise
                log.debug("network error on %s %s; retry in %.2fs", method, redact_url(url), delay)
                self.sleep(delay)
                continue
            status = response.status_code
            self._observe(response)
            if status == 401 and self._may_authorize(url) and not reauthenticated:
                challenges = parse_www_authenticate(response.headers.get_list("www-authenticate"))
                usable = self.auth.set_challenges(challenges)
                if usable or "Authorization" in sent:
                    self.auth.forget(scopes)
                    if replayable:
                        self._discard(response, url)
                        reauthenticated = True
                        continue
                return response
            if replayable and policy.should_retry_status(status):
                delay = attempts.next_delay(self._retry_after(response))
                if delay is not None:
                    self._discard(response, url)
                    log.debug("HTTP %s on %s; retry in %.2fs", status, redact_url(url), delay)
                    self.sleep(delay)
                    continue
            return response

    @contextlib.contextmanager
    def _limited(self, method: str, url: str, attempts: Attempts) -> Iterator[None]:
        """Send within the registry's limits; time spent waiting for them (a pause another
        request caused, a slot, the quota) is not taken from this request's retry budget."""
        if self.limiter is None:
            yield
            return
        with self.limiter.slot(method, url) as waited:
            attempts.paused(waited)
            yield

    def _observe(self, response: httpx.Response) -> None:
        """Count the answer for the work under way and tell the registry's limiter."""
        status = response.status_code
        retry_after = self._retry_after(response) if status in (429, 503) else None
        meter.count(limited=status == 429 or (status == 503 and retry_after is not None))
        if self.limiter is not None:
            self.limiter.observe(status, response.headers, retry_after)

    def _discard(self, response: httpx.Response, url: str) -> None:
        """Read a small unwanted body so the connection can be reused, then close."""
        with contextlib.suppress(ImgmirrorError):
            self.read_body(response, url)
        response.close()

    def fail(self, response: httpx.Response, method: str, url: str) -> RegistryError:
        """Turn a non-success response into the matching [RegistryError][].

        The registry's error code and message (``{"errors": [...]}``, capped) are kept.
        """
        if response.is_stream_consumed:
            body = response.content
        else:
            try:
                body = self.read_body(response, url)
            except ImgmirrorError:
                body = b""
        response.close()
        error = registry_error_from_response(
            response.status_code,
            method,
            url,
            body,
            response.headers.get("content-type"),
            retry_after=self._retry_after(response),
        )
        if isinstance(error, AuthenticationError):
            return self.auth.refused(response.status_code, method, url, error)
        return self._with_role(error)

    def expect(
        self, response: httpx.Response, method: str, url: str, ok: Iterable[int] = ()
    ) -> httpx.Response:
        """``response`` if its status is in ``ok`` (default: any 2xx), else its error raised."""
        codes = set(ok)
        if (codes and response.status_code in codes) or (
            not codes and 200 <= response.status_code < 300
        ):
            return response
        raise self.fail(response, method, url)
