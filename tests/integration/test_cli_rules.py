"""The CLI's everyday rules, each run as a shell user would against the real registry."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imgmirror.cli import root_first
from tests.support.images import make_image
from tests.support.registry import Registry
from tests.support.seed import seed
from tests.support.tools import one_line_error, run_cli, skopeo_digest

pytestmark = [pytest.mark.registry]


def test_platform_of_a_single_platform_image_must_match(anon_registry: Registry, tmp_path: Path):
    seed(anon_registry, "app", "1", make_image(marker="plat", platform="linux/amd64"))
    src = anon_registry.ref("app", "1")

    copied = run_cli("copy", src, anon_registry.ref("other", "1"), "--platform", "linux/arm64")
    saved = run_cli("save", src, "-o", str(tmp_path / "a.tar"), "--platform", "linux/arm64")
    matching = run_cli("copy", src, anon_registry.ref("other", "2"), "--platform", "linux/amd64")

    for proc in (copied, saved):
        line = one_line_error(proc)
        assert "single-platform image for linux/amd64, not linux/arm64" in line
    assert not (tmp_path / "a.tar").exists()
    assert matching.returncode == 0, matching.stderr


def test_debug_is_accepted_after_the_command(anon_registry: Registry):
    src, dst = anon_registry.ref("nothing", "1"), anon_registry.ref("x", "1")
    proc = run_cli("copy", src, dst, "--debug")

    assert proc.returncode == 1
    assert "Traceback" in proc.stderr
    assert proc.stderr.rstrip().splitlines()[-1].startswith("imgmirror: error: ")
    assert root_first(["copy", "a", "--debug", "--", "--debug"]) == [
        "--debug",
        "copy",
        "a",
        "--",
        "--debug",
    ]


@pytest.mark.parametrize(
    ("command", "placeholders"),
    [
        (["copy"], ["SRC", "DST"]),
        (["save"], ["IMAGE[=NAME]", "FILE"]),
        (["push"], ["FILE", "DEST"]),
        (["secret", "create"], ["NAME"]),
        (["secret", "check"], ["FILE"]),
        (["ls"], ["REPO"]),
        (["catalog"], []),
        (["digest"], ["IMAGE"]),
        (["inspect"], ["IMAGE"]),
        (["node-config"], ["SOURCE=MIRROR"]),
    ],
)
def test_help_shows_placeholders_and_an_example(command: list[str], placeholders: list[str]):
    proc = run_cli(*command, "--help", env={**os.environ, "COLUMNS": "120"})

    assert proc.returncode == 0, proc.stderr
    assert all(p in proc.stdout for p in placeholders), proc.stdout
    example = proc.stdout.split("Example:", 1)[1]
    assert f"imgmirror {' '.join(command)} " in example


def test_shell_completion_is_available():
    script = run_cli("--show-completion", "bash")
    env = {
        **os.environ,
        "_IMGMIRROR_COMPLETE": "complete_bash",
        "COMP_WORDS": "imgmirror co",
        "COMP_CWORD": "1",
    }
    completed = run_cli(env=env)

    assert script.returncode == 0, script.stderr
    assert "_IMGMIRROR_COMPLETE=complete_bash" in script.stdout
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["copy"]


@pytest.mark.skopeo
def test_docker_transport_prefix_is_accepted(anon_registry: Registry, tmp_path: Path):
    image = make_image(marker="docker-prefix")
    seed(anon_registry, "app", "1", image)

    copied = run_cli(
        "copy",
        "docker://" + anon_registry.ref("app", "1"),
        "docker://" + anon_registry.ref("mirror/app", "1"),
    )
    saved = run_cli("save", "docker://" + anon_registry.ref("app", "1"), "-o", str(tmp_path / "a"))

    assert copied.returncode == 0, copied.stderr
    assert skopeo_digest(anon_registry.ref("mirror/app", "1"), anon_registry) == image.digest
    assert saved.returncode == 0, saved.stderr


@pytest.mark.parametrize("suffix", [".tar.xz", ".tar.bz2"])
def test_an_unwritable_extension_is_an_error(anon_registry: Registry, tmp_path: Path, suffix: str):
    seed(anon_registry, "app", "1", make_image(marker="xz"))
    (tmp_path / "out").mkdir()
    output = tmp_path / "out" / f"app{suffix}"

    proc = run_cli("save", anon_registry.ref("app", "1"), "-o", str(output))

    assert f"cannot write {suffix[4:]} archives" in one_line_error(proc)
    assert list((tmp_path / "out").iterdir()) == []


def test_missing_repository_and_missing_tag_are_told_apart(anon_registry: Registry):
    seed(anon_registry, "app", "1", make_image(marker="missing"))
    dst = anon_registry.ref("x", "1")

    no_repo = one_line_error(run_cli("copy", anon_registry.ref("nope", "1"), dst))
    no_tag = one_line_error(run_cli("copy", anon_registry.ref("app", "2"), dst))

    assert f"repository {anon_registry.host}/nope not found" in no_repo
    assert f"tag 2 not found in {anon_registry.host}/app" in no_tag
    assert "the repository exists" in no_tag
