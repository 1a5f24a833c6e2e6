"""``node-config`` against the real runtimes: containerd's resolver and podman pull through the
generated files from a TLS mirror with a path prefix while the source registry is stopped."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import imgmirror
from tests.support.docker import DockerEngine
from tests.support.images import Image, make_image
from tests.support.registry import Registry
from tests.support.seed import seed
from tests.support.tools import require_tool, run_cli

pytestmark = [pytest.mark.registry]


def _mirrored(source: Registry, mirror: Registry, prefix: str) -> Image:
    """The same image at source/test/pause:3.9 and mirror/prefix/test/pause:3.9; the source
    is then stopped, so only the mirror can serve it."""
    image = make_image(marker=f"node-{uuid.uuid4().hex[:8]}")
    seed(source, "test/pause", "3.9", image)
    seed(mirror, f"{prefix}/test/pause", "3.9", image)
    source.stop()
    return image


@pytest.fixture
def ctr_namespace(docker_engine: DockerEngine) -> Iterator[str]:
    """A throwaway containerd namespace on dockerd's containerd, emptied and removed after."""
    namespace = f"imgmirror-test-{uuid.uuid4().hex[:10]}"
    try:
        yield namespace
    finally:
        listed = docker_engine.ctr("images", "ls", "-q", namespace=namespace, check=False)
        refs = listed.stdout.split()
        if refs:
            docker_engine.ctr("images", "rm", "--sync", *refs, namespace=namespace, check=False)
        docker_engine.ctr("namespaces", "rm", namespace, check=False)


@pytest.mark.docker
def test_containerd_pulls_from_the_tls_mirror_through_hosts_toml(
    anon_registry: Registry,
    tls_registry: Registry,
    docker_engine: DockerEngine,
    ctr_namespace: str,
    tmp_path: Path,
):
    image = _mirrored(anon_registry, tls_registry, "k8s")
    out = tmp_path / "etc"
    config = imgmirror.node_config(
        [f"{anon_registry.host}=https://{tls_registry.host}/k8s"],
        ca_file=tls_registry.ca_file,
        runtimes=["containerd"],
        output=out,
    )
    hosts = out / "containerd" / "certs.d" / anon_registry.host / "hosts.toml"
    assert hosts.read_bytes() == config[f"containerd/certs.d/{anon_registry.host}/hosts.toml"]
    assert 'ca = "ca.crt"' in hosts.read_text()  # relative: the tree works wherever installed
    installed = tmp_path / "elsewhere"
    (out / "containerd").rename(installed)

    ref = f"{anon_registry.host}/test/pause:3.9"
    pulled = docker_engine.ctr(
        "images", "pull", "--hosts-dir", str(installed / "certs.d"), ref, namespace=ctr_namespace
    )

    assert pulled.returncode == 0
    listed = docker_engine.ctr("images", "ls", namespace=ctr_namespace).stdout
    line = next(ln for ln in listed.splitlines() if ln.startswith(ref))
    assert image.digest in line
    assert not anon_registry.running


@pytest.mark.docker
def test_containerd_without_the_ca_entry_refuses_the_mirror(
    anon_registry: Registry,
    tls_registry: Registry,
    docker_engine: DockerEngine,
    ctr_namespace: str,
    tmp_path: Path,
):
    """The check above is real: without the generated CA the same pull fails."""
    _mirrored(anon_registry, tls_registry, "k8s")
    out = tmp_path / "etc"
    imgmirror.node_config(
        [f"{anon_registry.host}={tls_registry.host}/k8s"], runtimes=["containerd"], output=out
    )
    ref = f"{anon_registry.host}/test/pause:3.9"
    pulled = docker_engine.ctr(
        "images",
        "pull",
        "--hosts-dir",
        str(out / "containerd" / "certs.d"),
        ref,
        namespace=ctr_namespace,
        check=False,
        timeout=60,
    )
    assert pulled.returncode != 0


