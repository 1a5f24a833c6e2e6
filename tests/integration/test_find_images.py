"""imgmirror find-images from the command line: files, stdin, kustomize, charts, kubeadm, and
what it writes read back by the real sync (a real registry at each end)."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import textwrap
from pathlib import Path

import pytest

import imgmirror
from imgmirror.findimages.inputs import NO_HELM
from imgmirror.syncing.file import parse_image_list, parse_sync_file
from tests.support.images import make_image
from tests.support.registry import Registry, RegistryFactory
from tests.support.seed import seed
from tests.support.tools import require_tool, run_cli

APP = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  template:
    spec:
      initContainers:
      - name: init
        image: busybox:1.36
      containers:
      - name: web
        image: {web}
        env:
        - name: SIDECAR_IMAGE
          value: {sidecar}
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def manifest(
    tmp_path: Path, web: str = "quay.io/shop/web:1.4", sidecar: str = "quay.io/shop/sidecar:2"
) -> Path:
    return write(tmp_path / "app.yaml", APP.format(web=web, sidecar=sidecar))


def test_files_directories_and_stdin_sorted_with_why(tmp_path):
    manifest(tmp_path / "dir")
    write(tmp_path / "dir" / "sub" / "job.json", json.dumps({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate"},
        "spec": {"template": {"spec": {"containers": [
            {"name": "m", "image": "ghcr.io/shop/migrate:7"}]}}}}))  # fmt: skip
    write(
        tmp_path / "dir" / ".git" / "x.yaml",
        "kind: Pod\nspec: {containers: [{name: x, image: quay.io/hidden/x:1}]}\n",
    )
    stdin = "kind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a, image: nginx:1.25}]\n"
    done = run_cli("find-images", str(tmp_path / "dir"), "-", "--why", stdin=stdin)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line for line in lines if not line.startswith(" ")] == [
        "busybox:1.36",
        "ghcr.io/shop/migrate:7",
        "nginx:1.25",
        "quay.io/shop/sidecar:2",
        "quay.io/shop/web:1.4",
    ]
    app = tmp_path / "dir" / "app.yaml"
    assert (
        f"  # from {app}:14 Deployment/shop/web spec.template.spec.containers[web].image" in lines
    )
    assert "  # from <stdin>:4 Pod/p spec.containers[a].image" in lines
    # --why output is still a list sync reads: the source lines are comments
    spec = parse_image_list(done.stdout, "<stdin>", to="reg.corp/m")
    assert len(spec.entries) == 5


def test_json_output_shape_and_errors_that_do_not_stop_other_inputs(tmp_path):
    good = manifest(tmp_path)
    bad = write(tmp_path / "bad.yaml", "kind: Pod\nmetadata: {name: [oops\n")
    hinted = write(
        tmp_path / "hint.yaml", "kind: Widget\nmetadata: {name: w}\nspec: {image: corp/tool:1}\n"
    )
    done = run_cli(
        "find-images", str(bad), str(good), str(hinted), str(tmp_path / "none.yaml"), "--json"
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert sorted(report) == ["errors", "hints", "images", "notes", "pause", "written"]
    assert [i["image"] for i in report["images"]] == [
        "busybox:1.36", "quay.io/shop/sidecar:2", "quay.io/shop/web:1.4"]  # fmt: skip
    web = report["images"][2]
    assert web["direct"] is True
    where = "spec.template.spec.containers[web].image"
    assert web["sources"] == [{"file": str(good), "line": 14, "kind": "Deployment",
                               "name": "shop/web", "path": where, "direct": True,
                               "digest": None}]  # fmt: skip
    assert report["images"][1]["direct"] is False
    assert [e["where"] for e in report["errors"]] == [f"{bad}:2", str(tmp_path / "none.yaml")]
    assert report["hints"][0]["text"] == "corp/tool:1"
    assert f"imgmirror: error: {bad}:2: YAML syntax error" in done.stderr


def test_nothing_found_exits_1_and_usage_errors_exit_2(tmp_path):
    empty = write(tmp_path / "svc.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n")
    done = run_cli("find-images", str(empty))
    assert (done.returncode, done.stdout) == (1, "")
    assert "no image found" in done.stderr
    assert run_cli("find-images").returncode == 2
    assert run_cli("find-images", str(empty), "--prune").returncode == 2


def test_a_kustomization_directory_is_built_with_kubectl(tmp_path):
    require_tool("kubectl")
    base = tmp_path / "base"
    manifest(base)
    write(base / "kustomization.yaml", """\
        resources: [app.yaml]
        images:
        - name: quay.io/shop/web
          newTag: "1.5"
        """)  # fmt: skip
    done = run_cli("find-images", str(base), "--why")
    assert done.returncode == 0, done.stderr
    assert "quay.io/shop/web:1.5" in done.stdout.splitlines()
    assert "quay.io/shop/web:1.4" not in done.stdout
    assert f"# from {base} (kubectl kustomize):" in done.stdout


def _path_without(*tools: str) -> str:
    """A PATH with the Python running the tests and none of ``tools``."""
    keep = []
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if not any((Path(folder) / tool).exists() for tool in tools):
            keep.append(folder)
    return os.pathsep.join(keep)


def test_without_kubectl_a_kustomization_is_an_error_that_says_so(tmp_path):
    base = tmp_path / "base"
    manifest(base)
    write(base / "kustomization.yaml", "resources: [app.yaml]\n")
    env = {**os.environ, "PATH": _path_without("kubectl")}
    done = run_cli("find-images", str(base), str(manifest(tmp_path, web="quay.io/x/y:1")), env=env)
    assert f"imgmirror: error: {base}: a kustomization, and kubectl is not on PATH" in done.stderr
    assert "quay.io/x/y:1" in done.stdout.splitlines()


CHART_VALUES = """\
image:
  registry: docker.io
  repository: bitnami/redis
  tag: 7.2.4-debian-12-r9
