"""``imgmirror copy`` as a shell user runs it: exit codes, one-line errors, --json."""

from __future__ import annotations

import json

import pytest

from tests.support.images import make_image
from tests.support.registry import Registry, free_port
from tests.support.seed import seed
from tests.support.tools import one_line_error, run_cli, skopeo_digest

pytestmark = [pytest.mark.registry]


@pytest.mark.skopeo
def test_json_result_is_the_last_line(anon_registry: Registry):
    image = make_image(marker="cli")
    seed(anon_registry, "google_containers/pause", "3.9", image)

    proc = run_cli(
        "copy",
        anon_registry.ref("google_containers/pause", "3.9"),
        anon_registry.ref("tdongsi/pause", "3.9"),
        "--json",
    )

    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["digest"] == image.digest
    assert result["source"] == anon_registry.ref("google_containers/pause", "3.9")
    assert result["destination"] == anon_registry.ref("tdongsi/pause", "3.9")
    assert result["blobs_mounted"] == len(image.blobs)
    assert {"blobs_copied", "blobs_skipped", "bytes_copied"} <= result.keys()
    assert skopeo_digest(anon_registry.ref("tdongsi/pause", "3.9"), anon_registry) == image.digest


def test_plain_output_names_digest(anon_registry: Registry, relative_registry: Registry):
    image = make_image(marker="plain")
    seed(anon_registry, "app", "1", image)

    proc = run_cli("copy", anon_registry.ref("app", "1"), relative_registry.ref("app", "1"))

    assert proc.returncode == 0, proc.stderr
    assert image.digest in proc.stdout
    assert "3 copied" in proc.stdout


def test_bad_reference_is_one_line():
    line = one_line_error(run_cli("copy", "Foo/Bar:1", "localhost:5000/x:1"))
    assert "Foo/Bar" in line
    assert "lowercase" in line


def test_missing_tag_is_one_line(anon_registry: Registry):
    line = one_line_error(
        run_cli("copy", anon_registry.ref("none", "9"), anon_registry.ref("x", "9"))
    )
    assert "not found" in line


def test_wrong_credentials_is_one_line_without_the_password(
    anon_registry: Registry, basic_registry: Registry
):
    seed(anon_registry, "app", "1", make_image(marker="creds"))
    line = one_line_error(
        run_cli(
            "copy",
            anon_registry.ref("app", "1"),
            basic_registry.ref("app", "1"),
            "--dest-creds",
            "alice:not-the-password",
            "--ca-file",
            str(basic_registry.ca_file),
        )
    )
    assert "credentials" in line
    assert "not-the-password" not in line


def test_missing_credentials_says_how_to_pass_them(
    anon_registry: Registry, basic_registry: Registry
):
    seed(anon_registry, "app", "1", make_image(marker="nocreds"))
    line = one_line_error(
        run_cli(
            "copy",
            anon_registry.ref("app", "1"),
            basic_registry.ref("app", "1"),
            "--ca-file",
            str(basic_registry.ca_file),
        )
    )
    assert "--dest-creds" in line


def test_unreachable_registry_is_one_line():
    port = free_port()
    line = one_line_error(run_cli("copy", f"127.0.0.1:{port}/app:1", f"127.0.0.1:{port}/b:1"))
    assert f"127.0.0.1:{port}" in line


def test_debug_shows_the_traceback():
    proc = run_cli("--debug", "copy", "Foo/Bar:1", "localhost:5000/x:1")
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr


def test_usage_error_exits_2():
    proc = run_cli("copy", "only-one-argument")
    assert proc.returncode == 2


def test_version():
    proc = run_cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.startswith("imgmirror ")
