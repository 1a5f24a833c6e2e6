"""Credentials without the command line: ``--src-creds -``, ``USER:-``, ``IMGMIRROR_*_CREDS``.

Against the htpasswd + TLS registry (everything needs ``alice:secret``), so a credential that
was not read means a 401 and a failed copy.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.images import make_image
from tests.support.registry import Registry
from tests.support.seed import seed
from tests.support.tools import run_cli, skopeo_digest

pytestmark = [pytest.mark.registry]


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    """An environment with no credential files and no IMGMIRROR_* variables."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("IMGMIRROR_")
        and k not in ("REGISTRY_AUTH_FILE", "DOCKER_AUTH_CONFIG", "XDG_CONFIG_HOME")
    }
    (tmp_path / "home").mkdir()
    env.update(HOME=str(tmp_path / "home"), DOCKER_CONFIG=str(tmp_path / "home"))
    env["XDG_RUNTIME_DIR"] = str(tmp_path / "run")
    return env


def _copy_args(src: Registry, dst: Registry) -> list[str]:
    return [
        "copy",
        src.ref("src/app", "1"),
        dst.ref("dst/app", "1"),
        "--ca-file",
        str(src.ca_file),
        "-q",
    ]


def _seeded(registry: Registry) -> str:
    image = make_image(marker="creds")
    seed(registry, "src/app", "1", image)
    return image.digest


@pytest.mark.parametrize(
    ("flag", "stdin"),
    [("-", "alice:secret\n"), ("alice:-", "secret\n"), ("alice:-", "secret")],
    ids=["user-pass-on-stdin", "password-alone", "no-newline"],
)
def test_src_creds_from_stdin(
    basic_registry: Registry, anon_registry: Registry, clean_env: dict[str, str], flag, stdin
):
    digest = _seeded(basic_registry)
    args = _copy_args(basic_registry, anon_registry)

    proc = run_cli(*args, "--src-creds", flag, env=clean_env, stdin=stdin)

    assert proc.returncode == 0, proc.stderr
    assert skopeo_digest(anon_registry.ref("dst/app", "1"), anon_registry) == digest


def test_without_credentials_the_same_copy_is_refused(
    basic_registry: Registry, anon_registry: Registry, clean_env: dict[str, str]
):
    _seeded(basic_registry)
    proc = run_cli(*_copy_args(basic_registry, anon_registry), env=clean_env)
    assert proc.returncode == 1
    assert "--src-creds" in proc.stderr


def test_env_variable_is_used_when_no_flag(
    basic_registry: Registry, anon_registry: Registry, clean_env: dict[str, str]
):
    digest = _seeded(basic_registry)
    env = {**clean_env, "IMGMIRROR_SRC_CREDS": "alice:secret"}

    proc = run_cli(*_copy_args(basic_registry, anon_registry), env=env)

    assert proc.returncode == 0, proc.stderr
    assert skopeo_digest(anon_registry.ref("dst/app", "1"), anon_registry) == digest
    # the flag beats the variable
    bad = run_cli(*_copy_args(basic_registry, anon_registry), "--src-creds", "alice:wrong", env=env)
    assert bad.returncode == 1
    assert "wrong" not in bad.stderr


def test_dest_env_variable_and_two_stdin_lines(
    basic_registry: Registry, registry_factory, clean_env: dict[str, str]
):
    digest = _seeded(basic_registry)
    dst = registry_factory(name="dst", auth="htpasswd", tls=True, users={"bob": "hunter2"})
    args = ["copy", basic_registry.ref("src/app", "1"), dst.ref("dst/app", "1")]
    args += ["--ca-file", str(basic_registry.ca_file), "-q"]

    via_env = run_cli(*args, env={**clean_env, "IMGMIRROR_DEST_CREDS": "bob:hunter2"}, stdin="")
    assert via_env.returncode == 1  # source still anonymous: refused
    both = run_cli(
        *args,
        "--dest-creds",
        "-",
        "--src-creds",
        "-",
        env=clean_env,
        stdin="bob:hunter2\nalice:secret\n",
    )
    assert both.returncode == 0, both.stderr
    env_dest = run_cli(
        *args,
        "--src-creds",
        "alice:-",
        env={**clean_env, "IMGMIRROR_DEST_CREDS": "bob:hunter2"},
        stdin="secret\n",
    )
    assert env_dest.returncode == 0, env_dest.stderr
    assert digest


def test_password_never_in_argv(
    basic_registry: Registry, anon_registry: Registry, clean_env: dict[str, str]
):
    """While the command runs (blocked reading stdin), its argv holds no password."""
    digest = _seeded(basic_registry)
    argv = [sys.executable, "-m", "imgmirror", *_copy_args(basic_registry, anon_registry)]
    argv += ["--src-creds", "alice:-"]
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env,
        text=True,
    )
    try:
        cmdline = b""
        for _ in range(200):  # until the interpreter has started and read its arguments
            cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
            if b"alice:-" in cmdline:
                break
            time.sleep(0.01)
        assert b"alice:-" in cmdline
        assert b"secret" not in cmdline
        _out, err = proc.communicate("secret\n", timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert skopeo_digest(anon_registry.ref("dst/app", "1"), anon_registry) == digest


@pytest.mark.parametrize(
    ("flag", "stdin", "message"),
    [
        ("-", "", "stdin is empty"),
        ("-", "justapassword\n", "no ':'"),
        ("alice:-", "", "stdin is empty"),
        ("alice", "", "no ':'"),
    ],
)
def test_bad_credentials_are_one_line_usage_errors(
    anon_registry: Registry, clean_env: dict[str, str], flag: str, stdin: str, message: str
):
    proc = run_cli(
        "copy",
        anon_registry.ref("a", "1"),
        anon_registry.ref("b", "1"),
        "--src-creds",
        flag,
        env=clean_env,
        stdin=stdin,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("imgmirror: error: --src-creds")
    assert message in lines[0]
    assert "justapassword" not in proc.stderr
