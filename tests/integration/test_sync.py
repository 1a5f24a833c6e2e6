"""imgmirror sync against two real registries with token auth, skopeo as the oracle."""

from __future__ import annotations

import base64
import json
import os
from collections import Counter
from pathlib import Path

import pytest

import imgmirror.api.sync
from imgmirror.syncing.report import SyncReport
from tests.support.accesslog import log_offset, requests_since
from tests.support.images import make_image, multiarch_docker_list
from tests.support.registry import Registry, RegistryFactory
from tests.support.seed import RegistryClient as Seeder
from tests.support.seed import seed
from tests.support.tools import run_cli, skopeo_digest

pytestmark = [pytest.mark.registry, pytest.mark.skopeo]

PUSHER = ("pusher", "pushpass")
K8S_TAGS = ["v1.29.9", "v1.30.0", "v1.30.1-rc.0", "v1.30.2", "v1.31.0-alpha.1", "v1.31.1"]
ALPINE_TAGS = ["3.17", "3.18", "3.18.4", "3.19", "3.20", "3.20.3", "3.21", "edge"]


@pytest.fixture
def ends(registry_factory: RegistryFactory) -> tuple[Registry, Registry]:
    """A source and a destination, both with token auth (anonymous pull at the source)."""
    return (
        registry_factory(auth="token", name="src"),
        registry_factory(auth="token", name="dst", anonymous_pull=False),
    )


def put(registry: Registry, repo: str, tag: str, marker: str | None = None) -> str:
    return seed(registry, repo, tag, make_image(marker=marker or f"{repo}:{tag}"), creds=PUSHER)


def put_tags(registry: Registry, repo: str, tags: list[str], marker: str = "") -> str:
    """One image under several tags (a registry write costs ~40 ms here: seed sparingly)."""
    image = make_image(marker=marker or repo)
    with Seeder(registry, PUSHER) as client:
        client.push_image(repo, image)
        for tag in tags:
            client.push_manifest(repo, tag, image.manifest, image.media_type)
    return image.digest


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sync.yaml"
    path.write_text(text)
    return path


def run_sync(path: Path, *args: str) -> tuple[int, list[dict[str, object]], str]:
    done = run_cli("sync", str(path), "--dest-creds", "pusher:pushpass", "--json", *args)
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    return done.returncode, lines, done.stderr


def copied(report: SyncReport) -> set[str]:
    return {r.destination for r in report.results if r.action == "copied"}


def test_every_selector_digests_kept(ends, tmp_path):
    src, dst = ends
    s = src.host
    expected = {
        f"{dst.host}/mirror/pause:3.9": put(src, "pause", "3.9"),
        f"{dst.host}/k8s/coredns:v1.11.1": put(src, "coredns/coredns", "v1.11.1"),
    }
    digest = put_tags(src, "kube-apiserver", K8S_TAGS)
    for tag in ("v1.30.0", "v1.30.2", "v1.31.1"):
        expected[f"{dst.host}/mirror/kube-apiserver:{tag}"] = digest
    digest = put_tags(src, "library/alpine", ALPINE_TAGS)
    for tag in ("3.20.3", "3.20", "3.19"):
        expected[f"{dst.host}/mirror/{s.replace(':', '_')}/library/alpine:{tag}"] = digest
    digest = put_tags(src, "prometheus/node-exporter", ["1.7.0", "1.8.2"])
    for tag in ("1.7.0", "1.8.2"):
        expected[f"{dst.host}/mirror/prometheus/node-exporter:{tag}"] = digest
    digest = put_tags(src, "etcd", ["3.5.12-0", "3.5.15-0", "3.5.16-0"])
    for tag in ("3.5.12-0", "3.5.15-0"):
        expected[f"{dst.host}/mirror/etcd:{tag}"] = digest
    index = multiarch_docker_list("multi")
    seed(src, "multi", "1", index, creds=PUSHER)
    arm = index.image_for("linux/arm64")
    expected[f"{dst.host}/mirror/multi:1"] = arm.digest
    path = write(
        tmp_path,
        f"""\
defaults:
  to: {dst.host}/mirror
images:
  - {s}/pause:3.9
  - image: {s}/coredns/coredns:v1.11.1
    to: {dst.host}/k8s/coredns:v1.11.1
  - repository: {s}/kube-apiserver
    tags-regex: '^v1\\.3[01]\\.'
    exclude-regex: '-(rc|alpha|beta)'
  - repository: {s}/library/alpine
    semver: '>=3.18 <3.21'
    newest: 3
    keep-registry: true
  - repository: {s}/prometheus/node-exporter
    all-tags: true
  - repository: {s}/etcd
    tags: [3.5.12-0, 3.5.15-0]
  - image: {s}/multi:1
    platforms: [linux/arm64]
""",
    )

    status, lines, stderr = run_sync(path)

    assert status == 0, stderr
    *images, summary = lines
    assert {line["destination"]: line["digest"] for line in images} == expected
    assert {line["action"] for line in images} == {"copied"}
    assert summary["copied"] == len(expected)
    assert summary["failed"] == 0
    for destination, digest in expected.items():
        assert skopeo_digest(destination, dst, creds=PUSHER) == digest


