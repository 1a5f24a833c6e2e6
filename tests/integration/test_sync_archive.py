"""Archives from a sync file: save -f, docker load + ctr import, push --to, then sync agrees."""

from __future__ import annotations

import json
import os
import tarfile

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


def archive_index(path) -> dict[str, str]:
    """``{io.containerd.image.name: digest}`` of an archive's ``index.json``."""
    with tarfile.open(path) as tar:
        handle = tar.extractfile("index.json")
        assert handle is not None
        entries = json.load(handle)["manifests"]
    names = {
        e["annotations"]["io.containerd.image.name"]: e["digest"]
        for e in entries
        if "io.containerd.image.name" in e.get("annotations", {})
    }
    # each image is also named by its registry digest (repo@digest), for a runtime's lookups
    by_digest = {n: d for n, d in names.items() if "@" in n}
    assert all(n.endswith("@" + d) for n, d in by_digest.items()), by_digest
    return {n: d for n, d in names.items() if "@" not in n}


def test_a_bundle_round_trips_whole_multi_arch_digests_and_all(
    registry_factory: RegistryFactory, pause_binary, loaded, tmp_path
):
    """save -f keeps every platform (index.json the registry's index, manifest.json this
    machine's image for docker load); push --to restores the same digests, reports each
    image and is idempotent; sync then finds everything unchanged; save -f --from reads the
    same bundle from a mirror with the public source gone."""
    src = registry_factory(auth="token", name="src")
    dst = registry_factory(auth="token", name="dst", anonymous_pull=False)
    mirror = registry_factory(name="mirror")
    here = host_platform()
    other = "linux/arm64" if str(here) != "linux/arm64" else "linux/amd64"
    multi = make_index([pause_image(pause_binary, marker="multi"),
                        make_image(platform=other, marker="multi-other")])  # fmt: skip
    with Seeder(src, PUSHER) as client:
        seed_index(client, "pause", multi)  # pause:1.0
        client.push_image("etcd", make_image(platform=here, marker="etcd"), "3.5.15-0")
        client.push_image("etcd", make_image(platform=here, marker="etcd-old"), "3.4.0-0")
    etcd = f"{src.host}/etcd:3.5.15-0"
    digests = {f"{src.host}/pause:1.0": multi.digest, etcd: skopeo_digest(etcd, src)}
    sync_file = tmp_path / "k8s.yaml"
    sync_file.write_text(
        f"defaults: {{to: {dst.host}/mirror}}\nimages:\n  - {src.host}/pause:1.0\n"
        f"  - repository: {src.host}/etcd\n    tags-regex: '^3\\.5\\.'\n"
    )
    bundle = tmp_path / "bundle.tar"

    saved = run_cli("save", "-f", str(sync_file), "-o", str(bundle), "--json")

    assert saved.returncode == 0, saved.stderr
    assert archive_index(bundle) == digests  # the index itself, every platform
    images = {i["source"]: i for i in json.loads(saved.stdout.splitlines()[-1])["images"]}
    assert sorted(images[f"{src.host}/pause:1.0"]["platforms"]) == sorted([str(here), other])
    assert loaded.load(bundle, *digests) == [f"Loaded image: {n}" for n in digests]
    loaded.run(f"{src.host}/pause:1.0")  # this machine's image of the index, and it runs

    pushed = run_cli("push", str(bundle), "--to", f"{dst.host}/mirror", "--dest-creds",
                     "pusher:pushpass", "--json")  # fmt: skip
    again = run_cli("push", str(bundle), "--to", f"{dst.host}/mirror", "--dest-creds",
                    "pusher:pushpass", "--json")  # fmt: skip

    assert pushed.returncode == 0, pushed.stderr
    assert {i["state"] for i in json.loads(pushed.stdout)["images"]} == {"pushed"}
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout)
    assert {i["state"] for i in second["images"]} == {"unchanged"}
    assert (second["blobs_uploaded"], second["blobs_skipped"]) == (0, 0)  # nothing re-sent
    for name, digest in digests.items():
        at_dst = name.replace(src.host, f"{dst.host}/mirror")
        assert skopeo_digest(at_dst, dst, creds=PUSHER) == digest
    check = run_cli("sync", str(sync_file), "--check", "--dest-creds", "pusher:pushpass")
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.startswith("sync --check: in sync; 2 in sync, 0 failed")

    # inside the corporate network: the same bundle from a mirror, the public source gone
    assert run_cli("sync", str(sync_file), "--to", f"{mirror.host}/m").returncode == 0
    src.stop()
    again_bundle = tmp_path / "from-mirror.tar"
    inside = run_cli("save", "-f", str(sync_file), "--from", f"{mirror.host}/m",
                     "-o", str(again_bundle))  # fmt: skip
    assert inside.returncode == 0, inside.stderr
    assert archive_index(again_bundle) == digests  # named as the file names them
