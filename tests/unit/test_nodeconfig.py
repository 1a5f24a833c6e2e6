"""The pure node-config builder: file shapes, parsed back with tomllib/json."""

from __future__ import annotations

import json
import stat
import tomllib
from pathlib import Path

import pytest

from imgmirror.auth.credentials import Credential
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
    # containerd puts https://SOURCE back when server is missing: the last mirror is the server
    assert hosts["server"] == "https://b.corp/v2/hub"
    assert hosts["override_path"] is True
    assert list(hosts["host"]) == ["https://a.corp"]
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


def test_sandbox_image_keeps_its_name_or_follows_the_mirror() -> None:
    mirrors = [Mirror.parse("registry.k8s.io=m.corp/k8s")]
    config = build_node_config(mirrors)
    assert config.sandbox_image == "registry.k8s.io/pause:3.9"  # the files redirect it
    mirrored = build_node_config(mirrors, sandbox_name="mirror")
    assert mirrored.sandbox_image == "m.corp/k8s/pause:3.9"
    assert any("--pod-infra-container-image=m.corp/k8s/pause:3.9" in s for s in mirrored.snippets)
    other = build_node_config([Mirror.parse("quay.io=m.corp")], sandbox_image="m.corp/pause:1")
    assert other.sandbox_image == "m.corp/pause:1"


@pytest.mark.parametrize("text", ["registry.k8s.io=m.corp:0", "registry.k8s.io=m.corp:999999/k8s",
                                  "registry.k8s.io:65536=m.corp"])  # fmt: skip
def test_ports_out_of_range_are_refused(text: str) -> None:
    with pytest.raises(ImgmirrorError, match="not between 1 and 65535"):
        Mirror.parse(text)
    assert Mirror.parse("registry.k8s.io=m.corp:65535").host == "m.corp:65535"


def test_a_mirror_that_needs_tls_or_http_gets_its_own_entries() -> None:
    """So that the mirror's own names (a pause image named under it) pull too."""
    tls = Tls(ca=CA, client_cert=CA, client_key=b"key")
    config = build_node_config([Mirror.parse("registry.k8s.io=m.corp:5000/k8s")], tls=tls)
    own = tomllib.loads(config["containerd/certs.d/m.corp:5000/hosts.toml"].decode())
    assert own == {
        "server": "https://m.corp:5000",
        "capabilities": ["pull", "resolve"],
        "ca": "ca.crt",
        "client": [["client.cert", "client.key"]],
        "host": {},  # containerd 1.6 ignores a hosts.toml without a host table
    }
    assert config["containerd/certs.d/m.corp:5000/ca.crt"] == CA
    single = build_node_config([Mirror.parse("quay.io=m.corp")], fallback=False)
    alone = tomllib.loads(single["containerd/certs.d/quay.io/hosts.toml"].decode())
    assert alone["server"] == "https://m.corp"
    assert alone["host"] == {}
    plain = build_node_config([Mirror.parse("registry.k8s.io=http://p.corp:5002")])
    assert tomllib.loads(plain["containerd/certs.d/p.corp:5002/hosts.toml"].decode())["server"] == (
        "http://p.corp:5002"
    )
    registries = tomllib.loads(plain[DROP_IN].decode())["registry"]
    assert {"location": "p.corp:5002", "insecure": True} in registries
    public = build_node_config([Mirror.parse("registry.k8s.io=m.corp")])
    assert "containerd/certs.d/m.corp/hosts.toml" not in public  # nothing to say