def seed_set(src: Registry, count: int) -> list[str]:
    """``count`` tags 1.0.<i> spread over repositories app0..app2 (one image per repository)."""
    names = []
    for repo in range(3):
        tags = [f"1.0.{i}" for i in range(count) if i % 3 == repo]
        put_tags(src, f"app{repo}", tags)
        names += [f"app{repo}:{tag}" for tag in tags]
    return names


def test_noop_rerun_is_two_manifest_heads_per_tag(ends, tmp_path):
    src, dst = ends
    seed_set(src, 9)
    put(src, "solo", "1")
    path = write(
        tmp_path,
        f"""\
defaults: {{to: {dst.host}/m}}
images:
  - {src.host}/solo:1
  - repository: {src.host}/app0
    all-tags: true
  - repository: {src.host}/app1
    semver: '>=1.0.0'
  - repository: {src.host}/app2
    tags: [1.0.2, 1.0.5, 1.0.8]
""",
    )
    first = imgmirror.api.sync.sync(path, dest_creds=PUSHER)
    assert first.copied == 10
    assert first.ok
    marks = {r.name: log_offset(r) for r in (src, dst)}

    again = imgmirror.api.sync.sync(path, dest_creds=PUSHER)

    assert again.unchanged == 10
    assert again.copied == 0
    assert again.bytes_copied == 0
    seen = [q for r in (src, dst) for q in requests_since(r, marks[r.name])]
    kinds = Counter((q.method, q.kind) for q in seen)
    assert kinds[("HEAD", "manifests")] <= 2 * 10
    assert kinds[("GET", "manifests")] == 0
    assert not [q for q in seen if q.kind in ("blobs", "uploads")]
    assert kinds[("GET", "tags")] == 2  # app0 and app1; a plain tags: list is not listed
    assert set(kinds) <= {("HEAD", "manifests"), ("GET", "tags"), ("GET", "ping")}


def test_moved_tag_recopied_new_tag_arrives_nothing_else_moves(ends, tmp_path):
    src, dst = ends
    for tag in ("v1.30.0", "v1.30.1", "v1.29.0"):
        put(src, "api", tag)
    put(src, "pause", "3.9")
    path = write(
        tmp_path,
        f"""\
defaults: {{to: {dst.host}/m}}
images:
  - {src.host}/pause:3.9
  - repository: {src.host}/api
    tags-regex: '^v1\\.30\\.'
""",
    )
    first_pause = skopeo_digest(f"{src.host}/pause:3.9", src)
    assert copied(imgmirror.api.sync.sync(path, dest_creds=PUSHER)) == {
        f"{dst.host}/m/pause:3.9", f"{dst.host}/m/api:v1.30.0", f"{dst.host}/m/api:v1.30.1",
    }  # fmt: skip
    moved = put(src, "pause", "3.9", marker="rebuilt")
    new = put(src, "api", "v1.30.2")
    put(src, "api", "v1.31.0")  # does not match the regex

    again = imgmirror.api.sync.sync(path, dest_creds=PUSHER)

    assert copied(again) == {f"{dst.host}/m/api:v1.30.2"}
    (moved_result,) = [r for r in again.results if r.action == "moved"]
    assert moved_result.destination == f"{dst.host}/m/pause:3.9"
    assert moved_result.digest == moved
    assert moved_result.old_digest == first_pause
    assert again.unchanged == 2
    assert skopeo_digest(f"{dst.host}/m/pause:3.9", dst, creds=PUSHER) == moved
    assert skopeo_digest(f"{dst.host}/m/api:v1.30.2", dst, creds=PUSHER) == new


def test_one_entry_failing_the_others_succeed(ends, tmp_path):
    src, dst = ends
    put(src, "pause", "3.9")
    put(src, "etcd", "3.5.15-0")
    path = write(
        tmp_path,
        f"""\
defaults: {{to: {dst.host}/m}}
images:
  - {src.host}/pause:3.9
  - repository: {src.host}/does-not-exist
    all-tags: true
  - {src.host}/etcd:3.5.15-0
  - {src.host}/etcd:9.9.9
""",
    )
    done = run_cli("sync", str(path), "--dest-creds", "pusher:pushpass")

    assert done.returncode == 1
    assert "sync: 2 copied, 0 unchanged, 2 failed" in done.stdout
    errors = [line for line in done.stderr.splitlines() if line.startswith("imgmirror: error:")]
    assert len(errors) == 2
    assert f"source repository {src.host}/does-not-exist does not exist" in errors[0]
    assert "sync.yaml:4" in errors[0]
    assert f"{src.host}/etcd:9.9.9" in errors[1]
    assert "Traceback" not in done.stderr
    assert skopeo_digest(f"{dst.host}/m/pause:3.9", dst, creds=PUSHER)


