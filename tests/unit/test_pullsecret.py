"""Kubernetes pull Secrets: parsing as an authfile, creating, checking (pure)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import yaml

from imgmirror.auth.credentials import Credential
from imgmirror.auth.pullsecret import (
    DOCKERCFG,
    DOCKERCONFIGJSON,
    check_secret,
    check_text,
    create_secret,
    parse_authfile,
    render,
)
from imgmirror.errors import CredentialsError


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


REG = "reg.corp:5000"
CONFIG = {"auths": {REG: {"username": "u", "password": "pw", "auth": b64("u:pw")}}}
LEGACY = {REG: {"auth": b64("u:pw"), "email": "e@x"}}


def secret(kind: str, key: str, content: Any, *, string: bool = False) -> dict[str, Any]:
    text = content if isinstance(content, str) else json.dumps(content)
    data = {"stringData": {key: text}} if string else {"data": {key: b64(text)}}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pull"}, "type": kind} | data


GOOD = [
    secret(DOCKERCONFIGJSON, ".dockerconfigjson", CONFIG),
    secret(DOCKERCONFIGJSON, ".dockerconfigjson", CONFIG, string=True),
    secret(DOCKERCFG, ".dockercfg", LEGACY),
    secret(DOCKERCFG, ".dockercfg", LEGACY, string=True),
]


@pytest.mark.parametrize("doc", GOOD)
@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_secret_as_authfile(doc: dict[str, Any], fmt: str) -> None:
    text = json.dumps(doc) if fmt == "json" else yaml.safe_dump(doc)
    config = parse_authfile(text, "pull.yaml")
    assert config.lookup(REG).credential == Credential("u", "pw")
    assert check_secret(doc, registry=REG) == []


def test_kubectl_get_list_output() -> None:
    text = yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [GOOD[0]]})
    assert parse_authfile(text, "x").lookup(REG).credential == Credential("u", "pw")
    assert check_text(text, "x", REG) == []


def test_plain_config_json_and_yaml_config() -> None:
    assert parse_authfile(json.dumps(CONFIG), "c").lookup(REG).credential == Credential("u", "pw")
    assert parse_authfile(json.dumps(LEGACY), "c").lookup(REG).credential == Credential("u", "pw")


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        # the motivating mistake, both ways round
        (
            secret(DOCKERCONFIGJSON, ".dockerconfigjson", LEGACY),
            'holds a legacy .dockercfg map (no "auths"): the kubelet ignores it',
        ),
        (secret(DOCKERCFG, ".dockercfg", CONFIG), 'holds a config.json (with "auths")'),
        (secret(DOCKERCONFIGJSON, ".dockercfg", CONFIG), "data key is .dockercfg"),
        (secret(DOCKERCFG, ".dockerconfigjson", LEGACY), "data key is .dockerconfigjson"),
        (secret(DOCKERCONFIGJSON, ".other", CONFIG), "no .dockerconfigjson in data"),
        (secret("Opaque", ".dockerconfigjson", CONFIG), "type Opaque"),
        (
            secret(DOCKERCONFIGJSON, ".dockerconfigjson", CONFIG)
            | {"data": {".dockerconfigjson": "not base64!!"}},
            "is not base64",
        ),
        (secret(DOCKERCONFIGJSON, ".dockerconfigjson", "{nope"), "is not JSON"),
        (
            secret(
                DOCKERCONFIGJSON,
                ".dockerconfigjson",
                {"auths": {REG: {"username": "bob", "password": "pw", "auth": b64("u:pw")}}},
            ),
            "auth is for user 'u' but username is 'bob'",
        ),
        (
            secret(
                DOCKERCONFIGJSON,
                ".dockerconfigjson",
                {"auths": {REG: {"username": "u", "password": "other", "auth": b64("u:pw")}}},
            ),
            "the password in auth differs from password",
        ),
        (
            secret(DOCKERCONFIGJSON, ".dockerconfigjson", {"auths": {REG: {"auth": "@@"}}}),
            "'auth' is not base64",
        ),
        (
            secret(DOCKERCONFIGJSON, ".dockerconfigjson", {"auths": {REG: {}}}),
            "has no auth and no username/password",
        ),
    ],
)
def test_check_reports_problem_with_fix(doc: dict[str, Any], expected: str) -> None:
    problems = check_secret(doc, registry=REG)
    assert problems, "expected a problem"
    assert any(expected in p.message for p in problems), [str(p) for p in problems]
    for problem in problems:
        assert problem.fix
        assert "pw" not in str(problem).replace("pwd", "")
        assert b64("u:pw") not in str(problem)


def test_mistake_message_names_the_fix() -> None:
    [problem] = check_secret(secret(DOCKERCONFIGJSON, ".dockerconfigjson", LEGACY))
    assert str(problem) == (
        "type is kubernetes.io/dockerconfigjson but .dockerconfigjson holds a legacy .dockercfg "
        'map (no "auths"): the kubelet ignores it: recreate it with imgmirror secret create or '
        "kubectl create secret docker-registry"
    )


def test_check_registry_matching() -> None:
    doc = secret(DOCKERCONFIGJSON, ".dockerconfigjson", CONFIG)
    assert check_secret(doc, registry="reg.corp:5000") == []
    [problem] = check_secret(doc, registry="other.corp")
    assert "no entry matches registry other.corp" in problem.message
    assert "add one for other.corp: create the Secret with imgmirror secret create" in problem.fix
    assert "--" not in problem.fix  # the library names no CLI options
    hub = secret(
        DOCKERCONFIGJSON, ".dockerconfigjson", {"auths": {"docker.io": {"auth": b64("a:b")}}}
    )
    assert check_secret(hub, registry="index.docker.io") == []


def test_check_text_not_a_secret() -> None:
    assert "holds no Kubernetes Secret" in str(check_text("kind: ConfigMap\n", "cm.yaml")[0])
    assert "neither JSON nor YAML" in str(check_text("a: [b\n", "x.yaml")[0])


@pytest.mark.parametrize(
    "doc",
    [
        secret(DOCKERCONFIGJSON, ".dockerconfigjson", LEGACY),
        secret(DOCKERCFG, ".dockercfg", CONFIG),
        secret("Opaque", "x", CONFIG),
    ],
)
def test_authfile_refuses_what_kubelet_refuses(doc: dict[str, Any]) -> None:
    with pytest.raises(CredentialsError) as info:
        parse_authfile(json.dumps(doc), "pull.json")
    assert "pull.json" in str(info.value)
    assert "recreate it" in str(info.value)


def test_create_secret_shape() -> None:
    doc = create_secret("pull", REG, Credential("u", "pw"), namespace="ns")
    assert doc["type"] == DOCKERCONFIGJSON
    assert doc["metadata"] == {"name": "pull", "namespace": "ns", "creationTimestamp": None}
    content = base64.b64decode(doc["data"][".dockerconfigjson"]).decode()
    assert (
        content == '{"auths":{"reg.corp:5000":{"username":"u","password":"pw","auth":"dTpwdw=="}}}'
    )
    assert check_secret(doc, registry=REG) == []
    for output in ("json", "yaml"):
        assert parse_authfile(render(doc, output), "s").lookup(REG).credential == Credential(
            "u", "pw"
        )