def test_credentials_go_to_each_runtime_and_are_private() -> None:
    cred = Credential("alice", "s3cret")
    config = build_node_config(
        [Mirror.parse("registry.k8s.io=m.corp:5000/k8s")], credentials={"m.corp:5000": cred}
    )
    kubelet = json.loads(config.node_files["var/lib/kubelet/config.json"])
    assert kubelet == {"auths": {"m.corp:5000": {"auth": "YWxpY2U6czNjcmV0"}}}  # mirror only
    assert json.loads(config["containers/auth.json"]) == kubelet
    auth = tomllib.loads(config["containerd/imgmirror-registry-auth.toml"].decode())
    entry = auth["plugins"]["io.containerd.grpc.v1.cri"]["registry"]["configs"]["m.corp:5000"]
    assert entry == {"auth": {"username": "alice", "password": "s3cret"}}
    drop_in = tomllib.loads(config["crio/crio.conf.d/50-imgmirror-auth.conf"].decode())
    assert drop_in == {"crio": {"image": {"global_auth_file": "/etc/containers/auth.json"}}}
    assert config.private == {
        "containerd/imgmirror-registry-auth.toml",
        "containers/auth.json",
        "var/lib/kubelet/config.json",
    }
    assert all("s3cret" not in s for s in (*config.snippets, *config.notes))
    tree = config.tree(node_root=True)
    assert "etc/containers/auth.json" in tree
    assert config.is_private("etc/containers/auth.json")
    assert "var/lib/kubelet/config.json" in tree


