"""Archives from a sync file: save -f, docker load + ctr import, push --to, then sync agrees."""

from __future__ import annotations

import json
import os

import pytest

from tests.support.images import Index, host_platform, make_image, make_index, pause_image
from tests.support.registry import RegistryFactory
from tests.support.seed import RegistryClient as Seeder
from tests.support.tools import run_cli, skopeo_digest

pytestmark = [pytest.mark.registry, pytest.mark.skopeo, pytest.mark.docker]

PUSHER = ("pusher", "pushpass")


def test_save_f_push_to_round_trip(registry_factory: RegistryFactory, pause_binary, loaded,
                                   tmp_path):  # fmt: skip
    src = registry_factory(auth="token", name="src")
    dst = registry_factory(auth="token", name="dst", anonymous_pull=False)
    here = host_platform()
    images = {
        "pause:3.9": pause_image(pause_binary),
        "coredns/coredns:v1.11.1": make_image(platform=here, marker="coredns"),
        "etcd:3.5.15-0": make_image(platform=here, marker="etcd"),
        "kube-proxy:v1.30.1": make_image(platform=here, marker="proxy1"),
        "kube-proxy:v1.30.2": make_image(platform=here, marker="proxy2"),
    }
    with Seeder(src, PUSHER) as client:
        for name, image in images.items():
            repo, tag = name.split(":")
            client.push_image(repo, image, tag)
        client.push_image("kube-proxy", make_image(platform=here, marker="old"), "v1.29.0")
    sources = {f"{src.host}/{name}": image.digest for name, image in images.items()}
    sync_file = tmp_path / "k8s.yaml"
    sync_file.write_text(
        f"""\
defaults: {{to: {dst.host}/mirror}}
images:
  - {src.host}/pause:3.9
  - image: {src.host}/coredns/coredns:v1.11.1
  - repository: {src.host}/etcd
    tags: [3.5.15-0]
  - repository: {src.host}/kube-proxy
    semver: '~1.30'
"""
    )
    bundle = tmp_path / "bundle.tar"

    saved = run_cli("save", "-f", str(sync_file), "-o", str(bundle), "--json")

    assert saved.returncode == 0, saved.stderr
    report = json.loads(saved.stdout.splitlines()[-1])
    assert {i["source"]: i["digest"] for i in report["images"]} == sources
    lines = loaded.load(bundle, *sources)
    assert sorted(lines) == sorted(f"Loaded image: {name}" for name in sources)
    loaded.ctr_import(bundle, *sources)
    for name, digest in sources.items():
        assert loaded.ctr_digest(name) == digest

    pushed = run_cli(
        "push", str(bundle), "--to", f"{dst.host}/mirror", "--dest-creds", "pusher:pushpass"
    )

    assert pushed.returncode == 0, pushed.stderr
    for name, image in images.items():
        assert skopeo_digest(f"{dst.host}/mirror/{name}", dst, creds=PUSHER) == image.digest
    # sync names images the same way: everything the archive brought is already there
    again = run_cli("sync", str(sync_file), "--dest-creds", "pusher:pushpass", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout.splitlines()[-1])["unchanged"] == 5


def test_copy_to_a_prefix_uses_the_naming_rule(registry_factory: RegistryFactory, tmp_path):
    src = registry_factory(name="src")
    dst = registry_factory(name="dst")
    image = make_image(marker="prefix")
    with Seeder(src) as client:
        client.push_image("coredns/coredns", image, "v1.11.1")

    done = run_cli("copy", f"{src.host}/coredns/coredns:v1.11.1", f"{dst.host}/k8s/", "--json")

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["destination"] == f"{dst.host}/k8s/coredns/coredns:v1.11.1"
    assert skopeo_digest(f"{dst.host}/k8s/coredns/coredns:v1.11.1", dst) == image.digest
    wide = {**os.environ, "COLUMNS": "300"}
    bad = run_cli("push", str(tmp_path / "x.tar"), "--to", "nohost", env=wide)
    assert bad.returncode == 2
    assert "does not start with a registry host" in bad.stderr


def test_save_f_takes_each_entrys_platforms(registry_factory: RegistryFactory, tmp_path):
    """Entries asking for different platforms each get theirs in one archive; --platform,
    when given, applies to every image instead."""
    src = registry_factory(name="src")
    arches = ("linux/amd64", "linux/arm64")
    with Seeder(src) as client:
        for repo in ("coredns", "etcd"):
            index = make_index([make_image(platform=p, marker=f"{repo}-{p}") for p in arches])
            seed_index(client, repo, index)
    sync_file = tmp_path / "mixed.yaml"
    sync_file.write_text(
        f"""\
defaults: {{to: mirror.corp/k8s}}
images:
  - image: {src.host}/coredns:1.0
    platforms: [linux/arm64]
  - image: {src.host}/etcd:1.0
    platforms: [linux/amd64, linux/arm64]
"""
    )

    mixed = run_cli("save", "-f", str(sync_file), "-o", str(tmp_path / "a.tar"), "--json")
    forced = run_cli(
        "save", "-f", str(sync_file), "-o", str(tmp_path / "b.tar"), "--json",
        "--platform", "linux/amd64",
    )  # fmt: skip

    assert mixed.returncode == 0, mixed.stderr
    by_repo = {i["source"].split("/")[-1]: i["platforms"]
               for i in json.loads(mixed.stdout.splitlines()[-1])["images"]}  # fmt: skip
    assert by_repo == {"coredns:1.0": ["linux/arm64"], "etcd:1.0": list(arches)}
    assert forced.returncode == 0, forced.stderr
    images = json.loads(forced.stdout.splitlines()[-1])["images"]
    assert [i["platforms"] for i in images] == [["linux/amd64"], ["linux/amd64"]]


def seed_index(client: Seeder, repo: str, index: Index) -> None:
    for image in index.images:
        client.push_image(repo, image)
    client.push_manifest(repo, "1.0", index.manifest, index.media_type)
