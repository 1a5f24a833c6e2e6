"""``imgmirror secret create|check`` against kubectl (the reference) and real registries."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import imgmirror
from imgmirror import ClientOptions
from tests.support.images import make_image
from tests.support.registry import Registry, RegistryFactory
from tests.support.seed import seed
from tests.support.tools import require_tool, run_cli


def kubectl_secret(tmp_path: Path, *args: str) -> dict[str, Any]:
    kubectl = require_tool("kubectl")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("")
    proc = subprocess.run(
        [kubectl, "create", "secret", "docker-registry", *args, "--dry-run=client", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
    )
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def decoded(doc: dict[str, Any]) -> Any:
    return json.loads(base64.b64decode(doc["data"][".dockerconfigjson"]))


CASES = [
    ("reg.corp:5000", "alice", "s3cret", None, None),
    ("https://index.docker.io/v1/", "hubuser", "pa:ss:word", "ns1", None),
    ("ghcr.io", "bot", "ghp_Token-123", "kube-system", "bot@example.com"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("output", ["json", "yaml"])
def test_create_matches_kubectl(tmp_path, case, output):
    server, user, password, namespace, email = case
    kubectl_args = [
        "pull",
        f"--docker-server={server}",
        f"--docker-username={user}",
        f"--docker-password={password}",
    ]
    ours_args = ["secret", "create", "pull", "--registry", server, "--creds", f"{user}:{password}"]
    if namespace:
        kubectl_args.append(f"--namespace={namespace}")
        ours_args += ["--namespace", namespace]
    if email:
        kubectl_args.append(f"--docker-email={email}")
        ours_args += ["--email", email]
    expected = kubectl_secret(tmp_path, *kubectl_args)

    proc = run_cli(*ours_args, "-o", output)

    assert proc.returncode == 0, proc.stderr
    ours = json.loads(proc.stdout) if output == "json" else yaml.safe_load(proc.stdout)
    assert decoded(ours) == decoded(expected)
    assert ours["type"] == expected["type"] == "kubernetes.io/dockerconfigjson"
    assert ours["metadata"].get("namespace") == namespace
    assert ours["metadata"]["name"] == expected["metadata"]["name"]


def test_creds_from_stdin_keep_the_password_off_the_command_line():
    proc = run_cli(
        "secret", "create", "pull", "--registry", "r.corp", "--creds", "-", stdin="u:pw\n"
    )
    assert proc.returncode == 0, proc.stderr
    entry = decoded(yaml.safe_load(proc.stdout))["auths"]["r.corp"]
    assert (entry["username"], entry["password"]) == ("u", "pw")


def _write_secret(path: Path, kind: str, key: str, content: object) -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "pull", "namespace": "default"},
        "type": kind,
        "data": {key: base64.b64encode(json.dumps(content).encode()).decode()},
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def test_check_reports_the_motivating_mistake_both_ways(tmp_path):
    auth = base64.b64encode(b"u:pw").decode()
    legacy = {"reg.corp": {"auth": auth}}
    config = {"auths": legacy}
    wrong_new = _write_secret(
        tmp_path / "a.yaml", "kubernetes.io/dockerconfigjson", ".dockerconfigjson", legacy
    )
    wrong_old = _write_secret(tmp_path / "b.yaml", "kubernetes.io/dockercfg", ".dockercfg", config)

    proc = run_cli("secret", "check", str(wrong_new))
    assert proc.returncode == 1
    assert proc.stdout.strip() == (
        f"{wrong_new}: type is kubernetes.io/dockerconfigjson but .dockerconfigjson holds a "
        'legacy .dockercfg map (no "auths"): the kubelet ignores it: recreate it with '
        "imgmirror secret create or kubectl create secret docker-registry"
    )
    proc = run_cli("secret", "check", str(wrong_old))
    assert proc.returncode == 1
    assert 'holds a config.json (with "auths")' in proc.stdout
    assert "set type kubernetes.io/dockerconfigjson" in proc.stdout
    assert "pw" not in proc.stdout.replace(str(tmp_path), "")


def test_check_one_line_per_problem(tmp_path):
    content = {
        "auths": {
            "reg.corp": {"username": "bob", "password": "x", "auth": "dTpwdw=="},
            "other.corp": {},
        }
    }
    path = _write_secret(
        tmp_path / "s.yaml", "kubernetes.io/dockerconfigjson", ".dockerconfigjson", content
    )
    proc = run_cli("secret", "check", str(path), "--registry", "third.corp", "--offline")
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 1
    assert len(lines) == 4, lines
    assert any("username is 'bob'" in line for line in lines)
    assert any("password in auth differs" in line for line in lines)
    assert any("'other.corp' has no auth" in line for line in lines)
    assert any("no entry matches registry third.corp" in line for line in lines)


@pytest.fixture
def private_token_registry(registry_factory: RegistryFactory) -> Registry:
    return registry_factory(name="private", auth="token", anonymous_pull=False)


@pytest.mark.registry
def test_check_logs_in_to_the_registry(tmp_path, private_token_registry):
    host = private_token_registry.host
    seed(private_token_registry, "app", "1", make_image(marker="secret"))
    good = tmp_path / "good.json"
    bad = tmp_path / "bad.json"
    good.write_text(
        run_cli(
            "secret", "create", "p", "--registry", host, "--creds", "pusher:pushpass", "-o", "json"
        ).stdout
    )
    bad.write_text(
        run_cli(
            "secret",
            "create",
            "p",
            "--registry",
            host,
            "--creds",
            "pusher:Wrong-Pw-987",
            "-o",
            "json",
        ).stdout
    )

    ok = run_cli("secret", "check", str(good), "--registry", host, "--repository", "app")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"{host} accepts the credentials (user 'pusher') and may pull app" in ok.stdout

    refused = run_cli("secret", "check", str(bad), "--registry", host)
    assert refused.returncode == 1
    assert f"credentials for {host} (user 'pusher') do not work" in refused.stdout
    assert "Wrong-Pw-987" not in refused.stdout + refused.stderr


@pytest.mark.registry
def test_kubectl_secret_drives_the_mirror(tmp_path, basic_registry, anon_registry, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "empty"))
    image = make_image(marker="kubectl-secret")
    seed(basic_registry, "src/app", "1", image)
    secret = kubectl_secret(
        tmp_path,
        "pull",
        f"--docker-server={basic_registry.host}",
        "--docker-username=alice",
        "--docker-password=secret",
    )
    path = tmp_path / "secret.json"
    path.write_text(json.dumps(secret))

    check = run_cli(
        "secret",
        "check",
        str(path),
        "--registry",
        basic_registry.host,
        "--ca-file",
        str(basic_registry.ca_file),
    )
    assert check.returncode == 0, check.stdout + check.stderr

    result = imgmirror.copy(
        basic_registry.ref("src/app", "1"),
        anon_registry.ref("dst/app", "1"),
        authfile=str(path),
        options=ClientOptions(ca_file=str(basic_registry.ca_file)),
    )
    assert result.digest == image.digest


@pytest.mark.parametrize(
    ("name", "registry", "message"),
    [
        ("Reg_Cred", "reg.corp", "Secret name 'Reg_Cred' is not a valid Kubernetes name"),
        ("regcred.", "reg.corp", "is not a valid Kubernetes name"),
        ("a" * 254, "reg.corp", "is not a valid Kubernetes name"),
        ("regcred", "reg", "registry 'reg': needs a '.' or a ':port'"),
        ("regcred", "reg.corp:0", "port 0 of registry host 'reg.corp:0'"),
        ("regcred", "reg.corp:999999", "is not between 1 and 65535"),
        ("regcred", "bad host", "is not a host"),
        ("regcred", "https://", "is not a host"),
    ],
)
def test_create_refuses_what_the_api_server_or_kubelet_would(name, registry, message):
    """A Secret the API server refuses (its name is a DNS-1123 subdomain), or one keyed by
    something no image name starts with, is one line and exit 1, and nothing on stdout."""
    proc = run_cli("secret", "create", name, "--registry", registry, "--creds", "a:s3cret")
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == ""
    (line,) = proc.stderr.strip().splitlines()
    assert message in line
    assert "s3cret" not in line


@pytest.mark.parametrize("registry", ["localhost:5000", "[::1]:5000", "10.0.0.1:443",
                                      "https://index.docker.io/v1/", "docker.io"])  # fmt: skip
def test_create_takes_every_registry_host_form(registry):
    proc = run_cli("secret", "create", "a.b-c", "--registry", registry, "--creds", "a:b", "-o",
                   "json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert list(decoded(json.loads(proc.stdout))["auths"]) == [registry]
