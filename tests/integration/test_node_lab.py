"""``node-config`` and pre-loading proven on a node: containerd 1.6's CRI plugin (driven over its
gRPC socket as the kubelet drives it), ``ctr images pull --hosts-dir`` and podman, all inside a
network namespace where ``registry.k8s.io:443``, ``registry.corp:5000`` (TLS with a corporate
CA, htpasswd) and ``plain.corp:5002`` (plain HTTP) are real registries under those names
(tests/support/nodelab.py). runc cannot start containers here, so each test stops at the pull
and at the sandbox image containerd is configured with; the CRI plugin pulls the sandbox image
itself, without credentials from the kubelet, exactly as ``PullImage`` without an
``AuthConfig`` does below.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import sys
import tarfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.cri import CriError
from tests.support.images import Image, make_image, make_index, pause_image
from tests.support.nodelab import CORP, DOWN, PASSWORD, PLAIN, SOURCE, USER, NodeLab
from tests.support.seed import seed
from tests.support.tools import require_tool

pytestmark = [pytest.mark.registry]


def _node_config(lab: NodeLab, root: Path, *args: str, stdin: str | None = None) -> dict[str, Any]:
    """``imgmirror node-config ARGS --node-root ROOT --json`` run on the node."""
    proc = lab.run(
        [sys.executable, "-m", "imgmirror", "node-config", *args, "--node-root", str(root),
         "--json"],
        stdin=stdin,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert f"{USER}:{PASSWORD}" not in proc.stdout + proc.stderr
    assert base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode() not in proc.stdout
    return result


def _corp_node(lab: NodeLab, root: Path, mirror: str, *extra: str) -> dict[str, Any]:
    """node-config for the corporate TLS mirror (its CA, the htpasswd user) under ROOT."""
    return _node_config(
        lab, root, "--mirror", f"{SOURCE}={mirror}", "--ca-file", str(lab.corp_pki.ca_cert),
        "--creds", f"{USER}:{PASSWORD}", *extra,
    )  # fmt: skip


def _repo(tag: str) -> str:
    return f"t{uuid.uuid4().hex[:8]}/{tag}"


@pytest.fixture
def pause(pause_binary: Path) -> Image:
    return pause_image(pause_binary, marker=uuid.uuid4().hex)


@pytest.mark.parametrize("sandbox_name", ["source", "mirror"])
def test_cri_pulls_the_pause_image_from_an_authenticated_tls_mirror(
    nodelab: NodeLab, tmp_path: Path, pause: Image, sandbox_name: str
):
    """The pause line node-config prints names an image the CRI plugin really pulls, by
    itself (no credentials from the kubelet), from a mirror behind a corporate CA and
    htpasswd; the source does not have the image, so only the mirror can serve it."""
    repo = _repo("pause")
    seed(nodelab.registry(CORP), f"k8s/{repo}", "3.9", pause)
    root = tmp_path / "node"
    result = _node_config(
        nodelab, root,
        "--mirror", f"{SOURCE}=https://{CORP}/k8s", "--ca-file", str(nodelab.corp_pki.ca_cert),
        "--creds", "-", "--runtime", "containerd", "--sandbox-image", f"{SOURCE}/{repo}:3.9",
        "--sandbox-name", sandbox_name,
        stdin=f"{USER}:{PASSWORD}\n",
    )  # fmt: skip
    sandbox = result["sandbox_image"]
    expected = f"{SOURCE}/{repo}:3.9" if sandbox_name == "source" else f"{CORP}/k8s/{repo}:3.9"
    assert sandbox == expected
    auth = root / "etc" / "containerd" / "imgmirror-registry-auth.toml"
    assert (auth.stat().st_mode & 0o777) == 0o600
    containerd = nodelab.containerd(
        config_path=root / "etc" / "containerd" / "certs.d",
        sandbox_image=sandbox,
        extra=auth.read_text(),  # appended to config.toml, as the note says
    )
    with containerd.cri() as cri:
        assert cri.config()["sandboxImage"] == sandbox  # what RunPodSandbox would pull
        cri.pull(sandbox)
        found = cri.image_status(sandbox)
    assert found is not None
    assert found.repo_digests == (f"{sandbox.rsplit(':', 1)[0]}@{pause.digest}",)
    containerd.stop()


def test_the_checks_above_can_fail(nodelab: NodeLab, tmp_path: Path, pause: Image):
    """Without the auth lines the same pull gets 401; without the mirror's own hosts entry
    the mirror's name fails TLS verification (what the printed pause lines did before)."""
    repo = _repo("pause")
    seed(nodelab.registry(CORP), f"k8s/{repo}", "3.9", pause)
    root = tmp_path / "node"
    _corp_node(nodelab, root, f"https://{CORP}/k8s", "--runtime", "containerd")
    certs = root / "etc" / "containerd" / "certs.d"
    containerd = nodelab.containerd(config_path=certs)  # no auth lines in config.toml
    with containerd.cri() as cri:
        with pytest.raises(CriError, match="401 Unauthorized"):
            cri.pull(f"{SOURCE}/{repo}:3.9")
        cri.pull(f"{CORP}/k8s/{repo}:3.9", username=USER, password=PASSWORD)  # a pull Secret
        cri.remove(f"{CORP}/k8s/{repo}:3.9")
        shutil.rmtree(certs / CORP)
        with pytest.raises(CriError, match="x509"):
            cri.pull(f"{CORP}/k8s/{repo}:3.9", username=USER, password=PASSWORD)
    containerd.stop()


