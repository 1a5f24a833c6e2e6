"""A recorded stand-in for a Kubernetes API server, for ``find-images --cluster``.

No API server can run here (Debian 12 and PyPI ship no kube-apiserver), so this one answers
what find-images and ``kubectl get`` ask, the way the real one does: discovery
(``/api``, ``/apis``, the group versions), collections cluster-wide and per namespace with
``limit`` and ``continue`` pages (items without ``kind``, a ``metadata.continue`` token and
``remainingItemCount``, fewer items than the limit when the server chooses, 400 for a
malformed token), ``Status`` objects for 401 and 403 with the API server's wording, bearer
token authentication, and TLS with the test CA. The objects are shaped as a v1.30 API
server returns them (uid, resourceVersion, managedFields, ``last-applied-configuration``,
container statuses with ``imageID``).
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

GROUPS = {
    "/api/v1": [("pods", "Pod"), ("replicationcontrollers", "ReplicationController"),
                ("namespaces", "Namespace")],
    "/apis/apps/v1": [("deployments", "Deployment"), ("daemonsets", "DaemonSet"),
                      ("statefulsets", "StatefulSet"), ("replicasets", "ReplicaSet")],
    "/apis/batch/v1": [("jobs", "Job"), ("cronjobs", "CronJob")],
}  # fmt: skip
RESOURCE_VERSION = "48213"


def _resource_list(group_version: str, resources: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": [
            {"name": name, "singularName": kind.lower(), "namespaced": name != "namespaces",
             "kind": kind, "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]}
            for name, kind in resources
        ],
    }  # fmt: skip


DISCOVERY: dict[str, dict[str, Any]] = {
    "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
        {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
        {"name": group, "versions": [{"groupVersion": f"{group}/v1", "version": "v1"}],
         "preferredVersion": {"groupVersion": f"{group}/v1", "version": "v1"}}
        for group in ("apps", "batch")]},
    "/api/v1": _resource_list("v1", GROUPS["/api/v1"]),
    "/apis/apps/v1": _resource_list("apps/v1", GROUPS["/apis/apps/v1"]),
    "/apis/batch/v1": _resource_list("batch/v1", GROUPS["/apis/batch/v1"]),
}  # fmt: skip


def status(code: int, reason: str, message: str, kind: str = "") -> dict[str, Any]:
    """A ``Status`` object as the API server sends with an error."""
    details = {"kind": kind} if kind else {}
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "details": details, "code": code}  # fmt: skip


class KubeCluster:
    """``with KubeCluster(tmp_path, pki, objects) as kube: kube.kubeconfig``.

    Args:
        objects: ``{resource: [object, ...]}`` (``pods``, ``deployments``...); each object's
            ``metadata.namespace`` places it.
        token: the bearer token the server accepts.
        forbidden: namespaces the token may not read (403 for every resource there).
        cluster_wide: whether cluster-wide lists are allowed (else 403, as for a user
            bound to namespaced Roles only).
        page_cap: at most this many items per page, whatever ``limit`` asks (the API
            server may return fewer than the limit).
    """

    def __init__(
        self,
        directory: Path,
        cert: Path,
        key: Path,
        ca: Path,
        objects: dict[str, list[dict[str, Any]]],
        *,
        token: str = "kube-token-0123456789",  # noqa: S107 - a test server's token
        forbidden: frozenset[str] = frozenset(),
        cluster_wide: bool = False,
        page_cap: int = 2,
    ) -> None:
        self.objects = objects
        self.token = token
        self.forbidden = forbidden
        self.cluster_wide = cluster_wide
        self.page_cap = page_cap
        self.requests: list[tuple[str, int, dict[str, str]]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        self.kubeconfig = directory / "kubeconfig"
        ca_data = base64.b64encode(ca.read_bytes()).decode()
        self.kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: lab\n"
            f"clusters:\n- name: lab\n  cluster:\n    server: {self.url}\n"
            f"    certificate-authority-data: {ca_data}\n"
            "contexts:\n- name: lab\n  context: {cluster: lab, user: reader}\n"
            f"users:\n- name: reader\n  user:\n    token: {token}\n"
        )
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> KubeCluster:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def namespaces(self) -> list[str]:
        found = {o["metadata"]["namespace"] for items in self.objects.values() for o in items}
        return sorted(found | self.forbidden)

    def answer(self, path: str, query: dict[str, str], auth: str) -> tuple[int, dict[str, Any]]:
        """The status and JSON body for one GET."""
        if auth != f"Bearer {self.token}":
            return 401, status(401, "Unauthorized", "Unauthorized")
        if path in DISCOVERY:
            return 200, DISCOVERY[path]
        parts = path.strip("/").split("/")
        prefix = "/" + "/".join(parts[:2] if parts[0] == "api" else parts[:3])
        rest = parts[2:] if parts[0] == "api" else parts[3:]
        group = prefix.split("/", 2)[2] if prefix.startswith("/apis") else ""
        if rest == ["namespaces"]:
            items = [{"metadata": {"name": n, "uid": f"ns-{n}", "resourceVersion": "1"},
                      "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
                     for n in self.namespaces()]  # fmt: skip
            return self._page("NamespaceList", "v1", items, query)
        namespace = rest[1] if len(rest) == 3 and rest[0] == "namespaces" else None
        resource = rest[-1] if rest else ""
        kinds = dict(GROUPS.get(prefix, []))
        if resource not in kinds or (len(rest) != 1 and namespace is None):
            return 404, status(404, "NotFound", "the server could not find the requested resource")
        user = 'User "system:serviceaccount:tools:reader"'
        if namespace is None and not self.cluster_wide:
            return 403, status(403, "Forbidden", f'{resource} is forbidden: {user} cannot list '
                               f'resource "{resource}" in API group "{group}" at the cluster scope',
                               resource)  # fmt: skip
        if namespace in self.forbidden:
            return 403, status(403, "Forbidden", f'{resource} is forbidden: {user} cannot list '
                               f'resource "{resource}" in API group "{group}" in the namespace '
                               f'"{namespace}"', resource)  # fmt: skip
        items = [o for o in self.objects.get(resource, [])
                 if namespace is None or o["metadata"]["namespace"] == namespace]  # fmt: skip
        version = "v1" if prefix == "/api/v1" else f"{group}/v1"
        return self._page(f"{kinds[resource]}List", version, items, query)

    def _page(
        self, kind: str, version: str, items: list[dict[str, Any]], query: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        items = sorted(items, key=lambda o: (o["metadata"].get("namespace", ""),
                                             o["metadata"]["name"]))  # fmt: skip
        start = 0
        if query.get("continue"):
            try:
                token = json.loads(base64.urlsafe_b64decode(query["continue"]))
                start = int(token["start"])
            except (ValueError, KeyError, TypeError):
                return 400, status(400, "BadRequest", "continue key is not valid: bad token")
        limit = int(query.get("limit") or 0) or len(items) or 1
        size = min(limit, self.page_cap)
        page = items[start : start + size]
        metadata: dict[str, Any] = {"resourceVersion": RESOURCE_VERSION}
        if start + size < len(items):
            token = {"v": "meta.k8s.io/v1", "rv": int(RESOURCE_VERSION), "start": start + size}
            metadata["continue"] = base64.urlsafe_b64encode(json.dumps(token).encode()).decode()
            metadata["remainingItemCount"] = len(items) - start - size
        return 200, {"kind": kind, "apiVersion": version, "metadata": metadata, "items": page}


def _handler(cluster: KubeCluster) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            code, body = cluster.answer(url.path, query, self.headers.get("Authorization", ""))
            cluster.requests.append((url.path, code, query))
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
