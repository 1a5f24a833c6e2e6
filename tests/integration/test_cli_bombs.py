"""The command line on hostile YAML and JSON files: one line, exit 1, no traceback, at once
(each run has the 120 s timeout of run_cli; none needs a second)."""

from __future__ import annotations

import pytest

from tests.support.tools import run_cli

DEEP = 50_000


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "defaults: {to: 127.0.0.1:1/m}\nimages:\n  - &e {image: quay.io/a/b:1}\n"
            + "  - *e\n" * 200_000,
            "sync.yaml:1004: the document has more than 1000 aliases",
        ),
        ("images: " + "[" * DEEP + "]" * DEEP + "\n", "sync.yaml:1: the document is nested"),
    ],
    ids=["aliases", "nested"],
)
def test_sync_refuses_a_yaml_bomb_in_one_line(tmp_path, text, problem):
    path = tmp_path / "sync.yaml"
    path.write_text(text)
    done = run_cli("sync", str(path))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("imgmirror: error: ")
    assert problem in line


@pytest.mark.parametrize("suffix", ["yaml", "json"])
def test_secret_check_and_authfile_refuse_a_nested_file_in_one_line(tmp_path, suffix):
    path = tmp_path / f"regcred.{suffix}"
    path.write_text("[" * DEEP + "]" * DEEP)
    checked = run_cli("secret", "check", str(path))
    listed = run_cli("ls", "--authfile", str(path), "127.0.0.1:1/app")
    for done in (checked, listed):
        assert done.returncode == 1
        assert "Traceback" not in done.stderr
        assert "RecursionError" not in done.stderr
        assert len(done.stderr.splitlines()) <= 2, done.stderr
    assert "nested" in checked.stderr + checked.stdout