def _paths(doc: object, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Every key path of a parsed TOML document (tables and values)."""
    if not isinstance(doc, dict):
        return set()
    out: set[tuple[str, ...]] = set()
    for key, value in doc.items():
        out.add((*prefix, key))
        out |= _paths(value, (*prefix, key))
    return out


def _snippet(config: object, marker: str) -> dict[str, object]:
    text = next(s for s in config.snippets if marker in s)  # type: ignore[attr-defined]
    return tomllib.loads(text)


def test_containerd_2_lines_follow_its_documented_config_default() -> None:
    """containerd 2 is not installable here: the version-3 lines are checked against the
    ``containerd config default`` layout containerd 2.0 documents (tests/data/containerd2)."""
    data = Path(__file__).parent.parent / "data" / "containerd2"
    default = tomllib.loads((data / "config-default.toml").read_text())
    documented_auth = tomllib.loads((data / "registry-auth.toml").read_text())
    mirrors = [Mirror.parse("registry.k8s.io=m.corp:5000/k8s")]
    config = build_node_config(
        mirrors, containerd=2, runtimes=["containerd"],
        credentials={"m.corp:5000": Credential("a", "b")},
    )  # fmt: skip
    lines = _snippet(config, "version = 3")
    assert _paths(lines) <= _paths(default)
    images = lines["plugins"]["io.containerd.cri.v1.images"]  # type: ignore[index]
    assert images["pinned_images"]["sandbox"] == "registry.k8s.io/pause:3.9"
    assert images["registry"]["config_path"] == "/etc/containerd/certs.d"
    auth = tomllib.loads(config["containerd/imgmirror-registry-auth.toml"].decode())
    documented = {p[:4] + p[5:] for p in _paths(documented_auth) if len(p) > 4}  # host dropped
    ours = {p[:4] + p[5:] for p in _paths(auth) if len(p) > 4}
    assert ours
    assert ours <= documented
    assert "v1.images" in next(iter(auth["plugins"]))


def test_containerd_1_lines_follow_containerd_config_default() -> None:
    """containerd 1.6 is here: its own ``containerd config default`` is the reference."""
    import shutil
    import subprocess

    from tests.support.tools import require_tool

    exe = require_tool("containerd")
    assert shutil.which("containerd") == exe
    text = subprocess.run([exe, "config", "default"], capture_output=True, text=True,
                          check=True, timeout=30).stdout  # fmt: skip
    default = tomllib.loads(text)
    config = build_node_config([Mirror.parse("registry.k8s.io=m.corp:5000/k8s")],
                               runtimes=["containerd"])  # fmt: skip
    assert _paths(_snippet(config, "version = 2")) <= _paths(default)


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


def test_write_tree_into_an_existing_tree_is_all_or_nothing(tmp_path: Path) -> None:
    out = tmp_path / "etc"
    write_tree({"a/one.toml": b"1", "b/two.toml": b"1", "c/three": b"1"}, out)
    (out / "c" / "three").unlink()
    (out / "c" / "three").mkdir()  # a file that cannot be replaced by a file
    with pytest.raises(ImgmirrorError, match="cannot write"):
        write_tree({"a/one.toml": b"2", "b/two.toml": b"2", "c/three": b"2", "d/new": b"2"}, out)
    assert (out / "a" / "one.toml").read_bytes() == b"1"  # switched, then put back
    assert (out / "b" / "two.toml").read_bytes() == b"1"
    assert not (out / "d").exists()
    assert sorted(p.name for p in out.rglob("*")) == [
        "a",
        "b",
        "c",
        "one.toml",
        "three",
        "two.toml",
    ]


def test_write_tree_never_follows_a_symlink_out_of_the_tree(tmp_path: Path) -> None:
    out, outside = tmp_path / "etc", tmp_path / "elsewhere"
    outside.mkdir()
    write_tree({"keep": b"x"}, out)
    (out / "containerd").symlink_to(outside)
    with pytest.raises(ImgmirrorError, match="outside"):
        write_tree({"containerd/certs.d/r/hosts.toml": b"1", "keep": b"y"}, out)
    assert list(outside.iterdir()) == []
    assert (out / "keep").read_bytes() == b"x"
    inside = out / "real"
    inside.mkdir()
    (out / "alias").symlink_to(inside)  # a symlink that stays inside is fine
    write_tree({"alias/f": b"1"}, out)
    assert (inside / "f").read_bytes() == b"1"


def test_write_tree_private_files_are_0600(tmp_path: Path) -> None:
    out = tmp_path / "etc"
    write_tree({"auth.json": b"{}", "x.toml": b""}, out, private=lambda n: n == "auth.json")
    assert stat.S_IMODE((out / "auth.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "x.toml").stat().st_mode) == 0o644
    write_tree({"auth.json": b"{1}"}, out, private=lambda n: n == "auth.json")  # replaced: still
    assert stat.S_IMODE((out / "auth.json").stat().st_mode) == 0o600


def test_library_takes_the_mirror_credentials_from_a_pull_secret(tmp_path: Path) -> None:
    import base64

    import imgmirror

    content = {"auths": {"m.corp:5000": {"auth": base64.b64encode(b"robot:pw").decode()}}}
    secret = tmp_path / "regcred.yaml"
    secret.write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: regcred}\n"
        "type: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: "
        + base64.b64encode(json.dumps(content).encode()).decode()
        + "\n"
    )
    config = imgmirror.node_config(
        ["registry.k8s.io=m.corp:5000/k8s"], authfile=secret, runtimes=["containerd"]
    )
    auth = tomllib.loads(config["containerd/imgmirror-registry-auth.toml"].decode())
    entry = auth["plugins"]["io.containerd.grpc.v1.cri"]["registry"]["configs"]["m.corp:5000"]
    assert entry["auth"] == {"username": "robot", "password": "pw"}
    with pytest.raises(ImgmirrorError, match=r"has no credentials for other\.corp"):
        imgmirror.node_config(["registry.k8s.io=other.corp"], authfile=secret)
    with pytest.raises(ImgmirrorError, match="not both"):
        imgmirror.node_config(["registry.k8s.io=m.corp"], authfile=secret, creds="a:b")


def test_containerd_version_is_read_from_the_output_tree(tmp_path: Path) -> None:
    import imgmirror

    out = tmp_path / "etc"
    (out / "containerd").mkdir(parents=True)
    (out / "containerd" / "config.toml").write_text("version = 3\n")
    config = imgmirror.node_config(["registry.k8s.io=m.corp"], runtimes=["containerd"], output=out)
    assert config.containerd == 2
    assert any("io.containerd.cri.v1.images" in s for s in config.snippets)
    assert (out / "containerd" / "config.toml").read_text() == "version = 3\n"  # untouched
    root = tmp_path / "node"
    (root / "etc" / "containerd").mkdir(parents=True)
    (root / "etc" / "containerd" / "config.toml").write_text("version = 2\n")
    assert imgmirror.node_config(["registry.k8s.io=m.corp"], node_root=root).containerd == 1
    forced = imgmirror.node_config(["registry.k8s.io=m.corp"], containerd=2, node_root=root)
    assert forced.containerd == 2
    with pytest.raises(ImgmirrorError, match="unknown containerd version 3"):
        imgmirror.node_config(["registry.k8s.io=m.corp"], containerd=3)
