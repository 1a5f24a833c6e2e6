"""DefaultKeychain file order and the credential-helper protocol, with injected runners."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from imgmirror.auth.credentials import Credential
from imgmirror.auth.keychain import DefaultKeychain, StaticKeychain, default_authfiles, run_helper
from imgmirror.errors import CredentialsError
from imgmirror.session import Session


def fake_run(returncode: int, stdout: str, calls: list[Any] | None = None):
    def run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        if calls is not None:
            calls.append((args, kwargs["input"]))
        return subprocess.CompletedProcess(args, returncode, stdout, "")

    return run


@pytest.fixture
def helper_path(tmp_path: Path) -> dict[str, str]:
    """An env whose PATH holds an (unused, the runner is faked) docker-credential-fake."""
    exe = tmp_path / "docker-credential-fake"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    return {"PATH": str(tmp_path)}


def test_helper_success_and_identity_token(helper_path: dict[str, str]) -> None:
    calls: list[Any] = []
    reply = json.dumps({"ServerURL": "r", "Username": "u", "Secret": "s3cret"})
    cred = run_helper("fake", "r", "r", source="c", env=helper_path, run=fake_run(0, reply, calls))
    assert cred == Credential("u", "s3cret")
    assert calls[0][0][-1] == "get"
    assert calls[0][1] == "r"
    reply = json.dumps({"Username": "<token>", "Secret": "refresh"})
    cred = run_helper("fake", "r", "r", source="c", env=helper_path, run=fake_run(0, reply))
    assert cred is not None
    assert cred.identity_token == "refresh"
    assert cred.password == ""


def test_helper_not_found_is_anonymous(helper_path: dict[str, str]) -> None:
    run = fake_run(1, "credentials not found in native keychain\n")
    assert run_helper("fake", "r", "r", source="c", env=helper_path, run=run) is None


@pytest.mark.parametrize(
    ("code", "stdout", "expected"),
    [
        (1, "error getting credentials - err: exit status 1, out: `locked`", "fake failed"),
        (0, "not json", "not a JSON {Username, Secret}"),
        (0, '{"Username": 1, "Secret": "x"}', "not a JSON {Username, Secret}"),
    ],
)
def test_helper_failures_name_helper_and_registry(
    helper_path: dict[str, str], code: int, stdout: str, expected: str
) -> None:
    with pytest.raises(CredentialsError) as info:
        run_helper(
            "fake", "reg.corp", "reg.corp", source="c", env=helper_path, run=fake_run(code, stdout)
        )
    assert "docker-credential-fake" in str(info.value)
    assert "reg.corp" in str(info.value)
    assert expected in str(info.value)


def test_missing_helper(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match=r"docker-credential-missing .*not installed"):
        run_helper("missing", "r", "r", source="cfg", env={"PATH": str(tmp_path)})


def test_default_authfiles_order(tmp_path: Path) -> None:
    env = {"REGISTRY_AUTH_FILE": "/a.json", "XDG_RUNTIME_DIR": "/run/user/1", "DOCKER_CONFIG": "/d"}
    assert default_authfiles(env, tmp_path) == [
        Path("/a.json"),
        Path("/run/user/1/containers/auth.json"),
        tmp_path / ".config" / "containers" / "auth.json",
        Path("/d/config.json"),
    ]
    assert default_authfiles({}, tmp_path, uid=1234) == [
        Path("/run/containers/1234/auth.json"),
        tmp_path / ".config" / "containers" / "auth.json",
        tmp_path / ".docker" / "config.json",
    ]


def test_podman_order_without_xdg_runtime_dir_and_with_xdg_config_home(tmp_path: Path) -> None:
    # a root cron job after `podman login`: no XDG_RUNTIME_DIR, podman wrote /run/containers/0
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    assert default_authfiles(env, tmp_path / "home", uid=0) == [
        Path("/run/containers/0/auth.json"),
        tmp_path / "cfg" / "containers" / "auth.json",
        tmp_path / "home" / ".docker" / "config.json",
    ]
    assert default_authfiles({"XDG_RUNTIME_DIR": "/run/user/7"}, tmp_path, uid=7)[0] == Path(
        "/run/user/7/containers/auth.json"
    )


def test_xdg_config_home_auth_file_is_read(tmp_path: Path) -> None:
    auth = tmp_path / "cfg" / "containers" / "auth.json"
    auth.parent.mkdir(parents=True)
    auth.write_text(json.dumps({"auths": {"reg": {"username": "podman", "password": "p"}}}))
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "HOME": str(tmp_path / "home")}
    found = DefaultKeychain(env=env).resolve("reg")
    assert found is not None
    assert (found.username, found.password) == ("podman", "p")


def test_docker_auth_config_variable_comes_before_the_docker_file(tmp_path: Path) -> None:
    docker = tmp_path / ".docker"
    docker.mkdir()
    (docker / "config.json").write_text(
        json.dumps({"auths": {"reg": {"username": "file", "password": "f"}}})
    )
    variable = json.dumps({"auths": {"reg": {"auth": "dmFyOnY="}}})  # var:v
    env = {"HOME": str(tmp_path), "DOCKER_AUTH_CONFIG": variable}
    assert DefaultKeychain(env=env).resolve("reg") == Credential("var", "v")
    assert DefaultKeychain(env={"HOME": str(tmp_path)}).resolve("reg") == Credential("file", "f")


def test_podman_user_auth_json_is_read(tmp_path: Path) -> None:
    podman = tmp_path / ".config" / "containers"
    podman.mkdir(parents=True)
    (podman / "auth.json").write_text(
        json.dumps({"auths": {"quay.io": {"username": "p", "password": "q"}}})
    )
    assert DefaultKeychain(env={"HOME": str(tmp_path)}).resolve("quay.io") == Credential("p", "q")


def test_first_file_with_an_entry_wins(tmp_path: Path) -> None:
    first = tmp_path / "first.json"
    first.write_text(json.dumps({"auths": {"other": {"username": "x", "password": "y"}}}))
    docker = tmp_path / "docker"
    docker.mkdir()
    (docker / "config.json").write_text(
        json.dumps({"auths": {"reg": {"username": "u", "password": "p"}}})
    )
    keychain = DefaultKeychain(first, env={"DOCKER_CONFIG": str(docker), "HOME": str(tmp_path)})
    assert keychain.resolve("reg") == Credential("u", "p")
    assert keychain.resolve("other") == Credential("x", "y")
    assert keychain.resolve("nowhere") is None
    only = DefaultKeychain(first, env={"DOCKER_CONFIG": str(docker)}, defaults=False)
    assert only.resolve("reg") is None


def test_session_explicit_credentials_win_and_keychain_is_asked_once() -> None:
    asked: list[str] = []

    class Counting:
        def resolve(self, registry: str) -> Credential | None:
            asked.append(registry)
            return Credential("k", "v")

    with Session(keychain=Counting()) as session:
        explicit = session.client("reg", Credential("e", "x"), role="source")
        assert explicit.auth.credential == Credential("e", "x")
        first = session.client("reg", None, role="source")
        again = session.client("reg", None, role="source")
        other_side = session.client("reg", None, role="destination")
        assert first is again
        assert other_side is not first  # its errors name the destination
        assert first.auth.credential == other_side.auth.credential == Credential("k", "v")
    assert asked == ["reg"]


def test_reprs_hide_secrets() -> None:
    keychain = StaticKeychain({"reg": "user:hunter2"})
    assert "hunter2" not in repr(keychain)
    assert keychain.resolve("reg") == Credential("user", "hunter2")
