"""Registry authentication: which ``Authorization`` header a request to one registry carries.

An [Authenticator][] belongs to exactly one registry host. It remembers the challenge the
registry answered with (from the ``/v2/`` ping or any later 401), exchanges credentials for
bearer tokens at the challenge's realm, caches tokens per set of scopes and renews them before
they expire. It never decides *where* a header goes: the client only asks it for requests to the
registry's own host, so credentials cannot follow a redirect to object storage.

The token exchange needs HTTP, but this module does none itself: the client injects a
``TokenFetcher`` callable, which keeps the flow testable without sockets.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence

from imgmirror.auth.challenge import (
    Challenge,
    Token,
    parse_token_response,
    pick_challenge,
    token_query,
    validate_realm,
)
from imgmirror.auth.credentials import Credential
from imgmirror.auth.dockerconfig import encode_auth
from imgmirror.errors import AuthenticationError, credentials_hint

__all__ = ["Authenticator", "TokenFetcher", "TokenReply"]

log = logging.getLogger("imgmirror")

#: ``(status, body)`` of a token endpoint reply.
TokenReply = tuple[int, bytes]
#: ``fetch(method, url, params, form, headers) -> (status, body)``; performs the token request.
TokenFetcher = Callable[
    [str, str, Sequence[tuple[str, str]], dict[str, str] | None, dict[str, str]], TokenReply
]

_CLIENT_ID = "imgmirror"


def _basic(username: str, password: str) -> str:
    return "Basic " + encode_auth(username, password)


class Authenticator:
    """Chooses and renews the ``Authorization`` header for one registry.

    Args:
        host: the registry's ``host[:port]``; used in messages and realm checks.
        credential: what the user gave for this registry, or None for anonymous.
        fetch: performs token requests (see [TokenFetcher][]).
        role: ``"source"`` or ``"destination"``: which side this registry is, for errors.
        clock: seconds since the epoch; injectable for tests.
    """

    def __init__(
        self,
        host: str,
        credential: Credential | None,
        fetch: TokenFetcher,
        *,
        role: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.host = host
        self.credential = credential
        self._fetch = fetch
        self.role = role
        self._clock = clock
        self._challenge: Challenge | None = None
        self._tokens: dict[tuple[str, ...], Token] = {}
        self._extra_scopes: set[str] = set()
        self._lock = threading.Lock()

    @property
    def challenge(self) -> Challenge | None:
        """The challenge in force, if the registry asked for authentication."""
        return self._challenge

    def set_challenges(self, challenges: Iterable[Challenge]) -> bool:
        """Adopt the best of the offered challenges. Returns whether one was usable."""
        chosen = pick_challenge(list(challenges))
        if chosen is None:
            return False
        if chosen.scheme == "bearer":
            realm = chosen.params.get("realm")
            if not realm:
                raise AuthenticationError(
                    f"registry {self.host} sent a bearer challenge without a realm",
                    status=401,
                    method="GET",
                    url=f"{self.host}/v2/",
                )
            validate_realm(realm, self.host)
            scope = chosen.params.get("scope")
            if scope and chosen.params.get("error") == "insufficient_scope":
                self._extra_scopes.update(scope.split())
        with self._lock:
            if chosen != self._challenge:
                self._challenge = chosen
        return True

    def authorization(self, scopes: Sequence[str]) -> str | None:
        """The header value for a request needing ``scopes``, fetching a token if due."""
        challenge = self._challenge
        if challenge is None:
            return None
        cred = self.credential
        if challenge.scheme == "basic":
            if cred is None or not cred.password:
                return None
            return _basic(cred.username, cred.password)
        if cred is not None and cred.registry_token:
            return f"Bearer {cred.registry_token}"
        key = tuple(sorted({*scopes, *self._extra_scopes}))
        with self._lock:
            token = self._tokens.get(key)
            if token is None or token.expired(self._clock()):
                token = self._exchange(challenge, key)
                self._tokens[key] = token
        return f"Bearer {token.value}"

    def forget(self, scopes: Sequence[str]) -> None:
        """Drop the cached token for ``scopes`` (the registry refused it)."""
        key = tuple(sorted({*scopes, *self._extra_scopes}))
        with self._lock:
            self._tokens.pop(key, None)

    def _exchange(self, challenge: Challenge, scopes: tuple[str, ...]) -> Token:
        realm = challenge.params["realm"]
        cred = self.credential
        now = self._clock()
        if cred is not None and cred.identity_token:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": cred.identity_token,
                "client_id": _CLIENT_ID,
                "scope": " ".join(scopes),
            }
            if "service" in challenge.params:
                form["service"] = challenge.params["service"]
            status, body = self._fetch("POST", realm, (), form, {})
            if status not in (404, 405):
                return self._token_from(status, body, now)
        headers: dict[str, str] = {}
        if cred is not None and cred.password:
            headers["Authorization"] = _basic(cred.username, cred.password)
        status, body = self._fetch("GET", realm, token_query(challenge, scopes), None, headers)
        log.debug("token for %s scopes=%s: HTTP %s", self.host, " ".join(scopes), status)
        return self._token_from(status, body, now)

    def refused(
        self, status: int, method: str, url: str, error: AuthenticationError | None = None
    ) -> AuthenticationError:
        """An [AuthenticationError][] saying which credentials failed and what to do.

        With ``error`` (built from the registry's reply), that error gets the role and hint.
        """
        username = self.credential.username if self.credential is not None else None
        if error is None:
            if username is None:
                message = f"registry {self.host} wants credentials and none were given"
            else:
                message = f"registry {self.host} rejected the credentials of user {username!r}"
            error = AuthenticationError(message, status=status, method=method, url=url)
        error.host = self.host
        error.username = username
        error.role = self.role
        error.hint = credentials_hint(self.host, username, role=self.role)
        return error

    def _token_from(self, status: int, body: bytes, now: float) -> Token:
        if status in (401, 403):
            raise self.refused(status, "GET", f"{self.host} token endpoint")
        if not 200 <= status < 300:
            raise AuthenticationError(
                f"token endpoint of {self.host} answered HTTP {status}",
                status=status,
                method="GET",
                url=f"{self.host} token endpoint",
                hint="the registry's auth service is failing; try again later",
            )
        return parse_token_response(body, now)
