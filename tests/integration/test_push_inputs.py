"""push from anything: skopeo ``oci:DIR`` and ``dir:DIR`` layouts pushed in place, archives piped
through stdin (plain and compressed), bare-tag OCI layouts keeping their tag, one image chosen
from several (``FILE:REF``, ``--image``), podman ``localhost/`` names, notes printed once.
Against the real registry, with skopeo writing the layouts and reading the results back."""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import imgmirror
from tests.support import images
from tests.support.registry import Registry
from tests.support.seed import seed
from tests.support.tools import run_cli, skopeo, skopeo_copy, skopeo_digest


def _archive(tmp_path: Path, *named: tuple[str, str]) -> Path:
    """A docker-archive with one image per (marker, name)."""
    items = [(images.make_image(marker=marker), [name]) for marker, name in named]
    path = tmp_path / "images.tar"
    path.write_bytes(images.docker_archive(items))
    return path


def _oci_digest(layout: Path, tag: str) -> str:
    index = json.loads((layout / "index.json").read_text())
    (entry,) = [
        m
        for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag
    ]
    return str(entry["digest"])


def test_oci_directory_keeps_its_bare_tag(anon_registry: Registry, tmp_path: Path) -> None:
    archive = _archive(tmp_path, ("oci-dir", "example.com/app:1"))
    layout = tmp_path / "layout"
    skopeo("copy", f"docker-archive:{archive}", f"oci:{layout}:3.19")
    result = imgmirror.push(layout, f"{anon_registry.host}/mirror/app")
    dest = f"{anon_registry.host}/mirror/app:3.19"  # not :latest
    assert result.layout == "oci"
    assert result.images == (imgmirror.PushedImage(dest, _oci_digest(layout, "3.19")),)
    assert skopeo_digest(dest, anon_registry) == result.images[0].digest


def test_a_bare_tag_without_dest_asks_for_a_repository(tmp_path: Path) -> None:
    archive = _archive(tmp_path, ("bare", "example.com/app:1"))
    layout = tmp_path / "layout"
    skopeo("copy", f"docker-archive:{archive}", f"oci:{layout}:3.19")
    proc = run_cli("push", str(layout))
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "imgmirror: error: the archive does not name its image (only the tag '3.19', no "
        "repository); give DEST as registry/repo (the tag is kept)"
    )


def test_skopeo_dir_layout_is_pushed_byte_for_byte(anon_registry: Registry, tmp_path: Path) -> None:
    archive = _archive(tmp_path, ("dir", "example.com/app:1"))
    layout = tmp_path / "dirlayout"
    skopeo("copy", f"docker-archive:{archive}", f"dir:{layout}")
    proc = run_cli("push", "--json", str(layout), f"{anon_registry.host}/d/app:v1")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    digest = "sha256:" + hashlib.sha256((layout / "manifest.json").read_bytes()).hexdigest()
    assert result["layout"] == "dir"
    assert result["images"] == [
        {"name": f"{anon_registry.host}/d/app:v1", "digest": digest, "state": "pushed",
         "previous": None}
    ]  # fmt: skip
    assert skopeo_digest(f"{anon_registry.host}/d/app:v1", anon_registry) == digest


def test_multi_platform_dir_layout(anon_registry: Registry, tmp_path: Path) -> None:
    index = images.multiarch_docker_list(marker="dir-all")
    seed(anon_registry, "multi", "v1", index)
    layout = tmp_path / "dirall"
    skopeo_copy(anon_registry.ref("multi", "v1"), f"dir:{layout}", src_registry=anon_registry)
    result = imgmirror.push(layout, f"{anon_registry.host}/copy/multi:v1")
    assert result.images[0].digest == index.digest
    assert skopeo_digest(f"{anon_registry.host}/copy/multi:v1", anon_registry) == index.digest


