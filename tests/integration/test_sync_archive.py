"""Archives from a sync file: save -f, docker load + ctr import, push --to, then sync agrees."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from tests.integration.test_save import Loaded
from tests.support.docker import DockerEngine
from tests.support.images import host_platform, make_image, pause_image
from tests.support.registry import RegistryFactory
from tests.support.seed import RegistryClient as Seeder
from tests.support.tools import run_cli, skopeo_digest

pytestmark = [pytest.mark.registry, pytest.mark.skopeo, pytest.mark.docker]

PUSHER = ("pusher", "pushpass")


@pytest.fixture
def loaded(docker_engine: DockerEngine) -> Iterator[Loaded]:
    state = Loaded(docker_engine)
    try:
        yield state
    finally:
        state.cleanup()


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
