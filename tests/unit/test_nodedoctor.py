"""The pure parts of doctor: reading a node's files, kubeadm's pause versions, pod images."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgmirror.nodes.doctor import pod_images
from imgmirror.nodes.kubeadm import PAUSE_VERSIONS, expected_pause, minor_of
from imgmirror.nodes.nodeview import containerd_hosts, read_node


def _hosts_toml(root: Path, registry: str, text: str) -> Path:
    directory = root / "etc" / "containerd" / "certs.d" / registry
    directory.mkdir(parents=True)
    (directory / "hosts.toml").write_text(text)
    return root / "etc" / "containerd" / "certs.d"


def test_hosts_in_containerd_order(tmp_path: Path) -> None:
    certs = _hosts_toml(
        tmp_path,
        "registry.k8s.io",
        """
server = "https://registry.k8s.io"
[host."https://m.corp:5000/v2/k8s"]
  capabilities = ["pull", "resolve"]
  override_path = true
  ca = "ca.crt"
  client = [["client.cert", "client.key"]]
[host."http://p.corp"]
  capabilities = ["pull"]
""",
    )
    found = containerd_hosts([certs], "registry.k8s.io", tmp_path)
    assert [(h.url, h.prefix, h.is_server) for h in found.hosts] == [
        ("https://m.corp:5000/v2/k8s", "k8s", False),
        ("http://p.corp", "", False),
        ("https://registry.k8s.io", "", True),
    ]
    first = found.hosts[0]
    assert first.ca_files == (certs / "registry.k8s.io" / "ca.crt",)
    assert first.client_pairs == ((certs / "registry.k8s.io" / "client.cert",
                                   certs / "registry.k8s.io" / "client.key"),)  # fmt: skip
    assert found.problem is None


def test_a_hosts_toml_without_host_table_is_ignored_as_containerd_16_does(tmp_path: Path) -> None:
    certs = _hosts_toml(tmp_path, "registry.k8s.io", 'server = "https://m.corp"\n')
    found = containerd_hosts([certs], "registry.k8s.io", tmp_path)
    assert [h.url for h in found.hosts] == ["https://registry.k8s.io"]  # the source after all
    assert found.problem is not None
    assert "invalid `host` tree" in found.problem


def test_no_directory_means_the_registry_itself_docker_hub_included(tmp_path: Path) -> None:
    assert [h.url for h in containerd_hosts([tmp_path], "quay.io", tmp_path).hosts] == [
        "https://quay.io"
    ]
    assert containerd_hosts([tmp_path], "docker.io", tmp_path).hosts[0].host == (
        "registry-1.docker.io"
    )


def test_read_node_containerd_1_and_2(tmp_path: Path) -> None:
    etc = tmp_path / "etc" / "containerd"
    etc.mkdir(parents=True)
    (etc / "config.toml").write_text("""version = 2
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "m.corp/pause:3.9"
[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "/etc/containerd/certs.d"
[plugins."io.containerd.grpc.v1.cri".registry.configs."m.corp".auth]
  username = "u"
  password = "p"
""")
    view = read_node(tmp_path)
    assert view.containerd.version == 1
    assert view.containerd.sandbox_image == "m.corp/pause:3.9"
    assert view.containerd.config_path == (etc / "certs.d",)
    assert view.containerd.auths["m.corp"].username == "u"
    (etc / "config.toml").write_text("""version = 3
[plugins."io.containerd.cri.v1.images".pinned_images]
  sandbox = "registry.k8s.io/pause:3.10"
""")
    two = read_node(tmp_path).containerd
    assert two.version == 2
    assert two.sandbox_image == "registry.k8s.io/pause:3.10"
    assert two.config_path == (etc / "certs.d", tmp_path / "etc/docker/certs.d")  # 2.x default
    (etc / "config.toml").unlink()
    assert read_node(tmp_path).containerd.sandbox_image == "registry.k8s.io/pause:3.6"


def test_read_node_kubelet_files(tmp_path: Path) -> None:
    kubelet = tmp_path / "var" / "lib" / "kubelet"
    kubelet.mkdir(parents=True)
    (kubelet / "config.json").write_text('{"auths": {"m.corp": {"auth": "dTpw"}}}')
    (kubelet / "kubeadm-flags.env").write_text(
        'KUBELET_KUBEADM_ARGS="--pod-infra-container-image=m.corp/pause:3.9 --v=2"\n'
    )
    manifests = tmp_path / "etc" / "kubernetes" / "manifests"
    manifests.mkdir(parents=True)
    (manifests / "kube-apiserver.yaml").write_text(
        "spec:\n  containers:\n  - image: registry.k8s.io/kube-apiserver:v1.29.3\n"
    )
    view = read_node(tmp_path)
    assert view.kubelet_config is not None
    credential = view.kubelet_config.lookup("m.corp").credential
    assert credential is not None
    assert credential.username == "u"
    assert view.kubelet_sandbox == "m.corp/pause:3.9"
    assert view.kubernetes_version == "v1.29.3"


@pytest.mark.parametrize(("version", "pause"), [("v1.23.17", "3.6"), ("1.25", "3.8"),
                         ("v1.28.4", "3.9"), ("v1.31.0", "3.10"), ("v1.34.1", "3.10.1"),
                         ("v1.99.0", "3.10.1"), ("v1.18.0", None), ("2.0", None)])  # fmt: skip
def test_kubeadm_pause_versions(version: str, pause: str | None) -> None:
    assert expected_pause(version) == pause
    assert minor_of("v1.28.4-eks") == 28
    assert PAUSE_VERSIONS[26] == PAUSE_VERSIONS[30] == "3.9"


def test_pod_images_of_workloads() -> None:
    text = """
apiVersion: v1
kind: Pod
spec:
  imagePullSecrets: [{name: a}]
  initContainers: [{name: i, image: reg.corp/init:1}]
  containers: [{name: c, image: reg.corp/app:1}]
---
apiVersion: batch/v1
kind: CronJob
spec:
  jobTemplate:
    spec:
      template:
        spec:
          imagePullSecrets: [{name: b}]
          containers: [{name: c, image: reg.corp/job:2}, {name: d, image: reg.corp/app:1}]
---
kind: ConfigMap
data: {image: not/an/image}
"""
    assert pod_images(text, "pods.yaml") == (
        ["reg.corp/init:1", "reg.corp/app:1", "reg.corp/job:2"],
        ["a", "b"],
    )


def test_crio_and_docker_host_order(tmp_path: Path) -> None:
    from imgmirror.model.reference import Reference
    from imgmirror.nodes.doctor import _hosts

    drop_in = tmp_path / "etc" / "containers" / "registries.conf.d"
    drop_in.mkdir(parents=True)
    (drop_in / "50-imgmirror.conf").write_text("""
[[registry]]
prefix = "registry.k8s.io"
location = "registry.k8s.io"
[[registry.mirror]]
location = "m.corp:5000/k8s"
[[registry.mirror]]
location = "p.corp:5002"
insecure = true
""")
    docker = tmp_path / "etc" / "docker"
    (docker / "certs.d" / "hub.corp").mkdir(parents=True)
    (docker / "certs.d" / "hub.corp" / "ca.crt").write_text("x")
    (docker / "daemon.json").write_text(
        '{"registry-mirrors": ["https://hub.corp"], "insecure-registries": ["q.corp"]}'
    )
    view = read_node(tmp_path)
    crio, _ = _hosts(view, Reference.parse("registry.k8s.io/pause:3.9"), "crio")
    assert [(h.url, h.prefix) for h in crio] == [
        ("https://m.corp:5000/v2/k8s", "k8s"),
        ("http://p.corp:5002", ""),
        ("https://registry.k8s.io", ""),
    ]
    hub, _ = _hosts(view, Reference.parse("alpine:3.19"), "docker")
    assert [h.host for h in hub] == ["hub.corp", "registry-1.docker.io"]
    assert hub[0].ca_files == (docker / "certs.d" / "hub.corp" / "ca.crt",)
    other, _ = _hosts(view, Reference.parse("q.corp/app:1"), "docker")
    assert [(h.host, h.skip_verify) for h in other] == [("q.corp", True)]
