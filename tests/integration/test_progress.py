"""Progress: a live display on a terminal (any width), plain lines in logs, none when quiet."""

from __future__ import annotations

import os
import re

import pytest

from tests.support.images import make_image
from tests.support.registry import Registry
from tests.support.seed import seed
from tests.support.terminal import run_on_terminal
from tests.support.tools import run_cli

pytestmark = [pytest.mark.registry]


def run_with_tty_stderr(*args: str, columns: int = 100) -> tuple[int, str]:
    """Run the CLI with stderr on a pseudo-terminal ``columns`` wide; return its exit code
    and what it drew."""
    return run_on_terminal(*args, columns=columns)


def visible_lines(drawn: str) -> list[str]:
    """What the terminal shows per line: escape sequences removed, split at CR and LF."""
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", drawn)
    return [line for line in re.split(r"[\r\n]", plain) if line.strip()]


@pytest.mark.parametrize("columns", [40, 160])
def test_terminal_shows_totals_and_each_blob_within_its_width(
    anon_registry: Registry, relative_registry: Registry, columns: int
):
    image = make_image(marker=f"tty{columns}")
    seed(anon_registry, "app", "1", image)

    code, drawn = run_with_tty_stderr(
        "copy", anon_registry.ref("app", "1"), relative_registry.ref("app", "1"), columns=columns
    )

    assert code == 0, drawn
    lines = visible_lines(drawn)
    assert all(len(line) <= columns for line in lines), lines
    for blob in image.blobs:
        assert any(line.split()[:2] == [blob.digest[:19], "copied"] for line in lines), lines
    assert any(re.match(r"copying .*100% .*/.*3/3 blobs", line) for line in lines) or (
        columns < 60 and any(re.match(r"copying +100% ", line) for line in lines)
    ), lines


def test_save_and_push_use_their_own_verbs(anon_registry: Registry, tmp_path):
    image = make_image(marker="verbs")
    seed(anon_registry, "app", "1", image)
    archive = str(tmp_path / "app.tar")

    code, drawn = run_with_tty_stderr("save", anon_registry.ref("app", "1"), "-o", archive)
    assert code == 0, drawn
    assert "saving" in drawn
    assert all(f"{b.digest[:19]}  saved" in drawn for b in image.layers), drawn

    code, drawn = run_with_tty_stderr("push", archive, anon_registry.ref("again", "1"))
    assert code == 0, drawn
    assert "pushing" in drawn
    assert "pushed" in drawn or "mounted" in drawn
    assert "copied" not in drawn


def test_quiet_draws_nothing(anon_registry: Registry, relative_registry: Registry):
    seed(anon_registry, "app", "1", make_image(marker="quiet"))

    code, drawn = run_with_tty_stderr(
        "copy", anon_registry.ref("app", "1"), relative_registry.ref("app", "1"), "--quiet"
    )

    assert code == 0
    assert drawn == ""


def test_piped_progress_is_plain_lines(anon_registry: Registry, relative_registry: Registry):
    seed(anon_registry, "app", "1", make_image(marker="pipe"))
    env = {**os.environ, "IMGMIRROR_PROGRESS_INTERVAL": "0.01"}
    src, dst = anon_registry.ref("app", "1"), relative_registry.ref("app", "1")

    proc = run_cli("copy", src, dst, env=env)
    as_json = run_cli("copy", src, relative_registry.ref("app", "2"), "--json", env=env)

    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stderr
    for line in proc.stderr.splitlines():
        assert re.fullmatch(r"imgmirror: copying: +\d+% \S+ \S+/\S+ \S+ .*\d+/3 blobs", line), line
    assert as_json.returncode == 0
    assert as_json.stderr == ""
