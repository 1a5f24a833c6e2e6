"""A loopback stand-in for a Kubernetes API server's discovery endpoints.

``kubectl create --dry-run=client -f FILE`` maps every document's apiVersion/kind to a resource
through discovery before it decodes and prints the object, so it needs a server even though
nothing is created. :class:`Discovery` answers ``/api``, ``/apis``, ``/api/v1`` and
``/apis/batch/v1`` with the resources the sync manifests use (ConfigMap, Secret, CronJob, Job)
and nothing else, so an unknown kind or a wrong apiVersion still fails as against a cluster.
There is no OpenAPI schema here (kubectl wants it as protobuf): kubectl runs with
``--validate=false`` and the tests check the schemas with ``kubernetes_validate``.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


def _resource(name: str, kind: str) -> dict[str, Any]:
    return {"name": name, "singularName": kind.lower(), "namespaced": True, "kind": kind,
            "verbs": VERBS}  # fmt: skip


DOCUMENTS: dict[str, dict[str, Any]] = {
    "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
    "/apis": {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [
            {
                "name": "batch",
                "versions": [{"groupVersion": "batch/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": "batch/v1", "version": "v1"},
            }
        ],
    },
    "/api/v1": {
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [_resource("configmaps", "ConfigMap"), _resource("secrets", "Secret")],
    },
    "/apis/batch/v1": {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": "batch/v1",
        "resources": [_resource("cronjobs", "CronJob"), _resource("jobs", "Job")],
    },
}


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        document = DOCUMENTS.get(self.path.split("?")[0].rstrip("/"))
        body = json.dumps(document or {"kind": "Status", "code": 404}).encode()
        self.send_response(200 if document else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Discovery:
    """``with Discovery(tmp_path) as kube: kube.kubeconfig`` (a file pointing kubectl at it)."""

    def __init__(self, directory: Path) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.kubeconfig = directory / "kubeconfig"
        url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: t\n"
            f"clusters: [{{name: t, cluster: {{server: '{url}'}}}}]\n"
            "contexts: [{name: t, context: {cluster: t, user: t, namespace: mirror}}]\n"
            "users: [{name: t, user: {}}]\n"
        )
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Discovery:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
