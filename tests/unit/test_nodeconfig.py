"""The pure node-config builder: file shapes, parsed back with tomllib/json."""

from __future__ import annotations

import json
import stat
import tomllib
from pathlib import Path

import pytest

from imgmirror.errors import ImgmirrorError
from imgmirror.nodes.config import DROP_IN, Mirror, Tls, build_node_config
from imgmirror.nodes.files import write_tree

CA = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"


def test_mirror_parse() -> None:
    assert Mirror.parse("registry.k8s.io=reg.corp:5000/k8s/") == Mirror(
        "registry.k8s.io", "reg.corp:5000", "k8s"
    )
    assert Mirror.parse("index.docker.io=http://localhost:5000") == Mirror(
        "docker.io", "localhost:5000", "", "http"
    )
    with pytest.raises(ImgmirrorError, match="has no '='"):
        Mirror.parse("reg.corp")


def test_containerd_hosts_toml_with_prefix_ca_and_client_cert() -> None:
    tls = Tls(ca=CA, client_cert=CA, client_key=b"key", insecure=False)
    config = build_node_config(
        [Mirror.parse("registry.k8s.io=reg.corp:5000/k8s")], tls=tls, runtimes=["containerd"]
    )
    doc = tomllib.loads(config["containerd/certs.d/registry.k8s.io/hosts.toml"].decode())
    assert doc == {
        "server": "https://registry.k8s.io",
        "host": {
            "https://reg.corp:5000/v2/k8s": {
                "capabilities": ["pull", "resolve"],
                "override_path": True,
                "ca": "ca.crt",
                "client": [["client.cert", "client.key"]],
            }
        },
    }
    assert config["containerd/certs.d/registry.k8s.io/ca.crt"] == CA
    assert config["containerd/certs.d/registry.k8s.io/client.key"] == b"key"


def test_no_fallback_and_docker_hub_server() -> None:
    mirrors = [Mirror.parse("docker.io=a.corp"), Mirror.parse("docker.io=b.corp/hub")]
    config = build_node_config(mirrors, runtimes=["containerd", "crio"], fallback=False)
    hosts = tomllib.loads(config["containerd/certs.d/docker.io/hosts.toml"].decode())
    assert "server" not in hosts
    assert list(hosts["host"]) == ["https://a.corp", "https://b.corp/v2/hub"]
    conf = tomllib.loads(config[DROP_IN].decode())
    assert conf["registry"] == [
        {"prefix": "docker.io", "location": "a.corp", "mirror": [{"location": "b.corp/hub"}]}
    ]
    with_fallback = build_node_config(mirrors, runtimes=["containerd", "crio"])
    hub = tomllib.loads(with_fallback["containerd/certs.d/docker.io/hosts.toml"].decode())
    assert hub["server"] == "https://registry-1.docker.io"
    registry = tomllib.loads(with_fallback[DROP_IN].decode())["registry"][0]
    assert registry["location"] == "docker.io"
    assert [m["location"] for m in registry["mirror"]] == ["a.corp", "b.corp/hub"]


def test_insecure_and_plain_http_mirrors() -> None:
    config = build_node_config([Mirror.parse("quay.io=http://localhost:5000")])
    hosts = tomllib.loads(config["containerd/certs.d/quay.io/hosts.toml"].decode())
    assert list(hosts["host"]) == ["http://localhost:5000"]
    mirror = tomllib.loads(config[DROP_IN].decode())["registry"][0]["mirror"][0]
    assert mirror == {"location": "localhost:5000", "insecure": True}
    # not Docker Hub: no registry-mirrors, but docker may pull the mirror's names over HTTP
    assert json.loads(config["docker/daemon.json"]) == {"insecure-registries": ["localhost:5000"]}
    assert any("only apply to Docker Hub" in note for note in config.notes)
    hub = build_node_config([Mirror.parse("docker.io=m.corp")], tls=Tls(insecure=True))
    assert json.loads(hub["docker/daemon.json"]) == {
        "registry-mirrors": ["https://m.corp"],
        "insecure-registries": ["m.corp"],
    }


def test_sandbox_image_follows_the_mirror() -> None:
    config = build_node_config([Mirror.parse("registry.k8s.io=m.corp/k8s")])
    assert config.sandbox_image == "m.corp/k8s/pause:3.9"
    assert any("--pod-infra-container-image=m.corp/k8s/pause:3.9" in s for s in config.snippets)
    other = build_node_config([Mirror.parse("quay.io=m.corp")], sandbox_image="m.corp/pause:1")
    assert other.sandbox_image == "m.corp/pause:1"


def test_write_tree_modes_and_existing_tree(tmp_path: Path) -> None:
    out = tmp_path / "etc"
    write_tree({"a/b.toml": b"1", "a/client.key": b"k"}, out)
    assert stat.S_IMODE((out / "a" / "client.key").stat().st_mode) == 0o600
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    (out / "keep").write_text("mine")
    write_tree({"a/b.toml": b"2"}, out)  # into an existing tree: replaced, others kept
    assert (out / "a" / "b.toml").read_bytes() == b"2"
    assert (out / "keep").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["etc"]  # no staging left behind
