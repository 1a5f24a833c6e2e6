"""A person at a terminal sees per-blob progress; scripts and --quiet see none."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

import pytest

from tests.support.images import make_image
from tests.support.registry import Registry
from tests.support.seed import seed

pytestmark = [pytest.mark.registry]


def run_with_tty_stderr(*args: str) -> tuple[int, str]:
    """Run the CLI with stderr on a pseudo-terminal; return its exit code and what it drew."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "imgmirror", *args],
        stdout=subprocess.DEVNULL,
        stderr=follower,
        stdin=subprocess.DEVNULL,
    )
    os.close(follower)
    drawn = bytearray()
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        drawn += chunk
    os.close(leader)
    return proc.wait(timeout=60), drawn.decode(errors="replace")


def test_terminal_shows_each_blob_with_bytes_and_rate(
    anon_registry: Registry, relative_registry: Registry
):
    image = make_image(marker="tty")
    seed(anon_registry, "app", "1", image)

    code, drawn = run_with_tty_stderr(
        "copy", anon_registry.ref("app", "1"), relative_registry.ref("app", "1")
    )

    assert code == 0, drawn
    for blob in image.blobs:
        assert blob.digest[:19] in drawn
    assert "copied" in drawn
    assert "/s" in drawn  # the live rate


def test_quiet_draws_nothing(anon_registry: Registry, relative_registry: Registry):
    seed(anon_registry, "app", "1", make_image(marker="quiet"))

    code, drawn = run_with_tty_stderr(
        "copy", anon_registry.ref("app", "1"), relative_registry.ref("app", "1"), "--quiet"
    )

    assert code == 0
    assert drawn == ""


def test_no_progress_when_stderr_is_not_a_terminal(
    anon_registry: Registry, relative_registry: Registry
):
    seed(anon_registry, "app", "1", make_image(marker="pipe"))

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "imgmirror",
            "copy",
            anon_registry.ref("app", "1"),
            relative_registry.ref("app", "1"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )

    assert proc.returncode == 0
    assert proc.stderr == ""
