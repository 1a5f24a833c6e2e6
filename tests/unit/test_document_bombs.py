"""YAML and JSON from users and registries end fast, with one line, whatever they hold:
200,000 aliases of one entry, nesting 50,000 deep, billion laughs, oversized files. Each
case has a generous pytest timeout, not a timed assertion."""

from __future__ import annotations

import base64

import pytest

from imgmirror.auth.dockerconfig import parse_docker_config
from imgmirror.auth.keychain import load_authfile
from imgmirror.auth.pullsecret import check_text, parse_authfile
from imgmirror.errors import (
    CredentialsError,
    ImgmirrorError,
    InvalidManifest,
    InvalidSyncFile,
    ReferrerError,
    registry_error_from_response,
)
from imgmirror.model.digest import Digest
from imgmirror.model.manifest import parse_manifest
from imgmirror.model.referrers import referrers_from_index
from imgmirror.syncing.file import parse_sync_file
from imgmirror.syncing.items import load_sync_file

pytestmark = pytest.mark.timeout(30)

DEEP = 50_000
ALIASES = (
    "defaults: {to: reg.corp/m}\nimages:\n  - &entry {image: quay.io/a/b:1}\n"
    + "  - *entry\n" * 200_000
)
NESTED_YAML = "images: " + "[" * DEEP + "]" * DEEP + "\n"
NESTED_BLOCK = "".join(f"{'  ' * i}k{i}:\n" for i in range(2000)) + "  " * 2000 + "v\n"
LAUGHS = (
    "defaults: {to: reg.corp/m}\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
    + "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9))
    + "images: *a8\n"
)
NESTED_JSON = "[" * DEEP + "]" * DEEP


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (ALIASES, "more than 1000 aliases"),
        (NESTED_YAML, "nested more than 64 levels deep"),
        (NESTED_BLOCK, "nested more than 64 levels deep"),
        (LAUGHS, "more than 1000000 nodes once aliases are expanded"),
        ("images: &a [*a]\n", "an alias refers to a node that contains it"),
    ],
    ids=["aliases", "flow", "block", "laughs", "cycle"],
)
def test_a_sync_file_bomb_is_one_line_naming_file_and_line(text, problem):
    with pytest.raises(InvalidSyncFile) as caught:
        parse_sync_file(text, "sync.yaml")
    message = str(caught.value)
    assert message.startswith("sync.yaml:")
    assert problem in message
    assert "\n" not in message


def test_a_sync_file_over_the_size_cap_is_refused(tmp_path):
    path = tmp_path / "sync.yaml"
    path.write_text("images:\n" + "  - quay.io/a/b:1\n" * 300_000)  # 5.1 MB
    with pytest.raises(InvalidSyncFile, match="larger than 4 MiB"):
        load_sync_file(path)
    with pytest.raises(InvalidSyncFile, match="larger than 4 MiB"):
        parse_sync_file(path.read_text(), str(path))


def secret_yaml(content: str) -> str:
    return (
        "apiVersion: v1\nkind: Secret\nmetadata: {name: regcred}\n"
        "type: kubernetes.io/dockerconfigjson\n"
        f"data:\n  .dockerconfigjson: {base64.b64encode(content.encode()).decode()}\n"
    )


@pytest.mark.parametrize(
    "text",
    [
        NESTED_YAML.replace("images", "kind"),
        NESTED_JSON,
        '{"a":' * DEEP + "1" + "}" * DEEP,
        "kind: List\nitems:\n  - &s {kind: Secret}\n" + "  - *s\n" * 200_000,
        secret_yaml(NESTED_JSON),
    ],
    ids=["yaml", "json-array", "json-object", "aliases", "nested-dockerconfigjson"],
)
def test_a_pull_secret_or_authfile_bomb_is_a_credentials_error(text, tmp_path):
    with pytest.raises(CredentialsError) as caught:
        parse_authfile(text, "regcred.yaml")
    assert "\n" not in str(caught.value)
    problems = check_text(text, "regcred.yaml")
    assert problems
    path = tmp_path / "auth.json"
    path.write_text(text)
    with pytest.raises(CredentialsError):
        load_authfile(path)


def test_a_docker_config_nested_too_deeply_is_a_credentials_error():
    with pytest.raises(CredentialsError, match="not valid JSON"):
        parse_docker_config(NESTED_JSON, "config.json")


def test_an_authfile_over_the_size_cap_is_refused(tmp_path):
    path = tmp_path / "auth.json"
    path.write_text('{"auths": {}, "pad": "' + "x" * (5 * 1024 * 1024) + '"}')
    with pytest.raises(CredentialsError, match="larger than 4 MiB"):
        load_authfile(path)


def test_registry_json_bodies_nested_too_deeply_are_errors_not_tracebacks():
    with pytest.raises(InvalidManifest):
        parse_manifest(NESTED_JSON.encode(), "application/vnd.oci.image.manifest.v1+json")
    with pytest.raises(ReferrerError):
        referrers_from_index(NESTED_JSON.encode(), Digest.of(b"x"), "referrers of x")
    error = registry_error_from_response(400, "GET", "https://r/v2/", NESTED_JSON.encode(), None)
    assert isinstance(error, ImgmirrorError)
    assert error.status == 400


def test_an_image_list_over_the_size_cap_is_refused():
    from imgmirror.syncing.file import parse_image_list

    with pytest.raises(InvalidSyncFile, match="larger than 4 MiB"):
        parse_image_list("quay.io/a/b:1\n" * 400_000, "<stdin>", to="reg.corp/m")
