"""The Authenticator: token cache per scope set, renewal before expiry, basic auth."""

from __future__ import annotations

import base64
import json

import pytest

from imgmirror.auth.challenge import parse_www_authenticate
from imgmirror.auth.credentials import Credential
from imgmirror.errors import AuthenticationError, CredentialsError
from imgmirror.transport.auth import Authenticator

Call = tuple[str, str, list[tuple[str, str]], dict[str, str] | None, dict[str, str]]
BEARER = 'Bearer realm="https://auth.test/token",service="registry.test"'


class FakeTokenServer:
    def __init__(self, status: int = 200, expires_in: int = 300) -> None:
        self.calls: list[Call] = []
        self.status = status
        self.expires_in = expires_in

    def __call__(self, method, url, params, form, headers):
        self.calls.append((method, url, list(params), form, headers))
        body = json.dumps({"token": f"t{len(self.calls)}", "expires_in": self.expires_in})
        return self.status, body.encode()


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def authenticator(fetch, credential=None, clock=None) -> Authenticator:
    auth = Authenticator(
        "registry.test", Credential.coerce(credential), fetch, clock=clock or Clock()
    )
    assert auth.set_challenges(parse_www_authenticate([BEARER]))
    return auth


def test_tokens_are_cached_per_scope_set():
    server = FakeTokenServer()
    auth = authenticator(server)

    first = auth.authorization(["repository:a:pull"])
    second = auth.authorization(["repository:a:pull"])
    other = auth.authorization(["repository:b:pull,push"])

    assert first == second == "Bearer t1"
    assert other == "Bearer t2"
    assert [dict(c[2]) for c in server.calls][1]["scope"] == "repository:b:pull,push"


def test_token_is_renewed_before_it_expires():
    server = FakeTokenServer(expires_in=60)
    clock = Clock()
    auth = authenticator(server, clock=clock)

    assert auth.authorization(["repository:a:pull"]) == "Bearer t1"
    clock.now += 45
    assert auth.authorization(["repository:a:pull"]) == "Bearer t1"
    clock.now += 10  # 55 s: within the renewal margin
    assert auth.authorization(["repository:a:pull"]) == "Bearer t2"


def test_credentials_go_to_the_token_endpoint_as_basic():
    server = FakeTokenServer()
    auth = authenticator(server, credential="pusher:pushpass")

    auth.authorization(["repository:a:pull,push"])

    method, url, params, _, headers = server.calls[0]
    assert (method, url) == ("GET", "https://auth.test/token")
    assert ("service", "registry.test") in params
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"pusher:pushpass").decode()


def test_anonymous_token_request_sends_no_authorization():
    server = FakeTokenServer()
    authenticator(server).authorization(["repository:a:pull"])
    assert server.calls[0][4] == {}


def test_rejected_credentials_name_the_user_not_the_password():
    auth = authenticator(FakeTokenServer(status=401), credential="pusher:hunter2")
    with pytest.raises(AuthenticationError) as caught:
        auth.authorization(["repository:a:pull"])
    assert "pusher" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_insufficient_scope_challenge_adds_the_scope():
    server = FakeTokenServer()
    auth = authenticator(server)
    auth.set_challenges(
        parse_www_authenticate([BEARER + ',scope="repository:x:pull",error="insufficient_scope"'])
    )

    auth.authorization(["repository:a:pull"])

    scopes = [v for k, v in server.calls[0][2] if k == "scope"]
    assert scopes == ["repository:a:pull", "repository:x:pull"]


def test_identity_token_uses_the_oauth2_refresh_flow():
    server = FakeTokenServer()
    credential = Credential("<token>", "", identity_token="refresh-me")
    auth = authenticator(server, credential=credential)

    auth.authorization(["repository:a:pull"])

    method, _, _, form, _ = server.calls[0]
    assert method == "POST"
    assert form is not None
    assert form["grant_type"] == "refresh_token"
    assert form["refresh_token"] == "refresh-me"


def test_basic_challenge_sends_credentials_directly():
    auth = Authenticator("registry.test", Credential.parse("alice:secret"), FakeTokenServer())
    auth.set_challenges(parse_www_authenticate(['Basic realm="r"']))
    assert (
        auth.authorization(["repository:a:pull"])
        == "Basic " + base64.b64encode(b"alice:secret").decode()
    )


def test_plain_http_realm_refused_for_remote_registry():
    auth = Authenticator("registry.test", None, FakeTokenServer())
    with pytest.raises(CredentialsError):
        auth.set_challenges(
            parse_www_authenticate(['Bearer realm="http://auth.test/token",service="s"'])
        )