def test_kubelet_config_json_serves_images_named_under_the_mirror(
    nodelab: NodeLab, tmp_path: Path, pause: Image
):
    """The kubelet's config.json is keyed by the mirror only: the kubelet sends it for
    images named under the mirror (as here, through the CRI), never to the source."""
    repo = _repo("app")
    seed(nodelab.registry(CORP), f"k8s/{repo}", "1.0", pause)
    root = tmp_path / "node"
    _corp_node(nodelab, root, f"{CORP}/k8s")
    kubelet = root / "var" / "lib" / "kubelet" / "config.json"
    assert (kubelet.stat().st_mode & 0o777) == 0o600
    auths = json.loads(kubelet.read_text())["auths"]
    assert list(auths) == [CORP]
    entry = auths[CORP]
    user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
    containerd = nodelab.containerd(config_path=root / "etc" / "containerd" / "certs.d")
    with containerd.cri() as cri:
        cri.pull(f"{CORP}/k8s/{repo}:1.0", username=user, password=password)
        assert cri.image_status(f"{CORP}/k8s/{repo}:1.0") is not None
    containerd.stop()


def test_plain_http_mirror_serves_both_names_to_containerd_and_podman(
    nodelab: NodeLab, tmp_path: Path, pause: Image
):
    repo = _repo("pause")
    seed(nodelab.registry(PLAIN), f"k8s/{repo}", "3.9", pause)
    root = tmp_path / "node"
    _node_config(nodelab, root, "--mirror", f"{SOURCE}=http://{PLAIN}/k8s", "--sandbox-name",
                 "mirror")  # fmt: skip
    certs = root / "etc" / "containerd" / "certs.d"
    containerd = nodelab.containerd(config_path=certs)
    with containerd.cri() as cri:
        for name in (f"{PLAIN}/k8s/{repo}:3.9", f"{SOURCE}/{repo}:3.9"):
            cri.pull(name)
            assert cri.image_status(name) is not None
    pulled = containerd.ctr(
        "images", "pull", "--hosts-dir", str(certs), f"{PLAIN}/k8s/{repo}:3.9", namespace="x"
    )
    assert pulled.returncode == 0, pulled.stderr
    containerd.stop()
    podman = _podman(nodelab, tmp_path, root)
    for name in (f"{PLAIN}/k8s/{repo}:3.9", f"{SOURCE}/{repo}:3.9"):
        done = podman("pull", name)
        assert done.returncode == 0, done.stderr
        assert podman("image", "inspect", "--format", "{{.Digest}}", name).stdout.strip() == (
            pause.digest
        )


def _podman(lab: NodeLab, tmp_path: Path, root: Path, *extra: str):
    exe = require_tool("podman")
    env = {
        "CONTAINERS_REGISTRIES_CONF": str(
            root / "etc" / "containers" / "registries.conf.d" / "50-imgmirror.conf"
        ),
        "HOME": str(tmp_path),
        "XDG_RUNTIME_DIR": str(tmp_path / "run"),
    }
    tag = hashlib.sha256(str(tmp_path).encode()).hexdigest()[:8]
    runroot = Path(lab.directory) / f"p{tag}"  # one per test; podman wants it short
    store = [f"--root={tmp_path / 'podman'}", f"--runroot={runroot}", "--storage-driver=vfs",
             "--cgroup-manager=cgroupfs", "--events-backend=file"]  # fmt: skip

    def run(*args: str):
        return lab.run([exe, *store, *args, *extra], env=env)

    return run


