"""find-images' outputs and shared checks: sync-file merging, the lock, the pause image, and
kubeconfig loading (pure or on tmp files)."""

from __future__ import annotations

import base64

import pytest

from imgmirror.errors import InvalidSyncFile, KubernetesError
from imgmirror.findimages.lock import format_lock, parse_lock, pin_spec
from imgmirror.findimages.syncfile import merge_sync_file
from imgmirror.model.digest import Digest
from imgmirror.model.pause import compare_pause, pause_image, sandbox_setting
from imgmirror.syncing.file import parse_sync_file
from imgmirror.transport.kubeapi import load_kubeconfig

D1 = Digest.parse("sha256:" + "1" * 64)
D2 = Digest.parse("sha256:" + "2" * 64)

EXISTING = """\
# Mirror for the shop cluster. Owner: platform team.
defaults:
  to: registry.corp/mirror   # the internal registry
  platforms: [linux/amd64]
images:
  # the pause image first: nothing starts without it
  - registry.k8s.io/pause:3.9
  - image: 'quay.io/old/tool:1'   # hand-added, pinned platforms
    platforms: [linux/arm64]
  - repository: registry.k8s.io/etcd
    tags: [3.5.12-0]
  - docker.io/library/nginx:1.25
"""


def test_a_new_sync_file_needs_a_prefix_and_is_what_sync_reads():
    with pytest.raises(InvalidSyncFile, match="destination prefix"):
        merge_sync_file(None, ["quay.io/a/b:1"], origin="new.yaml")
    merged = merge_sync_file(None, ["quay.io/a/b:1", "nginx:1.25"], to="reg.corp/m")
    spec = parse_sync_file(merged.text, "new.yaml")
    assert [str(e.source) for e in spec.entries] == [
        "docker.io/library/nginx:1.25",
        "quay.io/a/b:1",
    ]
    assert merged.text.startswith("# Written by imgmirror find-images")
    assert merged.added == ("nginx:1.25", "quay.io/a/b:1")


def test_merging_keeps_comments_order_quotes_and_hand_added_entries():
    merged = merge_sync_file(
        EXISTING, ["nginx:1.25", "registry.k8s.io/pause:3.9", "quay.io/new/app:2"]
    )
    assert merged.text == EXISTING + "  - quay.io/new/app:2\n"
    assert merged.added == ("quay.io/new/app:2",)
    assert merged.removed == ()


def test_prune_removes_images_not_found_and_keeps_repository_entries():
    merged = merge_sync_file(EXISTING, ["nginx:1.25", "quay.io/new/app:2"], prune=True)
    spec = parse_sync_file(merged.text, "s.yaml")
    assert [str(e.source) for e in spec.entries] == [
        "registry.k8s.io/etcd",
        "docker.io/library/nginx:1.25",
        "quay.io/new/app:2",
    ]
    assert merged.removed == ("quay.io/old/tool:1", "registry.k8s.io/pause:3.9")
    assert "# Mirror for the shop cluster" in merged.text
    assert "# the internal registry" in merged.text


def test_to_replaces_the_prefix_and_a_zero_offset_list_stays_so():
    text = "defaults:\n  to: a.corp/m\nimages:\n- quay.io/a/b:1\n"
    merged = merge_sync_file(text, ["quay.io/c/d:2"], to="b.corp/n")
    assert merged.text == "defaults:\n  to: b.corp/n\nimages:\n- quay.io/a/b:1\n- quay.io/c/d:2\n"


def test_pruning_everything_or_a_file_that_is_not_a_sync_file_is_refused():
    with pytest.raises(InvalidSyncFile, match="non-empty"):
        merge_sync_file("defaults: {to: r.corp/m}\nimages: [quay.io/a/b:1]\n", [], prune=True)
    with pytest.raises(InvalidSyncFile, match="mapping"):
        merge_sync_file("- a\n- b\n", ["quay.io/a/b:1"], to="r.corp/m")
    with pytest.raises(InvalidSyncFile, match="unknown key"):
        merge_sync_file("defaults: {to: r.corp/m}\nimage: []\n", ["quay.io/a/b:1"])


def test_the_lock_is_a_plain_image_list_and_pins_a_sync_file():
    text = format_lock({"registry.k8s.io/pause:3.9": D1, "nginx": D2,
                        "quay.io/a/b@" + str(D2): D2})  # fmt: skip
    assert text.splitlines() == [
        "# imgmirror lock v1",
        f"nginx:latest@{D2}",
        f"quay.io/a/b@{D2}",
        f"registry.k8s.io/pause:3.9@{D1}",
    ]
    lock = parse_lock(text, "images.lock")
    assert lock.digest_of("docker.io/library/nginx:latest") == D2
    spec = parse_sync_file(EXISTING, "s.yaml")
    with pytest.raises(InvalidSyncFile, match=r"s.yaml:8: quay.io/old/tool:1 is not in the lock"):
        pin_spec(spec, lock, "images.lock")
    lock = parse_lock(text + f"quay.io/old/tool:1@{D1}\ndocker.io/library/nginx:1.25@{D1}\n", "l")
    pinned = pin_spec(spec, lock, "l")
    assert [str(e.source) for e in pinned.entries] == [
        f"registry.k8s.io/pause:3.9@{D1}",
        f"quay.io/old/tool:1@{D1}",
        "registry.k8s.io/etcd",
        f"docker.io/library/nginx:1.25@{D1}",
    ]
    assert str(pinned.entries[0].destination(pinned.entries[0].source)) == (
        f"registry.corp/mirror/pause:3.9@{D1}"
    )


