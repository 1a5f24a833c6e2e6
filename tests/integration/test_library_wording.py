"""The library names what to provide by its own parameters; only the CLI names its options.

Each case fails before any request (a missing or malformed credentials file, credentials
without a colon, two platforms for the legacy format), so an unreachable registry will do.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import imgmirror
from tests.support.tools import one_line_error, run_cli

SRC, DST = "127.0.0.1:9/app:1", "127.0.0.1:9/copy:1"  # discard port: never contacted


def _cases(tmp_path: Path) -> list[tuple[Callable[[], object], str, list[str], str]]:
    """(library call, what its hint names, the same through the CLI, the option it names)."""
    missing = str(tmp_path / "missing.json")
    not_a_secret = tmp_path / "cm.yaml"
    not_a_secret.write_text("kind: ConfigMap\n")
    out = str(tmp_path / "out.tar")
    two = ["linux/amd64", "linux/arm64"]
    return [
        (
            lambda: imgmirror.copy(SRC, DST, authfile=missing),
            "check the authfile path",
            ["copy", SRC, DST, "--authfile", missing],
            "check the --authfile path",
        ),
        (
            lambda: imgmirror.save([SRC], out, authfile=str(not_a_secret)),
            "point authfile at ~/.docker/config.json",
            ["save", SRC, "-o", out, "--authfile", str(not_a_secret)],
            "point --authfile at ~/.docker/config.json",
        ),
        (
            lambda: imgmirror.save([SRC], out, format="legacy", platforms=two),
            "give a single platform in platforms",
            ["save", SRC, "-o", out, "--format=legacy", "--platform", two[0], "--platform", two[1]],
            "give a single platform in --platform",
        ),
        (
            lambda: imgmirror.node_config(["registry.k8s.io=mirror"]),
            "give mirrors as SOURCE=MIRROR[/PREFIX]",
            ["node-config", "--mirror", "registry.k8s.io=mirror", "-o", str(tmp_path / "out")],
            "give --mirror as SOURCE=MIRROR[/PREFIX]",
        ),
        (
            lambda: imgmirror.node_config(["registry.k8s.io=m.corp"], client_cert=missing),
            "give both client_cert and client_key, or neither",
            ["node-config", "--mirror", "registry.k8s.io=m.corp", "--client-cert", missing],
            "give both --client-cert and --client-key, or neither",
        ),
    ]  # fmt: skip


@pytest.mark.parametrize("case", range(5))
def test_library_hint_names_its_parameter_and_the_cli_its_option(case: int, tmp_path: Path):
    call, library_hint, argv, cli_hint = _cases(tmp_path)[case]

    with pytest.raises(imgmirror.ImgmirrorError) as info:
        call()
    line = one_line_error(run_cli(*argv))

    assert library_hint in str(info.value)
    assert "--" not in str(info.value)
    assert cli_hint in line
    assert not (tmp_path / "out.tar").exists()
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("call", "parameter"),
    [
        (lambda: imgmirror.copy(SRC, DST, src_creds="no-colon"), "src_creds"),
        (lambda: imgmirror.copy(SRC, DST, dest_creds="user:"), "dest_creds"),
        (lambda: imgmirror.push("/nonexistent.tar", DST, dest_creds=":pw"), "dest_creds"),
        (lambda: imgmirror.list_tags("127.0.0.1:9/app", creds="no-colon"), "creds"),
    ],
)
def test_bad_credentials_name_the_parameter_not_an_option(
    call: Callable[[], object], parameter: str
):
    with pytest.raises(imgmirror.CredentialsError) as info:
        call()

    assert str(info.value).endswith(f"give {parameter} as USER:PASSWORD")
    assert info.value.setting == parameter
    assert "--" not in str(info.value)