def test_podman_pulls_through_an_authenticated_mirror_with_the_auth_file(
    nodelab: NodeLab, tmp_path: Path, pause: Image
):
    repo = _repo("pause")
    seed(nodelab.registry(CORP), f"k8s/{repo}", "3.9", pause)
    root = tmp_path / "node"
    _corp_node(nodelab, root, f"{CORP}/k8s", "--runtime", "crio", "--no-fallback")
    etc = root / "etc" / "containers"
    assert (etc / "auth.json").stat().st_mode & 0o777 == 0o600
    cert_dir = ["--cert-dir", str(etc / "certs.d" / CORP)]
    without = _podman(nodelab, tmp_path, root, *cert_dir)("pull", f"{SOURCE}/{repo}:3.9")
    assert without.returncode != 0  # the check is real: no credentials, no image
    podman = _podman(nodelab, tmp_path, root, "--authfile", str(etc / "auth.json"), *cert_dir)
    done = podman("pull", f"{SOURCE}/{repo}:3.9")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("fallback", [True, False])
def test_no_fallback_means_no_request_to_the_source(
    nodelab: NodeLab, tmp_path: Path, pause: Image, fallback: bool
):
    """The mirror is down and the source is up with the image: with fallback containerd
    pulls from the source; with --no-fallback it fails, and the source's access log shows
    not one request (containerd 1.6 adds https://SOURCE back when hosts.toml has no server)."""
    repo = _repo("pause")
    source = nodelab.registry(SOURCE)
    seed(source, repo, "3.9", pause)
    root = tmp_path / "node"
    flags = [] if fallback else ["--no-fallback"]
    _node_config(nodelab, root, "--mirror", f"{SOURCE}={DOWN}/k8s", "--runtime", "containerd",
                 *flags)  # fmt: skip
    certs = root / "etc" / "containerd" / "certs.d"
    containerd = nodelab.containerd(config_path=certs)
    before = len(source.requests())
    pulled = containerd.ctr("images", "pull", "--hosts-dir", str(certs), f"{SOURCE}/{repo}:3.9",
                            namespace="x")  # fmt: skip
    with containerd.cri() as cri:
        if fallback:
            cri.pull(f"{SOURCE}/{repo}:3.9")
        else:
            with pytest.raises(CriError):
                cri.pull(f"{SOURCE}/{repo}:3.9")
    containerd.stop()
    reached = [r for r in source.requests()[before:] if repo in r[1]]
    if fallback:
        assert pulled.returncode == 0, pulled.stderr
        assert reached
    else:
        assert pulled.returncode != 0
        assert reached == []


def _without_digest_names(archive: Path, out: Path) -> None:
    """A copy of ``archive`` whose index.json names images by tag only (as before)."""
    with tarfile.open(archive) as src, tarfile.open(out, "w") as dst:
        for member in src.getmembers():
            data = src.extractfile(member) if member.isfile() else None
            if member.name == "index.json" and data is not None:
                index = json.loads(data.read())
                index["manifests"] = [
                    m for m in index["manifests"]
                    if "@" not in m.get("annotations", {}).get("io.containerd.image.name", "")
                ]  # fmt: skip
                raw = json.dumps(index).encode()
                member.size = len(raw)
                dst.addfile(member, io.BytesIO(raw))
            else:
                dst.addfile(member, data)


