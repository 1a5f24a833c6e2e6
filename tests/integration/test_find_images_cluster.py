"""find-images --cluster against the recorded API server stand-in (tests/support/kubecluster.py):
TLS with the test CA, a bearer token, pages followed by ``continue``, a forbidden namespace
reported while the others are read, and the digest each container runs. kubectl itself
lists the stand-in's pages, so the protocol is the one a real client speaks."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from tests.support.certs import TestPKI
from tests.support.kubecluster import KubeCluster
from tests.support.tools import require_tool, run_cli

NGINX = "sha256:" + "1" * 64
BUSYBOX = "sha256:" + "2" * 64
EXPORTER = "sha256:" + "3" * 64


def meta(name: str, namespace: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "uid": f"uid-{namespace}-{name}",
        "resourceVersion": "48100",
        "creationTimestamp": "2024-05-01T10:00:00Z",
        "managedFields": [
            {
                "manager": "kubectl-client-side-apply",
                "operation": "Update",
                "apiVersion": "apps/v1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {},
            }
        ],
        **extra,
    }


def container(name: str, image: str) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "resources": {},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }


def pod_template(
    *containers: dict[str, Any], init: tuple[dict[str, Any], ...] = ()
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": list(containers),
        "restartPolicy": "Always",
        "dnsPolicy": "ClusterFirst",
        "schedulerName": "default-scheduler",
    }
    if init:
        spec["initContainers"] = list(init)
    return {"metadata": {"labels": {"app": containers[0]["name"]}}, "spec": spec}


def status(name: str, image: str, image_id: str) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "imageID": image_id,
        "ready": True,
        "restartCount": 0,
        "started": True,
        "containerID": "containerd://" + "f" * 64,
        "state": {"running": {"startedAt": "2024-05-01T10:00:05Z"}},
    }


LAST_APPLIED = json.dumps(
    {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "spec": {
            "template": {
                "spec": {"containers": [{"name": "web", "image": "quay.io/shop/web-previous:0.9"}]}
            }
        },
    }
)


def objects() -> dict[str, list[dict[str, Any]]]:
    web = pod_template(container("web", "nginx:1.25.3"), init=(container("init", "busybox:1.36"),))
    web_pods = [
        {
            "metadata": meta(
                f"web-7d4b9c-{suffix}",
                "shop",
                ownerReferences=[
                    {
                        "apiVersion": "apps/v1",
                        "kind": "ReplicaSet",
                        "name": "web-7d4b9c",
                        "uid": "uid-rs",
                        "controller": True,
                    }
                ],
            ),
            "spec": {**web["spec"], "nodeName": "node-1"},
            "status": {
                "phase": "Running",
                "podIP": "10.0.0.5",
                "initContainerStatuses": [
                    status(
                        "init",
                        "docker.io/library/busybox:1.36",
                        f"docker.io/library/busybox@{BUSYBOX}",
                    )
                ],
                "containerStatuses": [
                    status(
                        "web", "docker.io/library/nginx:1.25.3", f"docker.io/library/nginx@{NGINX}"
                    )
                ],
            },
        }
        for suffix in ("abcde", "fghij", "klmno")
    ]
    debug_pod = {
        "metadata": meta("node-exporter-x1", "ops"),
        "spec": {
            "containers": [container("exporter", "quay.io/prometheus/node-exporter:v1.8.0")],
            "ephemeralContainers": [container("debugger", "nicolaka/netshoot:v0.13")],
        },
        "status": {
            "phase": "Running",
            "containerStatuses": [
                status(
                    "exporter",
                    "quay.io/prometheus/node-exporter:v1.8.0",
                    f"docker-pullable://quay.io/prometheus/node-exporter@{EXPORTER}",
                )
            ],
            "ephemeralContainerStatuses": [
                {
                    "name": "debugger",
                    "image": "nicolaka/netshoot:v0.13",
                    "imageID": "",
                    "state": {"waiting": {"reason": "PodInitializing"}},
                }
            ],
        },
    }
    return {
        "pods": [*web_pods, debug_pod],
        "deployments": [
            {
                "metadata": meta(
                    "web",
                    "shop",
                    annotations={
                        "kubectl.kubernetes.io/last-applied-configuration": LAST_APPLIED,
                        "deployment.kubernetes.io/revision": "3",
                    },
                ),
                "spec": {
                    "replicas": 3,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": web,
                },
                "status": {"replicas": 3, "readyReplicas": 3},
            },
            {
                "metadata": meta("batch-worker", "shop"),
                "spec": {
                    "replicas": 0,
                    "selector": {"matchLabels": {"app": "worker"}},
                    "template": pod_template(container("worker", "quay.io/shop/worker:2.0")),
                },
                "status": {},
            },
        ],
        "replicasets": [
            {"metadata": meta("web-7d4b9c", "shop"), "spec": {"replicas": 3, "template": web}}
        ],
        "daemonsets": [
            {
                "metadata": meta("node-exporter", "ops"),
                "spec": {
                    "template": pod_template(
                        container("exporter", "quay.io/prometheus/node-exporter:v1.8.0")
                    )
                },
            }
        ],
        "statefulsets": [
            {
                "metadata": meta("db", "shop"),
                "spec": {"template": pod_template(container("postgres", "postgres:16.3"))},
            }
        ],
        "replicationcontrollers": [
            {
                "metadata": meta("legacy", "ops"),
                "spec": {
                    "template": pod_template(container("legacy", "registry.corp/legacy/app:1"))
                },
            }
        ],
        "jobs": [
            {
                "metadata": meta("migrate", "shop"),
                "spec": {"template": pod_template(container("migrate", "ghcr.io/shop/migrate:7"))},
            }
        ],
        "cronjobs": [
            {
                "metadata": meta("backup", "ops"),
                "spec": {
                    "schedule": "0 3 * * *",
                    "jobTemplate": {
                        "spec": {
                            "template": pod_template(
                                container("backup", "registry.corp/tools/backup:3.1")
                            )
                        }
                    },
                },
                "status": {},
            }
        ],
    }


EXPECTED = [
    "busybox:1.36",
    "ghcr.io/shop/migrate:7",
    "nginx:1.25.3",
    "nicolaka/netshoot:v0.13",
    "postgres:16.3",
    "quay.io/prometheus/node-exporter:v1.8.0",
    "quay.io/shop/worker:2.0",
    "registry.corp/legacy/app:1",
    "registry.corp/tools/backup:3.1",
]


@pytest.fixture
def kube(tmp_path, test_pki: TestPKI):
    with KubeCluster(
        tmp_path,
        test_pki.server_cert,
        test_pki.server_key,
        test_pki.ca_cert,
        objects(),
        forbidden=frozenset({"payments"}),
    ) as cluster:
        yield cluster


def test_every_workload_image_and_the_digest_each_container_runs(kube):
    done = run_cli("find-images", "--cluster", "--kubeconfig", str(kube.kubeconfig), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    images = {i["image"]: i for i in report["images"]}
    assert sorted(images) == EXPECTED
    assert images["nginx:1.25.3"]["digests"] == [NGINX]
    assert images["busybox:1.36"]["digests"] == [BUSYBOX]
    assert images["quay.io/prometheus/node-exporter:v1.8.0"]["digests"] == [EXPORTER]
    assert images["quay.io/shop/worker:2.0"]["digests"] == []  # scaled to zero: no pod
    kinds = {s["kind"] for s in images["nginx:1.25.3"]["sources"]}
    assert kinds == {"Pod", "Deployment", "ReplicaSet"}
    pod = next(s for s in images["nginx:1.25.3"]["sources"] if s["kind"] == "Pod")
    assert pod == {
        "file": "cluster lab",
        "line": 0,
        "kind": "Pod",
        "name": "shop/web-7d4b9c-abcde",
        "path": "spec.containers[web].image",
        "direct": True,
        "digest": NGINX,
    }
    assert report["errors"] == [
        {
            "where": "cluster lab namespace payments",
            "message": "not read (pods, replicationcontrollers, deployments, daemonsets, "
            "statefulsets, replicasets, jobs, cronjobs): GET /api/v1/namespaces/payments/pods: "
            'pods is forbidden: User "system:serviceaccount:tools:reader" cannot list resource '
            '"pods" in API group "" in the namespace "payments"',
        }
    ]
    assert "quay.io/shop/web-previous:0.9" not in images  # last-applied-configuration
    pages = [q for path, code, q in kube.requests if path == "/api/v1/namespaces/shop/pods"]
    assert [bool(q.get("continue")) for q in pages] == [False, True]  # 3 pods, 2 per page
    assert ("/api/v1/pods", 403) in {(path, code) for path, code, _ in kube.requests}


def test_namespaces_given_are_the_only_ones_read_and_why_shows_the_digest(kube):
    done = run_cli(
        "find-images", "--cluster", "--kubeconfig", str(kube.kubeconfig), "-n", "ops", "--why"
    )
    assert done.returncode == 0, done.stderr
    images = [line for line in done.stdout.splitlines() if not line.startswith(" ")]
    assert images == [
        "nicolaka/netshoot:v0.13",
        "quay.io/prometheus/node-exporter:v1.8.0",
        "registry.corp/legacy/app:1",
        "registry.corp/tools/backup:3.1",
    ]
    assert (
        f"  # from cluster lab Pod/ops/node-exporter-x1 spec.containers[exporter].image "
        f"(runs {EXPORTER})"
    ) in done.stdout.splitlines()
    assert not any(path == "/api/v1/namespaces" for path, _, _ in kube.requests)


def test_a_refused_token_is_one_error_that_never_shows_the_token(kube, tmp_path):
    config = tmp_path / "wrong"
    config.write_text(kube.kubeconfig.read_text().replace(kube.token, "wrong-token-42"))
    done = run_cli("find-images", "--cluster", "--kubeconfig", str(config))
    assert done.returncode == 1
    assert "imgmirror: error: cluster lab: GET /api/v1/pods: Unauthorized" in done.stderr
    assert "wrong-token-42" not in done.stderr + done.stdout


def test_an_untrusted_server_certificate_is_refused(kube, tmp_path):
    config = tmp_path / "noca"
    text = kube.kubeconfig.read_text()
    config.write_text(
        "\n".join(line for line in text.splitlines() if "certificate-authority" not in line)
    )
    done = run_cli("find-images", "--cluster", "--kubeconfig", str(config))
    assert done.returncode == 1
    assert "CERTIFICATE_VERIFY_FAILED" in done.stderr


def test_kubectl_reads_the_stand_in_page_by_page(tmp_path, test_pki: TestPKI):
    kubectl = require_tool("kubectl")
    with KubeCluster(
        tmp_path,
        test_pki.server_cert,
        test_pki.server_key,
        test_pki.ca_cert,
        objects(),
        cluster_wide=True,
    ) as kube:
        done = subprocess.run(
            [
                kubectl,
                "--kubeconfig",
                str(kube.kubeconfig),
                "get",
                "pods",
                "-A",
                "-o",
                "json",
                "--chunk-size=1",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        names = [item["metadata"]["name"] for item in json.loads(done.stdout)["items"]]
        assert names == [
            "node-exporter-x1",
            "web-7d4b9c-abcde",
            "web-7d4b9c-fghij",
            "web-7d4b9c-klmno",
        ]
        pages = [q for path, _, q in kube.requests if path == "/api/v1/pods"]
        assert len(pages) == 4
        assert all(q.get("continue") for q in pages[1:])
        listing = run_cli("find-images", "-", stdin=done.stdout)  # kubectl's List, piped in
        assert listing.stdout.splitlines() == [
            "busybox:1.36",
            "nginx:1.25.3",
            "nicolaka/netshoot:v0.13",
            "quay.io/prometheus/node-exporter:v1.8.0",
        ]
