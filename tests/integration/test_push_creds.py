"""Explicit push credentials go only to an explicit destination: an archive (untrusted) that
names registries gets them only after the user consents, with the registries listed first."""

from __future__ import annotations

from pathlib import Path

import pytest

import imgmirror
from imgmirror.ops.push import ArchiveNamesNeedConsent
from tests.support import images
from tests.support.registry import Registry
from tests.support.tools import run_cli, skopeo_digest

CREDS = "pusher:pushpass"


@pytest.fixture
def named_archive(token_registry: Registry, tmp_path: Path) -> tuple[Path, str]:
    """A docker archive whose image is named inside the token registry."""
    image = images.make_image(marker="archive-names")
    name = f"{token_registry.host}/named/image:v1"
    archive = tmp_path / "named.tar"
    archive.write_bytes(images.docker_archive([(image, [name])]))
    return archive, name


def test_library_refuses_without_consent(token_registry: Registry, named_archive) -> None:
    archive, name = named_archive
    with pytest.raises(ArchiveNamesNeedConsent) as caught:
        imgmirror.push(archive, dest_creds=CREDS)
    assert caught.value.registries == (token_registry.host,)
    assert token_registry.host in str(caught.value)
    assert token_registry.token_server is not None
    assert token_registry.token_server.requests == []  # nothing was sent anywhere

    asked: list[tuple[str, ...]] = []

    def consent(registries: tuple[str, ...]) -> bool:
        asked.append(registries)
        return True

    result = imgmirror.push(archive, dest_creds=CREDS, to_archive_names=consent)
    assert asked == [(token_registry.host,)]
    assert result.images[0].name == name
    assert skopeo_digest(name, token_registry, anonymous=True) == result.images[0].digest


def test_cli_refuses_then_lists_the_registries(token_registry: Registry, named_archive) -> None:
    archive, name = named_archive
    proc = run_cli("push", str(archive), "--dest-creds", CREDS)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "imgmirror: error: --dest-creds was given but no destination, and the archive names "
        f"the registries {token_registry.host}; explicit credentials are sent only to an "
        "explicit destination; give DEST, or add --to-archive-names to send --dest-creds to them"
    ]
    proc = run_cli("push", str(archive), "--dest-creds", CREDS, "--to-archive-names")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines()[0] == (
        "imgmirror: note: sending --dest-creds to the registries the archive names: "
        f"{token_registry.host}"
    )
    assert f"pushed {name}" in proc.stdout


def test_credentials_with_a_destination_need_no_consent(
    token_registry: Registry, named_archive
) -> None:
    archive, _ = named_archive
    result = imgmirror.push(archive, f"{token_registry.host}/mirror", dest_creds=CREDS)
    assert result.images[0].name == f"{token_registry.host}/mirror/named/image:v1"


def test_archive_and_credentials_cannot_share_stdin() -> None:
    proc = run_cli("push", "-", "reg.example/app:1", "--dest-creds", "-", stdin="u:p\n")
    assert proc.returncode == 2
    shown = " ".join(proc.stderr.replace("│", " ").split())  # usage errors come in a box
    assert "the archive and --dest-creds cannot both come from stdin" in shown