def test_fail_fast_stops_at_the_first_failure(ends, tmp_path):
    src, dst = ends
    names = [f"{src.host}/img:missing"] + [f"{src.host}/img:{i}" for i in range(1, 6)]
    put_tags(src, "img", [str(i) for i in range(1, 6)])
    lines = "\n".join(f"  - {n}" for n in names)
    path = write(tmp_path, f"defaults: {{to: {dst.host}/m}}\nimages:\n{lines}\n")

    status, out, _ = run_sync(path, "--fail-fast", "--jobs", "1")

    assert status == 1
    assert out[0]["action"] == "missing-at-source"
    assert out[-1]["failed"] == 1
    assert out[-1]["copied"] == 0


def test_shards_together_copy_the_whole_set_once(ends, tmp_path):
    src, dst = ends
    names = seed_set(src, 12)
    lines = "\n".join(f"  - {src.host}/{name}" for name in names)
    path = write(tmp_path, f"defaults: {{to: {dst.host}/m/}}\nimages:\n{lines}\n")
    # what shard 1 holds, as a Kubernetes Indexed Job pod sees it (dry run: nothing written)
    env = {**os.environ, "JOB_COMPLETION_INDEX": "1"}
    pod = run_cli(
        "sync",
        str(path),
        "--shards",
        "3",
        "--dry-run",
        "--json",
        "--dest-creds",
        "pusher:pushpass",
        env=env,
    )
    assert pod.returncode == 0, pod.stderr
    pod_sources = {json.loads(line)["source"] for line in pod.stdout.splitlines()[:-1]}
    seen: list[str] = []
    for index in range(3):
        report = imgmirror.api.sync.sync(path, shard=f"{index}/3", dest_creds=PUSHER)
        assert report.ok
        seen += [r.source for r in report.results if r.action == "copied"]
        if index == 1:
            assert {r.source for r in report.results} == pod_sources
    assert sorted(seen) == sorted(f"{src.host}/{name}" for name in names)
    outside = run_cli("sync", str(path), "--shards", "3", env={**os.environ})
    assert outside.returncode == 2
    assert "JOB_COMPLETION_INDEX" in outside.stderr


def test_dry_run_writes_nothing_and_images_list_from_stdin(ends, tmp_path):
    src, dst = ends
    put(src, "pause", "3.9")
    put(src, "etcd", "3.5.15-0")
    listing = f"# kubeadm config images list\n{src.host}/pause:3.9\n\n{src.host}/etcd:3.5.15-0\n"
    mark = log_offset(dst)
    args = ["--to", f"{dst.host}/k8s", "--dest-creds", "pusher:pushpass"]

    dry = run_cli("sync", "--images", "-", *args, "--dry-run", stdin=listing)

    assert dry.returncode == 0, dry.stderr
    assert "sync: 2 would copy, 0 unchanged, 0 failed (dry run: nothing written)" in dry.stdout
    assert {q.method for q in requests_since(dst, mark)} <= {"GET", "HEAD"}
    real = run_cli("sync", "--images", "-", *args, stdin=listing)
    assert real.returncode == 0, real.stderr
    assert f"copied    {src.host}/pause:3.9 -> {dst.host}/k8s/pause:3.9" in real.stdout
    again = run_cli("sync", "--images", "-", *args, "--dry-run", stdin=listing)
    assert "sync: 0 would copy, 2 unchanged" in again.stdout


def test_bad_file_refused_before_anything_is_contacted(ends, tmp_path):
    src, dst = ends
    path = write(
        tmp_path,
        f"defaults: {{to: {dst.host}/m}}\nimages:\n  - {src.host}/a:1\n"
        f"  - repository: {src.host}/b\n    semver: '>=1.x.y'\n",
    )
    marks = (log_offset(src), log_offset(dst))

    done = run_cli("sync", str(path))

    assert done.returncode == 1
    assert done.stderr.startswith(f"imgmirror: error: {path}:5: semver range")
    assert "Traceback" not in done.stderr
    assert (log_offset(src), log_offset(dst)) == marks


def test_authfile_key_in_defaults_gives_the_destination_credentials(ends, tmp_path):
    src, dst = ends
    digest = put(src, "pause", "3.9")
    token = base64.b64encode(b"pusher:pushpass").decode()
    (tmp_path / "auth.json").write_text(json.dumps({"auths": {dst.host: {"auth": token}}}))
    path = write(
        tmp_path,
        f"defaults:\n  to: {dst.host}/m\n  authfile: auth.json\n"
        f"images:\n  - {src.host}/pause:3.9\n",
    )
    empty = tmp_path / "home"
    empty.mkdir()
    env = {**os.environ, "HOME": str(empty), "DOCKER_CONFIG": str(empty),
           "REGISTRY_AUTH_FILE": str(empty / "none.json")}  # fmt: skip

    done = run_cli("sync", str(path), "--json", env=env)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[0])["digest"] == digest
    assert skopeo_digest(f"{dst.host}/m/pause:3.9", dst, creds=PUSHER) == digest