def test_a_lock_without_header_or_digest_is_refused():
    with pytest.raises(InvalidSyncFile, match="not an imgmirror lock"):
        parse_lock("quay.io/a/b:1\n", "x.lock")
    with pytest.raises(InvalidSyncFile, match=r"x.lock:2: 'quay.io/a/b:1' has no digest"):
        parse_lock("# imgmirror lock v1\nquay.io/a/b:1\n", "x.lock")


CONTAINERD_1 = """\
version = 2
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.8"
"""
CONTAINERD_2 = """\
version = 3
[plugins."io.containerd.cri.v1.images".pinned_images]
  sandbox = "registry.corp:5000/k8s/pause:3.10"
"""
CRIO = '[crio.image]\npause_image = "registry.k8s.io/pause:3.10"\n'


def test_the_pause_image_check_reads_every_runtime_and_says_what_differs():
    kubeadm = ["registry.k8s.io/kube-apiserver:v1.31.0", "registry.k8s.io/pause:3.10"]
    expected = pause_image(kubeadm)
    assert expected == "registry.k8s.io/pause:3.10"
    assert compare_pause(expected, sandbox_setting(CRIO)).status == "ok"
    tag = compare_pause(expected, sandbox_setting(CONTAINERD_1))
    assert tag.status == "tag"
    assert "containerd 1.x uses registry.k8s.io/pause:3.8" in tag.message
    other = compare_pause(expected, sandbox_setting(CONTAINERD_2))
    assert other.status == "repository"
    assert "registry.corp:5000" in other.message
    assert compare_pause(expected, sandbox_setting("version = 2\n")).status == "unset"
    assert compare_pause("pause:3.10", sandbox_setting(
        '[crio.image]\npause_image = "docker.io/library/pause:3.10"\n')).status == "ok"  # fmt: skip
    with pytest.raises(ValueError, match="not TOML"):
        sandbox_setting("[[[")


def write_kubeconfig(tmp_path, user: str, cluster_extra: str = "") -> str:
    path = tmp_path / "config"
    user_lines = "".join(f"    {line}\n" for line in user.splitlines())
    extra = f"    {cluster_extra}\n" if cluster_extra else ""
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: one\n"
        f"clusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:6443\n{extra}"
        "contexts:\n- name: one\n  context: {cluster: c, user: u, namespace: shop}\n"
        f"users:\n- name: u\n  user:\n{user_lines}"
    )
    return str(path)


def test_a_kubeconfig_with_token_ca_and_client_certificate(tmp_path):
    (tmp_path / "ca.crt").write_bytes(b"CA")
    data = base64.b64encode(b"CERT").decode()
    path = write_kubeconfig(
        tmp_path,
        f"token: abc.def\nclient-certificate-data: {data}\nclient-key: key.pem\n",
        "certificate-authority: ca.crt",
    )
    (tmp_path / "key.pem").write_bytes(b"KEY")
    target = load_kubeconfig(path)
    assert (target.server, target.context, target.namespace) == (
        "https://127.0.0.1:6443",
        "one",
        "shop",
    )
    assert (target.ca_pem, target.cert_pem, target.key_pem) == (b"CA", b"CERT", b"KEY")
    assert target.token == "abc.def"
    assert "abc.def" not in repr(target)
    assert "KEY" not in repr(target)


def test_kubeconfig_env_merges_files_first_one_wins(tmp_path):
    first = tmp_path / "a"
    first.write_text(
        "current-context: two\ncontexts: [{name: two, context: {cluster: c2, user: u2}}]\n"
        "users: [{name: u2, user: {tokenFile: tok}}]\n"
    )
    (tmp_path / "tok").write_text("from-file\n")
    second = tmp_path / "b"
    second.write_text("clusters: [{name: c2, cluster: {server: 'https://k.corp:443', "
                      "insecure-skip-tls-verify: true}}]\n")  # fmt: skip
    target = load_kubeconfig(env={"KUBECONFIG": f"{first}:{second}"})
    assert (target.server, target.insecure, target.token) == (
        "https://k.corp:443",
        True,
        "from-file",
    )


def test_exec_and_auth_provider_users_are_refused_plainly(tmp_path):
    path = write_kubeconfig(
        tmp_path, "exec: {apiVersion: client.authentication.k8s.io/v1, command: aws}\n"
    )
    with pytest.raises(KubernetesError, match="exec credential plugin") as caught:
        load_kubeconfig(path)
    assert "kubectl get" in str(caught.value)
    with pytest.raises(KubernetesError, match="no context named 'nope'"):
        load_kubeconfig(path, "nope")
    with pytest.raises(KubernetesError, match="cannot read kubeconfig"):
        load_kubeconfig(tmp_path / "missing")