def _push_stdin(data: bytes, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imgmirror", "push", "--json", *args],
        input=data.decode("latin-1"),
        capture_output=True,
        text=True,
        encoding="latin-1",
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("source", ["-", "/dev/stdin"])
@pytest.mark.parametrize("compressed", [False, True])
def test_piped_archive(
    anon_registry: Registry, tmp_path: Path, source: str, compressed: bool
) -> None:
    data = _archive(tmp_path, ("piped", "example.com/app:1")).read_bytes()
    if compressed:
        data = gzip.compress(data)
    proc = _push_stdin(data, source, f"{anon_registry.host}/piped")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    dest = f"{anon_registry.host}/piped/app:1"
    assert [i["name"] for i in result["images"]] == [dest]
    assert skopeo_digest(dest, anon_registry) == result["images"][0]["digest"]


def test_one_image_from_several(anon_registry: Registry, tmp_path: Path) -> None:
    archive = _archive(tmp_path, ("a", "example.com/a:1"), ("b", "example.com/b:1"))
    dest = f"{anon_registry.host}/one/x:1"
    proc = run_cli("push", str(archive), dest)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"imgmirror: error: DEST '{dest}' has a tag, so it names one image, but the archive "
        "holds 2: example.com/a:1; example.com/b:1; select one as FILE:NAME, or give a "
        "registry or registry/prefix to push each under its own name"
    )
    proc = run_cli("push", "--json", f"{archive}:example.com/b:1", dest)  # the advice works
    assert proc.returncode == 0, proc.stderr
    pushed = json.loads(proc.stdout.splitlines()[-1])["images"]
    assert [i["name"] for i in pushed] == [dest]
    wanted = images.make_image(marker="b")
    config = json.loads(skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{dest}"))
    assert config["config"]["digest"] == wanted.config.digest
    proc = run_cli("push", "--image", "example.com/c:1", str(archive), dest)
    assert proc.returncode == 1
    assert "the archive has no image named 'example.com/c:1'; it holds: " in proc.stderr


def test_image_option_picks_a_tag_of_an_oci_layout(anon_registry: Registry, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    for marker in ("t1", "t2"):
        archive = _archive(tmp_path, (marker, f"example.com/{marker}:1"))
        skopeo("copy", f"docker-archive:{archive}", f"oci:{layout}:{marker}")
    result = imgmirror.push(layout, f"{anon_registry.host}/tags/app", image="t2")
    assert result.images == (
        imgmirror.PushedImage(f"{anon_registry.host}/tags/app:t2", _oci_digest(layout, "t2")),
    )


def test_podman_local_name_without_dest(tmp_path: Path) -> None:
    archive = _archive(tmp_path, ("local", "localhost/built:1"))
    proc = run_cli("push", str(archive))
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "imgmirror: error: localhost/built:1 is a local name (podman's localhost/), not a "
        "registry to push to; give DEST, e.g. registry.example.com/repo:tag"
    )


def test_a_note_is_printed_once(anon_registry: Registry, tmp_path: Path) -> None:
    index = images.multiarch_docker_list(marker="partial")
    seed(anon_registry, "partial", "v1", index)
    layout = tmp_path / "partial"
    skopeo_copy(
        anon_registry.ref("partial", "v1"),
        f"oci:{layout}:v1",
        src_registry=anon_registry,
        preserve_digests=False,  # skopeo converts the Docker list to an OCI index
    )
    blobs = layout / "blobs/sha256"
    top = _oci_digest(layout, "v1").removeprefix("sha256:")
    dropped = json.loads((blobs / top).read_text())["manifests"][1]["digest"]
    (blobs / dropped.removeprefix("sha256:")).unlink()  # one platform manifest goes missing
    proc = run_cli("push", str(layout), f"{anon_registry.host}/partial")
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in proc.stderr.splitlines() if "only partly in the archive" in line]
    assert len(notes) == 1, proc.stderr
    assert notes[0].startswith("imgmirror: note: index ")