@pytest.fixture
def podman_runroot() -> Iterator[Path]:
    """A short throwaway --runroot (podman refuses one longer than 50 characters)."""
    path = Path(tempfile.mkdtemp(prefix="imgmirror-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_podman_pulls_from_the_mirror_through_the_drop_in(
    anon_registry: Registry, tls_registry: Registry, tmp_path: Path, podman_runroot: Path
):
    podman = require_tool("podman")
    image = _mirrored(anon_registry, tls_registry, "mirror/k8s")
    out = tmp_path / "etc"
    proc = run_cli(
        "node-config",
        "--mirror",
        f"{anon_registry.host}={tls_registry.host}/mirror/k8s",
        "--ca-file",
        str(tls_registry.ca_file),
        "--runtime",
        "crio",
        "-o",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    drop_in = out / "containers" / "registries.conf.d" / "50-imgmirror.conf"
    certs = out / "containers" / "certs.d" / tls_registry.host
    assert (certs / "ca.crt").read_bytes() == Path(tls_registry.ca_file or "").read_bytes()
    env = {
        **os.environ,
        "CONTAINERS_REGISTRIES_CONF": str(drop_in),
        "HOME": str(tmp_path),
        "XDG_RUNTIME_DIR": str(tmp_path / "run"),
    }
    store = [f"--root={tmp_path / 'root'}", f"--runroot={podman_runroot}"]
    store += ["--storage-driver=vfs", "--cgroup-manager=cgroupfs", "--events-backend=file"]
    ref = f"{anon_registry.host}/test/pause:3.9"

    pulled = subprocess.run(
        [podman, *store, "pull", "--cert-dir", str(certs), ref],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )

    assert pulled.returncode == 0, pulled.stderr
    inspect = subprocess.run(
        [podman, *store, "image", "inspect", "--format", "{{.Digest}}", ref],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert inspect.stdout.strip() == image.digest, inspect.stderr
    assert not anon_registry.running


def test_docker_daemon_json_and_certs_d(tmp_path: Path, test_pki):
    out = tmp_path / "etc"
    proc = run_cli(
        "node-config",
        "--mirror",
        "docker.io=mirror.corp:5000",
        "--mirror",
        "registry.k8s.io=mirror.corp:5000/k8s",
        "--ca-file",
        str(test_pki.ca_cert),
        "--insecure",
        "--runtime",
        "docker",
        "-o",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    daemon = json.loads((out / "docker" / "daemon.json").read_text())
    assert daemon == {
        "registry-mirrors": ["https://mirror.corp:5000"],
        "insecure-registries": ["mirror.corp:5000"],
    }
    ca = out / "docker" / "certs.d" / "mirror.corp:5000" / "ca.crt"
    assert ca.read_bytes() == Path(test_pki.ca_cert).read_bytes()
    assert "only apply to Docker Hub" in proc.stderr  # registry.k8s.io cannot be mirrored
    assert not (out / "containerd").exists()


def test_kubelet_and_sandbox_image_values():
    """By default the pause image keeps its source name (the files redirect it); with
    --sandbox-name mirror it is named under the mirror."""
    proc = run_cli("node-config", "--mirror", "registry.k8s.io=mirror.corp:5000/k8s")
    assert proc.returncode == 0, proc.stderr
    assert "--pod-infra-container-image=registry.k8s.io/pause:3.9" in proc.stdout
    assert 'sandbox_image = "registry.k8s.io/pause:3.9"' in proc.stdout
    assert 'config_path = "/etc/containerd/certs.d"' in proc.stdout
    assert "# /etc/containerd/certs.d/registry.k8s.io/hosts.toml" in proc.stdout
    mirrored = run_cli(
        "node-config", "--mirror", "registry.k8s.io=mirror.corp:5000/k8s",
        "--sandbox-name", "mirror",
    )  # fmt: skip
    assert "--pod-infra-container-image=mirror.corp:5000/k8s/pause:3.9" in mirrored.stdout
    other = run_cli(
        "node-config",
        "--mirror",
        "registry.k8s.io=mirror.corp:5000",
        "--sandbox-image",
        "registry.k8s.io/pause:3.10",
        "--sandbox-name",
        "mirror",
        "--json",
    )
    result = json.loads(other.stdout.strip().splitlines()[-1])
    assert result["sandbox_image"] == "mirror.corp:5000/pause:3.10"


def _one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode in (1, 2), proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("mirror", "message"),
    [
        ("registry.k8s.io", "has no '='"),
        ("registry.k8s.io=mirror", "'mirror' is not a registry host"),
        ("registry.k8s.io=bad_host!:5000/k8s", "is not a registry host"),
        ("registry.k8s.io=mirror.corp/Bad Prefix", "not a valid repository path prefix"),
        ("=mirror.corp", "source '' is not a registry host"),
    ],
)
def test_bad_mirror_is_one_line(tmp_path: Path, mirror: str, message: str):
    out = tmp_path / "etc"
    proc = run_cli("node-config", "--mirror", mirror, "-o", str(out))
    assert message in _one_line(proc)
    assert list(tmp_path.iterdir()) == []


def test_bad_ca_files_are_one_line(tmp_path: Path):
    out = tmp_path / "out" / "etc"
    base = ["node-config", "--mirror", "registry.k8s.io=mirror.corp", "-o", str(out)]
    missing = run_cli(*base, "--ca-file", str(tmp_path / "nope.crt"))
    assert "does not exist" in _one_line(missing)
    not_pem = tmp_path / "ca.der"
    not_pem.write_bytes(b"\x30\x82\x01\x0a" + b"\x00" * 64)
    assert "is not a PEM certificate" in _one_line(run_cli(*base, "--ca-file", str(not_pem)))
    broken = tmp_path / "broken.crt"
    broken.write_text("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n")
    assert "not valid base64" in _one_line(run_cli(*base, "--ca-file", str(broken)))
    half = run_cli(*base, "--client-cert", str(broken))
    assert "both --client-cert and --client-key" in _one_line(half)
    assert not (tmp_path / "out").exists()


def test_unwritable_output_is_one_line_and_leaves_nothing(tmp_path: Path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for target in (a_file / "etc", a_file, Path("/proc/imgmirror-node-config")):
        proc = run_cli("node-config", "--mirror", "registry.k8s.io=mirror.corp", "-o", str(target))
        assert "cannot write" in _one_line(proc)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
    assert a_file.read_text() == "x"