def test_preloaded_images_are_found_by_tag_and_by_registry_digest(
    nodelab: NodeLab, tmp_path: Path, pause: Image
):
    """After ``ctr -n k8s.io images import`` of an imgmirror archive the CRI finds each image
    by tag and by the registry's digest (a single-platform image's manifest digest, a
    multi-platform image's index digest), so a digest-pinned pod starts on an air-gapped
    node; an archive naming them by tag only is found by tag only."""
    source = nodelab.registry(SOURCE)
    single, multi = _repo("pause"), _repo("multi")
    seed(source, single, "3.9", pause)
    index = make_index([make_image(platform="linux/amd64", marker=multi),
                        make_image(platform="linux/arm64", marker=multi)])  # fmt: skip
    seed(source, multi, "1.0", index)
    archive = tmp_path / "node-images.tar"
    saved = nodelab.imgmirror(
        "save", f"{SOURCE}/{single}:3.9", f"{SOURCE}/{multi}:1.0", "--platform", "linux/amd64",
        "-o", str(archive),
    )  # fmt: skip
    assert saved.returncode == 0, saved.stderr
    tag_only = tmp_path / "tag-only.tar"
    _without_digest_names(archive, tag_only)
    wanted = {
        f"{SOURCE}/{single}:3.9": True,
        f"{SOURCE}/{single}@{pause.digest}": True,
        f"{SOURCE}/{multi}:1.0": True,
        f"{SOURCE}/{multi}@{index.digest}": True,
    }
    for tar, by_digest in ((archive, True), (tag_only, False)):
        containerd = nodelab.containerd()
        # (ctr runs with the native snapshotter: this sandbox has no overlayfs)
        done = containerd.ctr("images", "import", str(tar))
        assert done.returncode == 0, done.stderr
        with containerd.cri() as cri:
            for name, tagged in wanted.items():
                found = cri.image_status(name)
                expect = tagged and ("@" not in name or by_digest)
                assert (found is not None) == expect, (tar.name, name)
        containerd.stop()


# -- doctor: its verdict against the real runtime -------------------------------------------

LEGACY_SECRET = """apiVersion: v1
kind: Secret
metadata: {{name: regcred}}
type: {kind}
data:
  {key}: {payload}
"""


def _secret(kind: str, key: str, content: dict[str, Any]) -> str:
    payload = base64.b64encode(json.dumps(content).encode()).decode()
    return LEGACY_SECRET.format(kind=kind, key=key, payload=payload)


def _legacy_map(user: str, password: str) -> dict[str, Any]:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {SOURCE: {"auth": auth}}  # the pod names registry.k8s.io/...: the kubelet's key


@dataclass(frozen=True)
class Scenario:
    """One node: how node-config was run, what the mirror holds, the pod's secret, the
    credentials ``ctr --user`` gets (the same the node would send), doctor's expected step."""

    step: str  # "pull" when the image pulls, else the step doctor must name
    mirror: str = f"https://{CORP}/k8s"
    ca: str | None = "corp"  # "corp", "public" (the wrong one) or None
    creds: str | None = f"{USER}:{PASSWORD}"
    fallback: bool = False
    held: str = "image"  # "image", "nothing", "arm64 only", "source"
    secret: str | None = None
    ctr_user: str | None = f"{USER}:{PASSWORD}"


_RIGHT_SECRET = _secret("kubernetes.io/dockercfg", ".dockercfg", _legacy_map(USER, PASSWORD))
_WRONG_TYPE = _secret("kubernetes.io/dockerconfigjson", ".dockerconfigjson",
                      _legacy_map(USER, PASSWORD))  # fmt: skip
SCENARIOS = {
    "everything right": Scenario("pull"),
    "wrong CA": Scenario("tls", ca="public"),
    "missing CA": Scenario("tls", ca=None),
    "wrong password": Scenario("credentials", creds=f"{USER}:wrong", ctr_user=f"{USER}:wrong"),
    "legacy .dockercfg in a dockerconfigjson secret": Scenario(
        "credentials", creds=None, secret=_WRONG_TYPE, ctr_user=None
    ),
    "legacy .dockercfg secret of its own type": Scenario("pull", creds=None, secret=_RIGHT_SECRET),
    "missing tag": Scenario("tag", held="nothing"),
    "missing platform": Scenario("platform", held="arm64 only"),
    "plain-HTTP mirror": Scenario("pull", mirror=f"http://{PLAIN}/k8s", creds=None, ctr_user=None),
    "plain-HTTP mirror named https": Scenario(
        "unreachable", mirror=f"https://{PLAIN}/k8s", creds=None, ctr_user=None
    ),
    "mirror down, no fallback": Scenario(
        "unreachable", mirror=f"{DOWN}/k8s", creds=None, held="source", ctr_user=None
    ),
    "mirror down, fallback": Scenario(
        "pull", mirror=f"{DOWN}/k8s", creds=None, held="source", fallback=True, ctr_user=None
    ),
}


