"""The Kubernetes manifest of docs/sync.md: kubectl reads it, and what it runs is sound."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from imgmirror.auth.pullsecret import check_secret
from imgmirror.syncing.file import parse_sync_file
from tests.support.kubeapi import Discovery
from tests.support.tools import require_tool, run_cli

DOC = Path(__file__).resolve().parents[2] / "docs" / "sync.md"
CONTAINERFILE = DOC.parents[1] / "Containerfile"
#: The Kubernetes release whose schemas the manifest must satisfy (kubectl here is 1.32).
KUBERNETES = "1.32"


def manifest_text() -> str:
    text = DOC.read_text()
    match = re.search(r"<!-- kubernetes-manifest[^>]*-->\n```yaml\n(.*?)```", text, re.S)
    assert match, "docs/sync.md lost its marked Kubernetes manifest"
    return match.group(1)


def test_kubectl_creates_the_manifest(tmp_path):
    kubectl = require_tool("kubectl")
    path = tmp_path / "sync-cronjob.yaml"
    path.write_text(manifest_text())
    with Discovery(tmp_path) as kube:
        done = subprocess.run(
            [kubectl, "create", "--dry-run=client", "--validate=false", "-o", "yaml", "-f",
             str(path)],
            capture_output=True, text=True, timeout=60, check=False,
            env={**os.environ, "KUBECONFIG": str(kube.kubeconfig)},
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    printed = [d for d in yaml.safe_load_all(done.stdout) if d]
    docs = {d["kind"]: d for d in printed}
    assert set(docs) == {"ConfigMap", "Secret", "CronJob"}
    assert {d["metadata"]["namespace"] for d in printed} == {"mirror"}
    check_manifest(docs)


def test_the_manifest_satisfies_the_kubernetes_schemas():
    """kubectl above runs with ``--validate=false``: its schema check needs the API server's
    protobuf OpenAPI document. The same check, strict (unknown fields refused), is made here
    against the schemas generated from Kubernetes' own OpenAPI specification."""
    for document in yaml.safe_load_all(manifest_text()):
        kubernetes_validate.validate(document, KUBERNETES, strict=True)


def test_the_schema_check_refuses_a_misspelt_field():
    docs = {d["kind"]: d for d in yaml.safe_load_all(manifest_text())}
    docs["CronJob"]["spec"]["jobTemplate"]["spec"]["completionsMode"] = "Indexed"
    with pytest.raises(kubernetes_validate.ValidationError, match="completionsMode"):
        kubernetes_validate.validate(docs["CronJob"], KUBERNETES, strict=True)


def check_manifest(docs: dict[str, Any]) -> None:
    job = docs["CronJob"]["spec"]["jobTemplate"]["spec"]
    pod = job["template"]["spec"]
    (container,) = pod["containers"]
    args = container["args"]
    assert job["completionMode"] == "Indexed"
    assert job["completions"] == job["parallelism"] == 3
    assert "--shards=3" in args
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["sync-file"]["configMap"]["name"] == docs["ConfigMap"]["metadata"]["name"]
    assert volumes["creds"]["secret"]["secretName"] == docs["Secret"]["metadata"]["name"]
    sync_file = args[1]
    assert sync_file == mounts["sync-file"] + "/mirror.yaml"
    authfile = next(a.split("=", 1)[1] for a in args if a.startswith("--authfile="))
    assert authfile == mounts["creds"] + "/.dockerconfigjson"
    user = re.search(r"^USER (\d+):(\d+)$", CONTAINERFILE.read_text(), re.M)
    assert user, "the Containerfile lost its USER line"
    security = pod["securityContext"]
    assert (security["runAsUser"], security["runAsGroup"]) == tuple(map(int, user.groups()))
    assert security["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["image"].rsplit("/", 1)[-1].startswith("imgmirror:")
    spec = parse_sync_file(docs["ConfigMap"]["data"]["mirror.yaml"], "mirror.yaml")
    assert len(spec.entries) == 3
    assert check_secret(docs["Secret"], "artifactrepo1.corp.net") == []


def test_the_command_in_the_manifest_parses(tmp_path):
    """Every option the pod passes is one that ``imgmirror sync`` has."""
    docs = {d["kind"]: d for d in yaml.safe_load_all(manifest_text())}
    args = docs["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0][
        "args"
    ]
    (tmp_path / "mirror.yaml").write_text(docs["ConfigMap"]["data"]["mirror.yaml"])
    done = run_cli(
        "sync", str(tmp_path / "mirror.yaml"), "--shards=3", "--dry-run", "--help",
        env={**os.environ, "JOB_COMPLETION_INDEX": "2"},
    )  # fmt: skip
    assert done.returncode == 0
    assert all(a.split("=")[0] in done.stdout for a in args[2:])
