"""A small Docker-registry token server (distribution ``auth/token.md`` + ``auth/oauth.md``).

Runs ``http.server`` in a background thread on a loopback port, plain HTTP. It issues JWTs
that distribution 2.8's ``token`` access controller accepts:

* header ``{"typ": "JWT", "alg": "RS256"|"ES256", "x5c": [base64 DER of the signing cert]}``;
  the registry verifies the ``x5c`` leaf against its ``rootcertbundle`` (which holds the
  self-signed token certificate), then the signature with that leaf's key;
* claims ``iss`` (must equal the registry's ``auth.token.issuer``), ``sub``, ``aud`` (must equal
  ``auth.token.service``), ``exp``/``nbf``/``iat`` (the registry allows 60 s of leeway on both
  ends, so a token stays usable up to a minute after ``exp``), ``jti`` and ``access``.

Endpoints (any path; the realm is ``<url>/token``):

* ``GET ?service=S&scope=A&scope=B[&offline_token=true&client_id=C]``, optional Basic auth.
* ``POST`` form ``grant_type=password`` (``username``, ``password``) or ``grant_type=refresh_token``
  (``refresh_token``) with ``service``, ``client_id``, space-joined ``scope`` and optionally
  ``access_type=offline``.

Policy: anonymous callers get ``pull`` on any repository when ``anonymous_pull`` is true (else
nothing); known users get every action they ask for (or only ``user_actions[user]`` if given);
wrong credentials or unknown refresh tokens get 401. Every request is recorded in
:attr:`TokenServer.requests`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import secrets
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from .certs import SigningKey

__all__ = [
    "DEFAULT_ISSUER",
    "DEFAULT_SERVICE",
    "Access",
    "TokenRequest",
    "TokenServer",
    "decode_jwt_claims",
    "parse_scope",
]

DEFAULT_SERVICE = "imgmirror-test-registry"
DEFAULT_ISSUER = "imgmirror-test-token-issuer"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def decode_jwt_claims(token: str) -> dict[str, Any]:
    """Decode (without verifying) the claims of a compact JWS."""
    claims: dict[str, Any] = json.loads(_b64url_decode(token.split(".")[1]))
    return claims


def decode_jwt_header(token: str) -> dict[str, Any]:
    header: dict[str, Any] = json.loads(_b64url_decode(token.split(".", maxsplit=1)[0]))
    return header


def sign_jwt(header: Mapping[str, Any], claims: Mapping[str, Any], key: SigningKey) -> str:
    """Compact-serialise and sign a JWT with ``key`` (RS256 or ES256)."""
    signing_input = (
        _b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64url(json.dumps(claims, separators=(",", ":")).encode())
    ).encode("ascii")
    if isinstance(key.key, rsa.RSAPrivateKey):
        signature = key.key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    else:
        der = key.key.sign(signing_input, ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return signing_input.decode("ascii") + "." + _b64url(signature)


@dataclass(frozen=True)
class Access:
    """One resource scope: ``type:name:action,action``."""

    type: str
    name: str
    actions: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"

    def claim(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}


def parse_scope(scope: str) -> list[Access]:
    """Parse a (possibly space-joined) scope string. Malformed parts are ignored."""
    result: list[Access] = []
    for part in scope.split():
        type_, sep, rest = part.partition(":")
        name, sep2, actions = rest.rpartition(":")
        if not sep or not sep2 or not name:
            continue
        result.append(Access(type_, name, tuple(a for a in actions.split(",") if a)))
    return result


@dataclass
class TokenRequest:
    """What the token server saw and answered."""

    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, list[str]]
    headers: dict[str, str]
    username: str | None
    """User authenticated by Basic auth or the password grant (None = anonymous)."""
    grant_type: str | None
    """``None`` for GET, else the POST ``grant_type``."""
    requested: list[Access]
    granted: list[Access] = field(default_factory=list)
    status: int = 0
    token: str | None = None
    refresh_token: str | None = None


class TokenServer:
    """Threaded loopback token server. Use :meth:`start` / :meth:`stop` (or ``with``)."""

    def __init__(
        self,
        signing_key: SigningKey,
        *,
        users: Mapping[str, str] | None = None,
        service: str = DEFAULT_SERVICE,
        issuer: str = DEFAULT_ISSUER,
        anonymous_pull: bool = True,
        expires_in: int = 300,
        user_actions: Mapping[str, Iterable[str]] | None = None,
        oauth_enabled: bool = True,
        require_client_id: bool = True,
        check_service: bool = True,
        host: str = "127.0.0.1",
    ) -> None:
        self.signing_key = signing_key
        self.users: dict[str, str] = dict(users or {})
        self.service = service
        self.issuer = issuer
        self.anonymous_pull = anonymous_pull
        self.expires_in = expires_in
        """Value returned as ``expires_in`` and used for the ``exp`` claim."""
        self.exp_offset: int | None = None
        """If set, ``exp = now + exp_offset`` regardless of ``expires_in`` (e.g. -120 makes the
        registry reject the token immediately: it allows only 60 s of leeway)."""
        self.omit_expires_in = False
        self.omit_issued_at = False
        self.token_field_only = False
        """If true the response has only ``token`` (no ``access_token``)."""
        self.user_actions = {u: set(a) for u, a in (user_actions or {}).items()}
        self.oauth_enabled = oauth_enabled
        """If false, POST answers 404 (clients must fall back to GET)."""
        self.require_client_id = require_client_id
        self.check_service = check_service
        self.refresh_tokens: dict[str, str] = {}
        """Issued refresh token -> username."""
        self.requests: list[TokenRequest] = []
        self._lock = threading.Lock()
        self._host = host
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> TokenServer:
        if self._server is not None:
            return self
        server_class = _IPv6Server if ":" in self._host else ThreadingHTTPServer
        server = server_class((self._host, 0), _Handler)
        server.daemon_threads = True
        server.token_server = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> TokenServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("token server not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def realm(self) -> str:
        return f"{self.url}/token"

    # -- assertions helpers ----------------------------------------------------------------

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def issued(self) -> list[TokenRequest]:
        """Requests that were answered with a token."""
        with self._lock:
            return [r for r in self.requests if r.status == 200]

    # -- policy ------------------------------------------------------------------------------

    def check_password(self, username: str, password: str) -> bool:
        expected = self.users.get(username)
        return expected is not None and secrets.compare_digest(expected, password)

    def grant(self, username: str | None, requested: Iterable[Access]) -> list[Access]:
        granted: list[Access] = []
        for access in requested:
            if username is None:
                allowed = {"pull"} if self.anonymous_pull and access.type == "repository" else set()
            elif username in self.user_actions:
                allowed = self.user_actions[username]
            else:
                allowed = set(access.actions)
            actions = tuple(a for a in access.actions if a in allowed or "*" in allowed)
            if actions:
                granted.append(Access(access.type, access.name, actions))
        return granted

    def issue(self, username: str | None, granted: list[Access]) -> tuple[str, int, str]:
        """Return ``(jwt, expires_in, issued_at)``."""
        now = int(time.time())
        exp = now + (self.exp_offset if self.exp_offset is not None else self.expires_in)
        claims = {
            "iss": self.issuer,
            "sub": username or "",
            "aud": self.service,
            "exp": exp,
            "nbf": now - 1,
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": [a.claim() for a in granted],
        }
        header = {
            "typ": "JWT",
            "alg": self.signing_key.algorithm,
            "x5c": [base64.b64encode(self.signing_key.cert_der).decode("ascii")],
        }
        issued_at = dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return sign_jwt(header, claims, self.signing_key), self.expires_in, issued_at

    def _record(self, request: TokenRequest) -> None:
        with self._lock:
            self.requests.append(request)


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server_version = "imgmirror-test-token/1"
    protocol_version = "HTTP/1.1"

    @property
    def ts(self) -> TokenServer:
        ts: TokenServer = self.server.token_server  # type: ignore[attr-defined]
        return ts

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output quiet; requests are recorded instead

    def _send_json(
        self, status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, req: TokenRequest, status: int, code: str, message: str) -> None:
        req.status = status
        self.ts._record(req)
        headers = {"WWW-Authenticate": 'Basic realm="imgmirror-test"'} if status == 401 else None
        self._send_json(
            status,
            {
                "errors": [{"code": code.upper(), "message": message}],
                "error": code,
                "error_description": message,
            },
            headers,
        )

    def _basic_user(self) -> tuple[str, str] | bool | None:
        """``None`` = no Authorization, ``False`` = malformed, else (user, password)."""
        header = self.headers.get("Authorization")
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, sep, password = decoded.partition(":")
        if not sep:
            return False
        return user, password

    def _respond_token(self, req: TokenRequest, username: str | None, offline: bool) -> None:
        ts = self.ts
        req.granted = ts.grant(username, req.requested)
        token, expires_in, issued_at = ts.issue(username, req.granted)
        body: dict[str, Any] = {"token": token}
        if not ts.token_field_only:
            body["access_token"] = token
        if not ts.omit_expires_in:
            body["expires_in"] = expires_in
        if not ts.omit_issued_at:
            body["issued_at"] = issued_at
        if offline and username is not None:
            refresh = secrets.token_urlsafe(24)
            with ts._lock:
                ts.refresh_tokens[refresh] = username
            body["refresh_token"] = refresh
            req.refresh_token = refresh
        req.status = 200
        req.token = token
        ts._record(req)
        self._send_json(200, body)

    def _check_service(self, req: TokenRequest, service: str | None) -> bool:
        if self.ts.check_service and service is not None and service != self.ts.service:
            self._error(req, 400, "invalid_request", f"unknown service {service!r}")
            return False
        return True

    def do_GET(self) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
        requested = [a for s in query.get("scope", []) for a in parse_scope(s)]
        req = TokenRequest(
            method="GET",
            path=parsed.path,
            query=query,
            form={},
            headers=dict(self.headers.items()),
            username=None,
            grant_type=None,
            requested=requested,
        )
        if not self._check_service(req, query.get("service", [None])[0]):
            return
        creds = self._basic_user()
        if creds is False:
            self._error(req, 401, "unauthorized", "malformed Authorization header")
            return
        username: str | None = None
        if isinstance(creds, tuple):
            if not self.ts.check_password(*creds):
                self._error(req, 401, "unauthorized", "invalid username or password")
                return
            username = creds[0]
        req.username = username
        offline = query.get("offline_token", ["false"])[0].lower() == "true"
        self._respond_token(req, username, offline)

    def do_POST(self) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        form = urllib.parse.parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
        grant_type = form.get("grant_type", [None])[0]
        req = TokenRequest(
            method="POST",
            path=parsed.path,
            query=urllib.parse.parse_qs(parsed.query, keep_blank_values=True),
            form=form,
            headers=dict(self.headers.items()),
            username=None,
            grant_type=grant_type,
            requested=[a for s in form.get("scope", []) for a in parse_scope(s)],
        )
        ts = self.ts
        if not ts.oauth_enabled:
            self._error(req, 404, "not_found", "OAuth2 token endpoint disabled")
            return
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            self._error(req, 400, "invalid_request", f"unexpected Content-Type {content_type!r}")
            return
        if not self._check_service(req, form.get("service", [None])[0]):
            return
        if ts.require_client_id and not form.get("client_id", [""])[0]:
            self._error(req, 400, "invalid_request", "client_id is required")
            return
        username: str | None
        if grant_type == "password":
            user = form.get("username", [""])[0]
            password = form.get("password", [""])[0]
            if not ts.check_password(user, password):
                self._error(req, 401, "unauthorized", "invalid username or password")
                return
            username = user
        elif grant_type == "refresh_token":
            refresh = form.get("refresh_token", [""])[0]
            with ts._lock:
                username = ts.refresh_tokens.get(refresh)
            if username is None:
                self._error(req, 401, "invalid_grant", "unknown refresh token")
                return
        else:
            self._error(req, 400, "unsupported_grant_type", f"grant_type {grant_type!r}")
            return
        req.username = username
        offline = form.get("access_type", [""])[0] == "offline"
        self._respond_token(req, username, offline)