def _scenario_node(lab: NodeLab, root: Path, case: Scenario) -> Path:
    """node-config's tree under ROOT plus the config.toml a node would have (node paths)."""
    args = ["--mirror", f"{SOURCE}={case.mirror}", "--runtime", "containerd"]
    if case.ca is not None:
        args += ["--ca-file", str((lab.corp_pki if case.ca == "corp" else lab.pki).ca_cert)]
    if case.creds is not None:
        args += ["--creds", case.creds]
    if not case.fallback:
        args.append("--no-fallback")
    _node_config(lab, root, *args)
    auth = root / "etc" / "containerd" / "imgmirror-registry-auth.toml"
    extra = auth.read_text() if auth.exists() else ""
    (root / "etc" / "containerd" / "config.toml").write_text(
        "version = 2\n"
        '[plugins."io.containerd.grpc.v1.cri"]\n'
        '  sandbox_image = "registry.k8s.io/pause:3.9"\n'
        '[plugins."io.containerd.grpc.v1.cri".registry]\n'
        '  config_path = "/etc/containerd/certs.d"\n' + extra
    )
    return auth


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_doctor_agrees_with_containerd(
    nodelab: NodeLab, tmp_path: Path, pause: Image, scenario: str
):
    """For each scenario, doctor's verdict on the node matches whether ``ctr images pull
    --hosts-dir`` and a CRI pull (containerd reading the same config.toml and certs.d, the
    kubelet's credentials from the secret in the AuthConfig) succeed."""
    case = SCENARIOS[scenario]
    repo = _repo("app")
    mirror = PLAIN if PLAIN in case.mirror else CORP
    if case.held == "image":
        seed(nodelab.registry(mirror), f"k8s/{repo}", "1.0", pause)
    elif case.held == "arm64 only":
        seed(nodelab.registry(mirror), f"k8s/{repo}", "1.0",
             make_index([make_image(platform="linux/arm64", marker=repo)]))  # fmt: skip
    elif case.held == "source":
        seed(nodelab.registry(SOURCE), repo, "1.0", pause)
    root = tmp_path / "node"
    auth = _scenario_node(nodelab, root, case)
    image = f"{SOURCE}/{repo}:1.0"
    args = ["doctor", image, "--node-root", str(root), "--json", "--timeout", "5"]
    if case.secret is not None:
        (tmp_path / "secret.yaml").write_text(case.secret)
        args += ["--secret", str(tmp_path / "secret.yaml")]
    ran = nodelab.imgmirror(*args)
    assert ran.returncode in (0, 1), ran.stderr
    assert ran.stdout, ran.stderr
    verdict = json.loads(ran.stdout)["verdicts"][0]
    certs = root / "etc" / "containerd" / "certs.d"
    containerd = nodelab.containerd(config_path=certs,
                                    extra=auth.read_text() if auth.exists() else "")  # fmt: skip
    user = ["--user", case.ctr_user] if case.ctr_user else []
    ctr = containerd.ctr("images", "pull", "--hosts-dir", str(certs), *user, image,
                         namespace="x")  # fmt: skip
    kubelet = case.ctr_user.split(":", 1) if case.secret and case.ctr_user else ["", ""]
    with containerd.cri() as cri:
        try:
            cri.pull(image, username=kubelet[0], password=kubelet[1])
            cri_ok = True
        except CriError:
            cri_ok = False
    containerd.stop()
    assert verdict["ok"] == (case.step == "pull"), verdict
    assert verdict["step"] == ("" if verdict["ok"] else case.step), verdict
    assert (ctr.returncode == 0) == verdict["ok"], (verdict, ctr.stderr[-500:])
    assert cri_ok == verdict["ok"], verdict
    if not verdict["ok"]:
        assert verdict["fix"], verdict
    assert f"{USER}:{PASSWORD}" not in ran.stdout + ran.stderr
    assert f"'{PASSWORD}'" not in ran.stdout + ran.stderr


POD = """apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      imagePullSecrets: [{{name: regcred}}, {{name: forgotten}}]
      initContainers: [{{name: init, image: "{init}"}}]
      containers: [{{name: web, image: "{web}"}}]
"""