metrics:
  image: {repository: quay.io/oliver006/redis_exporter, tag: v1.58.0}
kubectl:
  image:
    repository: registry.k8s.io/kubectl
    tag: ""
"""


@pytest.mark.parametrize("packed", [False, True])
def test_without_helm_a_chart_s_values_are_walked_and_the_note_says_so(tmp_path, packed):
    chart = tmp_path / "redis"
    write(chart / "Chart.yaml", "apiVersion: v2\nname: redis\nversion: 19.0.0\nappVersion: 7.2.4\n")
    write(chart / "values.yaml", CHART_VALUES)
    write(chart / "templates" / "deploy.yaml", "image: {{ .Values.image.repository }}\n")
    target = chart
    if packed:
        target = tmp_path / "redis-19.0.0.tgz"
        with tarfile.open(target, "w:gz") as archive:
            archive.add(chart, arcname="redis")
        shutil.rmtree(chart)
    env = {**os.environ, "PATH": _path_without("helm")}
    done = run_cli("find-images", str(target), env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "docker.io/bitnami/redis:7.2.4-debian-12-r9",
        "quay.io/oliver006/redis_exporter:v1.58.0",
    ]
    assert f"imgmirror: note: {target}: {NO_HELM}" in done.stderr
    assert "registry.k8s.io/kubectl:7.2.4" in done.stderr  # a hint, with the appVersion
    assert "set kubectl.image.tag" in done.stderr


def test_kubeadm_list_and_the_pause_image_checked_against_containerd(tmp_path):
    listing = (
        "registry.k8s.io/kube-apiserver:v1.31.0\nregistry.k8s.io/pause:3.10\n"
        "registry.k8s.io/etcd:3.5.15-0\n"
    )
    config = write(tmp_path / "config.toml", """\
        version = 2
        [plugins."io.containerd.grpc.v1.cri"]
          sandbox_image = "registry.k8s.io/pause:3.8"
        """)  # fmt: skip
    done = run_cli(
        "find-images", "--kubeadm", "-", "--node-config", str(config), "--json", stdin=listing
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [i["image"] for i in report["images"]] == sorted(listing.split())
    assert report["images"][1]["sources"][0]["kind"] == "kubeadm"
    assert report["pause"]["status"] == "tag"
    assert report["pause"]["configured"] == "registry.k8s.io/pause:3.8"
    text = run_cli("find-images", "--kubeadm", "-", "--node-config", str(config), stdin=listing)
    assert "imgmirror: pause image warning: containerd 1.x uses registry.k8s.io/pause:3.8, " \
        "kubeadm names registry.k8s.io/pause:3.10" in text.stderr  # fmt: skip


def test_the_library_gives_the_same_images(tmp_path):
    path = manifest(tmp_path)
    found = imgmirror.find_images([path])
    assert [i.image for i in found] == [
        "busybox:1.36",
        "quay.io/shop/sidecar:2",
        "quay.io/shop/web:1.4",
    ]
    assert isinstance(found[0], imgmirror.FoundImage)
    assert found[2].sources[0].line == 14


@pytest.fixture
def ends(registry_factory: RegistryFactory) -> tuple[Registry, Registry]:
    return registry_factory(name="src"), registry_factory(name="dst")


@pytest.mark.registry
def test_the_sync_file_it_writes_and_merges_is_what_sync_runs(tmp_path, ends):
    src, dst = ends
    web = seed(src, "shop/web", "1.4", make_image(marker="web"))
    seed(src, "shop/sidecar", "2", make_image(marker="sidecar"))
    path = manifest(tmp_path, web=f"{src.host}/shop/web:1.4", sidecar=f"{src.host}/shop/sidecar:2")
    # busybox (Docker Hub) is out of reach here: only the loopback registry's images
    path.write_text(
        path.read_text().replace("image: busybox:1.36", f"image: {src.host}/shop/web:1.4")
    )
    sync_file = tmp_path / "mirror.yaml"
    done = run_cli("find-images", str(path), "--sync-file", str(sync_file), "--to", f"{dst.host}/m")
    assert done.returncode == 0, done.stderr
    parse_sync_file(sync_file.read_text(), str(sync_file))
    sync_file.write_text(sync_file.read_text().replace("images:", "images:  # hand-written note"))
    again = run_cli("find-images", str(path), "--sync-file", str(sync_file))
    assert again.returncode == 0, again.stderr
    assert "# hand-written note" in sync_file.read_text()
    assert sync_file.read_text().count("shop/web:1.4") == 1
    dry = run_cli("sync", str(sync_file), "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr + dry.stdout
    results = [json.loads(line) for line in dry.stdout.splitlines()[:-1]]
    assert sorted((r["action"], r["destination"]) for r in results) == [
        ("would-copy", f"{dst.host}/m/shop/sidecar:2"),
        ("would-copy", f"{dst.host}/m/shop/web:1.4"),
    ]
    assert next(r["digest"] for r in results if "web" in r["source"]) == web


@pytest.mark.registry
def test_the_lock_pins_the_sync_to_the_digest_a_tag_had(tmp_path, ends):
    src, dst = ends
    first = seed(src, "shop/web", "1.4", make_image(marker="first"))
    path = manifest(tmp_path, web=f"{src.host}/shop/web:1.4", sidecar=f"{src.host}/shop/web:1.4")
    path.write_text(
        path.read_text().replace("image: busybox:1.36", f"image: {src.host}/shop/web:1.4")
    )
    lock, sync_file = tmp_path / "images.lock", tmp_path / "mirror.yaml"
    done = run_cli("find-images", str(path), "--lock", str(lock), "--sync-file", str(sync_file),
                   "--to", f"{dst.host}/m")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert lock.read_text().splitlines() == [
        "# imgmirror lock v1",
        f"{src.host}/shop/web:1.4@{first}",
    ]
    seed(src, "shop/web", "1.4", make_image(marker="moved"))  # the tag moves on
    synced = run_cli("sync", str(sync_file), "--lock", str(lock), "--json")
    assert synced.returncode == 0, synced.stderr + synced.stdout
    result = json.loads(synced.stdout.splitlines()[0])
    assert (result["action"], result["digest"]) == ("copied", first)
    assert result["destination"] == f"{dst.host}/m/shop/web:1.4@{first}"
    plain = run_cli("sync", "--images", str(lock), "--to", f"{dst.host}/n", "--json")
    assert plain.returncode == 0, plain.stderr
    assert json.loads(plain.stdout.splitlines()[0])["digest"] == first


@pytest.mark.registry
def test_a_lock_is_not_written_when_a_tag_does_not_resolve(tmp_path, anon_registry):
    path = manifest(
        tmp_path,
        web=f"{anon_registry.host}/shop/missing:1",
        sidecar=f"{anon_registry.host}/shop/missing:1",
    )
    lock = tmp_path / "images.lock"
    done = run_cli("find-images", str(path), "--lock", str(lock))
    assert done.returncode == 1
    assert not lock.exists()
    assert f"{anon_registry.host}/shop/missing:1: " in done.stderr
