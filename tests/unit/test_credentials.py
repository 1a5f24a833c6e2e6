"""Tests for imgmirror.auth.credentials: the Credential value."""

from __future__ import annotations

import pytest

from imgmirror.auth.credentials import Credential
from imgmirror.errors import CredentialsError


@pytest.mark.parametrize(
    ("text", "username", "password"),
    [
        ("user:pass", "user", "pass"),
        ("user:pa:ss:", "user", "pa:ss:"),
        ("a@b.c:token==", "a@b.c", "token=="),
        ("u: spaced ", "u", " spaced "),
    ],
)
def test_parse(text: str, username: str, password: str) -> None:
    cred = Credential.parse(text)
    assert (cred.username, cred.password) == (username, password)
    assert cred.identity_token is None
    assert cred.registry_token is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("justauser", "no ':'"),
        ("", "no ':'"),
        (":hunter2", "empty user name"),
        ("bob:", "empty password"),
    ],
)
def test_parse_rejects_without_echoing_secret(text: str, problem: str) -> None:
    with pytest.raises(CredentialsError, match=problem) as info:
        Credential.parse(text)
    assert str(info.value).endswith("give the credentials as USER:PASSWORD")
    assert "hunter2" not in str(info.value)


def test_no_colon_message_does_not_echo_value() -> None:
    with pytest.raises(CredentialsError) as info:
        Credential.parse("sekrit-token-value")
    assert "sekrit" not in str(info.value)


def test_repr_and_str_hide_secrets() -> None:
    cred = Credential("alice", "s3cret", identity_token="idtok", registry_token="regtok")
    for text in (repr(cred), str(cred), f"{cred}", repr([cred])):
        assert "alice" in text
        for secret in ("s3cret", "idtok", "regtok"):
            assert secret not in text
    assert repr(cred) == "Credential(username='alice')"


def test_value_semantics() -> None:
    assert Credential("a", "b") == Credential.parse("a:b")
    assert len({Credential("a", "b"), Credential("a", "b"), Credential("a", "c")}) == 2
    with pytest.raises(AttributeError):
        Credential("a", "b").password = "x"  # type: ignore[misc]


def test_coerce() -> None:
    cred = Credential("a", "b")
    assert Credential.coerce(None) is None
    assert Credential.coerce(cred) is cred
    assert Credential.coerce("a:b") == cred
    assert Credential.coerce(("a", "b")) == cred
    with pytest.raises(CredentialsError):
        Credential.coerce("nocolon")


@pytest.mark.parametrize("value", [42, ("a",), ("a", "b", "c"), ("a", 1), ["a", "b"], b"a:b"])
def test_coerce_rejects_other_types(value: object) -> None:
    with pytest.raises(TypeError, match="credentials must be"):
        Credential.coerce(value)  # type: ignore[arg-type]
