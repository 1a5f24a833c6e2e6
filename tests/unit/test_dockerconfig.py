"""config.json / auth.json / .dockercfg parsing and docker's lookup rules (pure)."""

from __future__ import annotations

import base64
import json

import pytest

from imgmirror.auth.credentials import Credential
from imgmirror.auth.dockerconfig import (
    DOCKER_HUB_KEY,
    DockerConfig,
    Lookup,
    decode_auth,
    key_host,
    parse_docker_config,
    registry_key,
)
from imgmirror.errors import CredentialsError


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("key", "host"),
    [
        ("reg.example.com", "reg.example.com"),
        ("https://reg.example.com/v1/", "reg.example.com"),
        ("http://reg.example.com:5000/some/path", "reg.example.com:5000"),
        ("REG.Example.com", "reg.example.com"),
        (DOCKER_HUB_KEY, "docker.io"),
        ("docker.io", "docker.io"),
        ("index.docker.io", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
        ("https://registry-1.docker.io/v2/", "docker.io"),
    ],
)
def test_key_host(key: str, host: str) -> None:
    assert key_host(key) == host


def test_registry_key() -> None:
    assert registry_key("docker.io") == DOCKER_HUB_KEY
    assert registry_key("index.docker.io") == DOCKER_HUB_KEY
    assert registry_key("ghcr.io") == "ghcr.io"


@pytest.mark.parametrize(
    ("auths", "registry", "user"),
    [
        ({DOCKER_HUB_KEY: {"auth": b64("hub:pw")}}, "docker.io", "hub"),
        ({"docker.io": {"auth": b64("hub:pw")}}, "docker.io", "hub"),
        ({"https://index.docker.io/v1/": {"auth": b64("hub:pw")}}, "index.docker.io", "hub"),
        ({"https://reg.corp/v1/": {"auth": b64("u:pw")}}, "reg.corp", "u"),
        ({"http://reg.corp:5000": {"username": "u", "password": "pw"}}, "reg.corp:5000", "u"),
        ({"reg.corp": {"auth": b64("u:pw")}, "https://reg.corp": {"auth": b64("v:pw")}},
         "reg.corp", "u"),
        ({"reg.corp:5000": {"auth": b64("u:pw")}}, "reg.corp", None),
        ({"reg.corp": {"auth": b64("u:pw")}}, "other.corp", None),
        ({"reg.corp": {}}, "reg.corp", None),
    ],
)  # fmt: skip
def test_lookup_by_docker_key_rules(auths: dict[str, object], registry: str, user: str | None):
    config = parse_docker_config(json.dumps({"auths": auths}), "config.json")
    found = config.lookup(registry)
    assert found.helper is None
    assert (found.credential.username if found.credential else None) == user


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"auth": b64("alice:s3:cret")}, Credential("alice", "s3:cret")),
        ({"auth": b64("alice:pw\x00\x00")}, Credential("alice", "pw")),
        ({"auth": b64("alice:pw").rstrip("=")}, Credential("alice", "pw")),
        ({"username": "bob", "password": "pw"}, Credential("bob", "pw")),
        # auth wins over username/password, as the kubelet does
        ({"auth": b64("alice:pw"), "username": "bob", "password": "x"}, Credential("alice", "pw")),
        ({"identitytoken": "refresh"}, Credential("", "", identity_token="refresh")),
        (
            {"auth": b64("u:p"), "identitytoken": "refresh"},
            Credential("u", "p", identity_token="refresh"),
        ),
        ({"registrytoken": "bearer"}, Credential("", "", registry_token="bearer")),
        ({"email": "x@example.com"}, None),
        ({}, None),
    ],
)
def test_entry_kinds(entry: dict[str, str], expected: Credential | None) -> None:
    config = parse_docker_config(json.dumps({"auths": {"reg": entry}}), "config.json")
    assert config.auths["reg"] == expected


def test_legacy_dockercfg_map() -> None:
    text = json.dumps({DOCKER_HUB_KEY: {"auth": b64("hub:pw"), "email": "e@x"}})
    config = parse_docker_config(text, ".dockercfg")
    assert config.lookup("docker.io").credential == Credential("hub", "pw")


def test_helpers_are_exclusive() -> None:
    doc = {
        "auths": {"reg.corp": {"auth": b64("u:pw")}, "ecr.aws": {"auth": b64("u:pw")}},
        "credHelpers": {"ecr.aws": "ecr-login", "https://gcr.io": "gcloud"},
        "credsStore": "desktop",
    }
    config = parse_docker_config(json.dumps(doc), "config.json")
    assert config.lookup("ecr.aws") == Lookup(helper="ecr-login", server_url="ecr.aws")
    assert config.lookup("gcr.io") == Lookup(helper="gcloud", server_url="gcr.io")
    # a store applies to everything else; inline secrets are not a fallback
    assert config.lookup("reg.corp") == Lookup(helper="desktop", server_url="reg.corp")
    assert config.lookup("docker.io") == Lookup(helper="desktop", server_url=DOCKER_HUB_KEY)


def test_store_only_config_is_not_legacy() -> None:
    config = parse_docker_config('{"credsStore": "desktop"}', "config.json")
    assert config.creds_store == "desktop"
    assert dict(config.auths) == {}


def test_empty_file_is_empty_config() -> None:
    assert parse_docker_config("  ", "config.json") == DockerConfig(source="config.json")


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "[]",
        '{"auths": []}',
        '{"auths": {"reg": "x"}}',
        '{"auths": {"reg": {"auth": "%%%"}}}',
        '{"auths": {"reg": {"auth": "' + b64("no-colon-secretvalue") + '"}}}',
        '{"auths": {"reg": {"auth": "' + b64(":secretvalue") + '"}}}',
        '{"credHelpers": {"reg": 3}}',
    ],
)
def test_malformed_files_name_the_file_not_the_secret(text: str) -> None:
    with pytest.raises(CredentialsError) as info:
        parse_docker_config(text, "/home/u/.docker/config.json")
    message = str(info.value)
    assert "/home/u/.docker/config.json" in message
    assert "secretvalue" not in message
    assert b64("no-colon-secretvalue") not in message


def test_decode_auth_never_echoes() -> None:
    with pytest.raises(CredentialsError) as info:
        decode_auth(b64("hunter2"), "entry 'reg'")
    assert "hunter2" not in str(info.value)
    assert b64("hunter2") not in str(info.value)


def test_credential_repr_hides_secrets() -> None:
    cred = Credential("u", "hunter2", identity_token="idtok", registry_token="regtok")
    for text in (repr(cred), str(cred), repr(DockerConfig(auths={"r": cred}))):
        assert "hunter2" not in text
        assert "idtok" not in text
        assert "regtok" not in text