def test_doctor_reads_a_workload_and_checks_the_sandbox_image(
    nodelab: NodeLab, tmp_path: Path, pause: Image
):
    """--pod takes a workload's images and imagePullSecrets; the sandbox image goes through
    the same path without the kubelet's credentials, and is checked against kubeadm's pause
    version; the library gives the same verdicts as the command."""
    init, web, sandbox = _repo("init"), _repo("web"), _repo("pause")
    corp = nodelab.registry(CORP)
    seed(corp, f"k8s/{init}", "1", pause)
    seed(corp, f"k8s/{sandbox}", "3.6", pause)
    root = tmp_path / "node"
    _node_config(nodelab, root, "--mirror", f"{SOURCE}={CORP}/k8s", "--ca-file",
                 str(nodelab.corp_pki.ca_cert), "--runtime", "containerd")  # fmt: skip
    (root / "etc" / "containerd" / "config.toml").write_text(
        "version = 2\n"
        '[plugins."io.containerd.grpc.v1.cri"]\n'
        f'  sandbox_image = "{SOURCE}/{sandbox}:3.6"\n'
        '[plugins."io.containerd.grpc.v1.cri".registry]\n'
        '  config_path = "/etc/containerd/certs.d"\n'
    )
    secret = tmp_path / "regcred.yaml"
    secret.write_text(_secret("kubernetes.io/dockercfg", ".dockercfg", {
        SOURCE: {"auth": base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}}))  # fmt: skip
    pod = tmp_path / "web.yaml"
    pod.write_text(POD.format(init=f"{SOURCE}/{init}:1", web=f"{SOURCE}/{web}:2"))
    args = ["--node-root", str(root), "--pod", str(pod), "--secret", str(secret),
            "--kubernetes-version", "v1.28.4"]  # fmt: skip
    shown = nodelab.imgmirror("doctor", *args)
    assert shown.returncode == 1, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == f"ok {SOURCE}/{init}:1 via {CORP}"  # the secret's credentials
    assert lines[1].startswith(f"FAIL {SOURCE}/{web}:2: https://{CORP}/v2/k8s: ")
    assert "copy the image" in lines[1]
    # the CRI plugin pulls the sandbox image itself: no kubelet credentials, so 401
    assert lines[2].startswith(f"FAIL {SOURCE}/{sandbox}:3.6 (sandbox image): ")
    assert "wants credentials" in lines[2]
    assert "kubeadm for Kubernetes v1.28.4 uses pause:3.9" in lines[3]
    assert "imagePullSecret forgotten was not given" in shown.stderr
    library = nodelab.run(
        [
            sys.executable,
            "-c",
            (
                "import imgmirror, json, sys; r = imgmirror.doctor(node_root=sys.argv[1],"
                " pod=sys.argv[2], secret=sys.argv[3], kubernetes_version='v1.28.4');"
                "print(json.dumps([v.line() for v in r.verdicts]))"
            ),
            str(root),
            str(pod),
            str(secret),
        ]
    )
    assert library.returncode == 0, library.stderr
    assert json.loads(library.stdout) == [ln for ln in lines if not ln.startswith("  ")]


@pytest.mark.parametrize("with_auth", [True, False])
def test_doctor_agrees_with_podman_on_a_crio_node(
    nodelab: NodeLab, tmp_path: Path, pause: Image, with_auth: bool
):
    """--runtime crio follows registries.conf, containers/certs.d and the auth file, and its
    verdict is whether podman, reading the same files, pulls."""
    repo = _repo("app")
    seed(nodelab.registry(CORP), f"k8s/{repo}", "1.0", pause)
    root = tmp_path / "node"
    creds = ["--creds", f"{USER}:{PASSWORD}"] if with_auth else []
    ca = str(nodelab.corp_pki.ca_cert)
    _node_config(nodelab, root, "--mirror", f"{SOURCE}={CORP}/k8s", "--ca-file", ca,
                 "--runtime", "crio", "--no-fallback", *creds)  # fmt: skip
    image = f"{SOURCE}/{repo}:1.0"
    ran = nodelab.imgmirror("doctor", image, "--node-root", str(root), "--runtime", "crio",
                            "--json", "--timeout", "5")  # fmt: skip
    assert ran.stdout, ran.stderr
    verdict = json.loads(ran.stdout)["verdicts"][0]
    etc = root / "etc" / "containers"
    extra = ["--cert-dir", str(etc / "certs.d" / CORP)]
    if with_auth:
        extra += ["--authfile", str(etc / "auth.json")]
    pulled = _podman(nodelab, tmp_path, root, *extra)("pull", image)
    assert verdict["ok"] == with_auth, verdict
    assert (pulled.returncode == 0) == verdict["ok"], pulled.stderr
    if not with_auth:
        assert verdict["step"] == "credentials"
