"""Registry auth, the pure part: ``WWW-Authenticate`` challenges, token requests and responses.

Parsing follows distribution/ggcr ``authchallenge.go``: a header may carry several challenges
and there may be several header lines; schemes and parameter names are case-insensitive (they
are lowercased here); values are tokens or quoted strings that may hold commas and
``\\``-escapes. Token responses follow distribution ``auth/token.md``: ``access_token`` or
``token``, ``expires_in`` defaulting to 60 and clamped up to 60, optional ``issued_at``.
This module does no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from types import MappingProxyType
from urllib.parse import urlsplit

import attrs

from imgmirror.errors import CredentialsError
from imgmirror.model.documents import load_json
from imgmirror.model.reference import is_loopback_host

__all__ = [
    "Challenge",
    "Token",
    "parse_token_response",
    "parse_www_authenticate",
    "pick_challenge",
    "token_query",
    "validate_realm",
]

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_MIN_EXPIRES_IN = 60.0
_PREFERENCE = ("bearer", "basic")


def _freeze(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


@attrs.frozen
class Challenge:
    """One authentication challenge: a lowercased scheme and its lowercased-key parameters."""

    scheme: str
    params: Mapping[str, str] = attrs.field(factory=dict, converter=_freeze, hash=False)

    @property
    def realm(self) -> str | None:
        """The ``realm`` parameter (the token endpoint, for bearer)."""
        return self.params.get("realm")

    @property
    def service(self) -> str | None:
        """The ``service`` parameter."""
        return self.params.get("service")

    @property
    def scopes(self) -> tuple[str, ...]:
        """The space-separated scopes of the ``scope`` parameter, if any."""
        return tuple(self.params.get("scope", "").split())


def _quoted(text: str, start: int) -> tuple[str, int]:
    """Read a quoted string whose opening quote is at ``start``; returns (value, next index)."""
    out: list[str] = []
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if char == '"':
            return "".join(out), i + 1
        out.append(char)
        i += 1
    return "".join(out), i  # unterminated: take the rest


def _skip(text: str, i: int, chars: str) -> int:
    while i < len(text) and text[i] in chars:
        i += 1
    return i


def _parse_line(text: str) -> list[tuple[str, dict[str, str]]]:
    found: list[tuple[str, dict[str, str]]] = []
    i = 0
    while True:
        i = _skip(text, i, " \t,")
        if i >= len(text):
            return found
        match = _TOKEN.match(text, i)
        if match is None:  # garbage: skip to the next comma
            comma = text.find(",", i)
            i = len(text) if comma < 0 else comma + 1
            continue
        name, j = match.group(), _skip(text, match.end(), " \t")
        if j >= len(text) or text[j] != "=":  # a scheme starts a new challenge
            found.append((name.lower(), {}))
            i = j
            continue
        j = _skip(text, j + 1, " \t")
        if j < len(text) and text[j] == '"':
            value, i = _quoted(text, j)
        else:
            end = j
            while end < len(text) and text[end] not in ", \t":
                end += 1
            value, i = text[j:end], end
        if found:  # parameters before any scheme are dropped
            found[-1][1][name.lower()] = value


def parse_www_authenticate(values: Iterable[str]) -> list[Challenge]:
    """Parse every challenge in the given ``WWW-Authenticate`` header values, in order.

    Unparseable fragments are skipped; parameters before any scheme are dropped.
    """
    return [Challenge(scheme, params) for value in values for scheme, params in _parse_line(value)]


def pick_challenge(challenges: Iterable[Challenge]) -> Challenge | None:
    """The challenge to answer: the first ``bearer``, else the first ``basic``, else None."""
    found = list(challenges)
    for scheme in _PREFERENCE:
        for challenge in found:
            if challenge.scheme == scheme:
                return challenge
    return None


@attrs.frozen
class Token:
    """A bearer token and when it stops being valid (epoch seconds)."""

    value: str = attrs.field(repr=False)
    expires_at: float
    refresh_token: str | None = attrs.field(default=None, repr=False)

    def expired(self, now: float, margin: float = 10.0) -> bool:
        """Whether the token expires within ``margin`` seconds of ``now``."""
        return now + margin >= self.expires_at


def _issued_at(value: object) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def parse_token_response(body: bytes, now: float) -> Token:
    """Parse a token endpoint's JSON answer.

    ``issued_at`` counts only when it is not in the future and the token would not already be
    expired by it; otherwise clock skew between us and the token server would make fresh
    tokens look stale, so expiry counts from ``now``.

    Args:
        body: The response body.
        now: When the response was received, in epoch seconds.

    Raises:
        CredentialsError: If the body is not JSON or carries no token.
    """
    try:
        doc = load_json(body)
    except (ValueError, UnicodeDecodeError):
        raise CredentialsError("token endpoint did not return JSON") from None
    if not isinstance(doc, dict):
        raise CredentialsError("token endpoint returned JSON that is not an object")
    value = next(
        (doc[k] for k in ("access_token", "token") if isinstance(doc.get(k), str) and doc[k]),
        None,
    )
    if value is None:
        raise CredentialsError("token endpoint response has no 'token' or 'access_token'")
    expires_in = doc.get("expires_in")
    if not isinstance(expires_in, int | float) or isinstance(expires_in, bool):
        expires_in = _MIN_EXPIRES_IN
    lifetime = max(float(expires_in), _MIN_EXPIRES_IN)
    issued = _issued_at(doc.get("issued_at"))
    if issued is None or issued > now or issued + lifetime <= now:
        issued = now
    refresh = doc.get("refresh_token")
    return Token(
        value, issued + lifetime, refresh if isinstance(refresh, str) and refresh else None
    )


def token_query(challenge: Challenge, scopes: Iterable[str]) -> list[tuple[str, str]]:
    """Query parameters for a GET token request: ``service`` once, then one ``scope`` each.

    Duplicate scopes are dropped; order is kept (some registries only read the first scope).
    """
    query: list[tuple[str, str]] = []
    if challenge.service is not None:
        query.append(("service", challenge.service))
    query.extend(("scope", scope) for scope in dict.fromkeys(scopes))
    return query


def validate_realm(realm: str, registry_host: str) -> None:
    """Refuse token realms that would leak credentials.

    A realm must be an ``https`` URL; plain ``http`` is allowed only when the registry itself
    is on loopback. A loopback realm is refused for a non-loopback registry (a remote
    registry must not steer our credentials at local services; ggcr ``validateRealmURL``).

    Raises:
        CredentialsError: If the realm is not acceptable.
    """
    try:
        parts = urlsplit(realm)
        host = parts.hostname
    except ValueError:
        host = None
        parts = None
    if parts is None or not host:
        raise CredentialsError(f"registry {registry_host} sent an invalid token realm {realm!r}")
    local_registry = is_loopback_host(registry_host)
    if parts.scheme == "http" and not local_registry:
        raise CredentialsError(
            f"registry {registry_host} sent a token realm that is not https: {realm}",
            hint="token realms must use https unless the registry is on localhost",
        )
    if parts.scheme not in ("https", "http"):
        raise CredentialsError(f"registry {registry_host} sent a token realm that is not https")
    if is_loopback_host(host) and not local_registry:
        raise CredentialsError(
            f"registry {registry_host} sent a token realm on a loopback address: {realm}"
        )
