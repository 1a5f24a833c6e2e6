"""Tests for imgmirror.auth.challenge: WWW-Authenticate parsing, tokens and realm validation."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from imgmirror.auth.challenge import (
    Challenge,
    Token,
    parse_token_response,
    parse_www_authenticate,
    pick_challenge,
    token_query,
    validate_realm,
)
from imgmirror.errors import CredentialsError

HUB = (
    'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
    'scope="repository:samalba/my-app:pull,push"'
)


def pairs(values: list[str]) -> list[tuple[str, dict[str, str]]]:
    return [(c.scheme, dict(c.params)) for c in parse_www_authenticate(values)]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            [HUB],
            [
                (
                    "bearer",
                    {
                        "realm": "https://auth.docker.io/token",
                        "service": "registry.docker.io",
                        "scope": "repository:samalba/my-app:pull,push",
                    },
                )
            ],
        ),
        (
            ['Bearer realm="a,b",service="x", Basic realm="y"'],
            [("bearer", {"realm": "a,b", "service": "x"}), ("basic", {"realm": "y"})],
        ),
        (
            [
                'Basic realm="https://1.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com"'
            ],
            [
                (
                    "basic",
                    {
                        "realm": "https://1.dkr.ecr.us-east-1.amazonaws.com/",
                        "service": "ecr.amazonaws.com",
                    },
                )
            ],
        ),
        (
            ['Basic realm="r1"', 'BEARER Realm=https://t/token, SERVICE = reg , Scope="a b"'],
            [
                ("basic", {"realm": "r1"}),
                ("bearer", {"realm": "https://t/token", "service": "reg", "scope": "a b"}),
            ],
        ),
        (
            ['Bearer realm="a \\"quoted\\" \\\\ value"'],
            [("bearer", {"realm": 'a "quoted" \\ value'})],
        ),
        (['Bearer realm="unterminated, still'], [("bearer", {"realm": "unterminated, still"})]),
        (["Basic"], [("basic", {})]),
        (["Negotiate, Basic realm=x"], [("negotiate", {}), ("basic", {"realm": "x"})]),
        (['realm="orphan", Basic realm="x"'], [("basic", {"realm": "x"})]),
        (["", "   ", ",,,"], []),
        (['Bearer realm="x", @@@ junk, service="s"'], [("bearer", {"realm": "x", "service": "s"})]),
        (
            ['Bearer error="insufficient_scope",scope="repository:a:pull"'],
            [("bearer", {"error": "insufficient_scope", "scope": "repository:a:pull"})],
        ),
        (["Bearer realm="], [("bearer", {"realm": ""})]),
    ],
)
def test_parse_www_authenticate(
    values: list[str], expected: list[tuple[str, dict[str, str]]]
) -> None:
    assert pairs(values) == expected


def test_challenge_accessors() -> None:
    challenge = parse_www_authenticate(
        ['Bearer realm="https://t",service="svc",scope="repository:a:pull repository:b:pull,push"']
    )[0]
    assert challenge.realm == "https://t"
    assert challenge.service == "svc"
    assert challenge.scopes == ("repository:a:pull", "repository:b:pull,push")
    assert Challenge("basic").realm is None
    assert Challenge("basic").scopes == ()
    with pytest.raises(TypeError):
        challenge.params["realm"] = "x"  # type: ignore[index]
    assert hash(challenge) == hash(Challenge("bearer", {}))


@pytest.mark.parametrize(
    ("schemes", "picked"),
    [
        (["basic", "bearer"], "bearer"),
        (["negotiate", "basic"], "basic"),
        (["bearer", "basic"], "bearer"),
        (["negotiate"], None),
        ([], None),
    ],
)
def test_pick_challenge(schemes: list[str], picked: str | None) -> None:
    chosen = pick_challenge([Challenge(s, {"n": str(i)}) for i, s in enumerate(schemes)])
    assert (chosen.scheme if chosen else None) == picked


def test_pick_first_of_scheme() -> None:
    first, second = Challenge("bearer", {"realm": "1"}), Challenge("bearer", {"realm": "2"})
    assert pick_challenge([first, second]) is first


NOW = 1_700_000_000.0


def body(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(
    ("data", "value", "expires_at", "refresh"),
    [
        (body(token="t"), "t", NOW + 60, None),
        (body(access_token="a"), "a", NOW + 60, None),
        (body(token="t", access_token="a"), "a", NOW + 60, None),
        (body(token="t", access_token=""), "t", NOW + 60, None),
        (body(token="t", expires_in=300), "t", NOW + 300, None),
        (body(token="t", expires_in=10), "t", NOW + 60, None),
        (body(token="t", expires_in="300"), "t", NOW + 60, None),
        (body(token="t", expires_in=True), "t", NOW + 60, None),
        (body(token="t", expires_in=120.5), "t", NOW + 120.5, None),
        (body(token="t", expires_in=300, issued_at=iso(NOW - 100)), "t", NOW + 200, None),
        (
            body(token="t", expires_in=300, issued_at="2023-11-14T22:11:40.123456789Z"),
            "t",
            NOW + 300.123456,
            None,
        ),
        (body(token="t", expires_in=300, issued_at=iso(NOW + 1000)), "t", NOW + 300, None),
        (body(token="t", expires_in=300, issued_at=iso(NOW - 1000)), "t", NOW + 300, None),
        (body(token="t", issued_at="yesterday"), "t", NOW + 60, None),
        (body(token="t", issued_at=5), "t", NOW + 60, None),
        (body(token="t", refresh_token="r"), "t", NOW + 60, "r"),
        (body(token="t", refresh_token=""), "t", NOW + 60, None),
    ],
)
def test_parse_token_response(
    data: bytes, value: str, expires_at: float, refresh: str | None
) -> None:
    token = parse_token_response(data, NOW)
    assert token.value == value
    assert token.expires_at == pytest.approx(expires_at)
    assert token.refresh_token == refresh


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "did not return JSON"),
        (b"<html>", "did not return JSON"),
        (b"\xff", "did not return JSON"),
        (b"[]", "not an object"),
        (body(), "no 'token' or 'access_token'"),
        (body(token=""), "no 'token' or 'access_token'"),
        (body(token=5), "no 'token' or 'access_token'"),
    ],
)
def test_parse_token_response_rejects(data: bytes, problem: str) -> None:
    with pytest.raises(CredentialsError, match=problem):
        parse_token_response(data, NOW)


def test_token_expiry_and_repr() -> None:
    token = Token("secret-token", NOW + 60, "secret-refresh")
    assert not token.expired(NOW)
    assert not token.expired(NOW + 49)
    assert token.expired(NOW + 50)
    assert token.expired(NOW + 59, margin=0) is False
    assert token.expired(NOW + 61, margin=0)
    assert "secret" not in repr(token)


@pytest.mark.parametrize(
    ("challenge", "scopes", "query"),
    [
        (
            Challenge("bearer", {"realm": "r", "service": "registry.docker.io"}),
            ["repository:a:pull,push", "repository:b:pull"],
            [
                ("service", "registry.docker.io"),
                ("scope", "repository:a:pull,push"),
                ("scope", "repository:b:pull"),
            ],
        ),
        (Challenge("bearer", {"realm": "r"}), ["s"], [("scope", "s")]),
        (Challenge("bearer", {"realm": "r", "service": "x"}), [], [("service", "x")]),
        (
            Challenge("bearer", {"service": "x"}),
            ("b", "a", "b"),
            [("service", "x"), ("scope", "b"), ("scope", "a")],
        ),
    ],
)
def test_token_query(challenge: Challenge, scopes: list[str], query: list[tuple[str, str]]) -> None:
    assert token_query(challenge, scopes) == query


@pytest.mark.parametrize(
    ("realm", "registry"),
    [
        ("https://auth.docker.io/token", "registry-1.docker.io"),
        ("https://auth.example/token?x=1", "reg.example:5000"),
        ("http://127.0.0.1:5001/token", "localhost:5000"),
        ("http://localhost/token", "[::1]:5000"),
        ("https://localhost:5001/token", "127.0.0.1:5000"),
        ("http://auth.example/token", "127.0.0.1"),
    ],
)
def test_validate_realm_accepts(realm: str, registry: str) -> None:
    validate_realm(realm, registry)


@pytest.mark.parametrize(
    ("realm", "registry", "problem"),
    [
        ("http://auth.example/token", "ghcr.io", "not https"),
        ("ftp://auth.example/token", "ghcr.io", "not https"),
        ("ftp://auth.example/token", "localhost:5000", "not https"),
        ("/token", "ghcr.io", "invalid token realm"),
        ("", "ghcr.io", "invalid token realm"),
        ("https://[::1/token", "ghcr.io", "invalid token realm"),
        ("https://127.0.0.1/token", "ghcr.io", "loopback"),
        ("https://localhost:8080/token", "evil.example", "loopback"),
    ],
)
def test_validate_realm_rejects(realm: str, registry: str, problem: str) -> None:
    with pytest.raises(CredentialsError, match=problem) as info:
        validate_realm(realm, registry)
    assert registry in str(info.value)
