"""A live cluster's images, from the Kubernetes API.

Lists Pods, Deployments, DaemonSets, StatefulSets, ReplicaSets, ReplicationControllers,
Jobs and CronJobs (so workloads scaled to zero and CronJobs that have not run yet count),
across all namespaces, or in the namespaces given. The same extraction as for files reads
each object (list items carry no ``kind``: it is set from the resource). A Pod's containers
also give the digest each one runs, from ``status.containerStatuses[].imageID``
(``initContainerStatuses``, ``ephemeralContainerStatuses``).

When the cluster-wide list is forbidden, the namespaces are listed and read one by one; a
namespace that is forbidden is reported and the others are read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

import attrs

from imgmirror.errors import KubernetesError
from imgmirror.findimages.documents import Document
from imgmirror.findimages.extract import Candidate, candidates
from imgmirror.findimages.found import InputError
from imgmirror.transport.kubeapi import KubeClient

__all__ = ["RESOURCES", "cluster_candidates"]

#: (API path prefix, resource, kind) of everything read.
RESOURCES = (
    ("/api/v1", "pods", "Pod"),
    ("/api/v1", "replicationcontrollers", "ReplicationController"),
    ("/apis/apps/v1", "deployments", "Deployment"),
    ("/apis/apps/v1", "daemonsets", "DaemonSet"),
    ("/apis/apps/v1", "statefulsets", "StatefulSet"),
    ("/apis/apps/v1", "replicasets", "ReplicaSet"),
    ("/apis/batch/v1", "jobs", "Job"),
    ("/apis/batch/v1", "cronjobs", "CronJob"),
)
_DIGEST = re.compile(r"@(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$")
_PATH = re.compile(r"^spec\.(containers|initContainers|ephemeralContainers)\[([^\]]+)\]\.image$")
_STATUSES = {
    "containers": "containerStatuses",
    "initContainers": "initContainerStatuses",
    "ephemeralContainers": "ephemeralContainerStatuses",
}


def _running(pod: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(container list, container name) to the digest it runs, from the pod's status."""
    status = pod.get("status")
    found: dict[tuple[str, str], str] = {}
    if not isinstance(status, dict):
        return found
    for spec_key, status_key in _STATUSES.items():
        for item in status.get(status_key) or ():
            if not isinstance(item, dict) or not isinstance(item.get("imageID"), str):
                continue
            match = _DIGEST.search(item["imageID"])  # docker-pullable://x@sha256:…, x@sha256:…
            if match:
                found[(spec_key, str(item.get("name", "")))] = match[1]
    return found


def _object_candidates(item: dict[str, Any], kind: str, origin: str) -> list[Candidate]:
    found = candidates(Document({**item, "kind": kind}, origin, 0))
    if kind != "Pod":
        return found
    running = _running(item)
    pinned = []
    for candidate in found:
        match = _PATH.match(candidate.source.path)
        digest = running.get((match[1], match[2])) if match else None
        source = attrs.evolve(candidate.source, digest=digest)
        pinned.append(attrs.evolve(candidate, source=source) if digest else candidate)
    return pinned


def _namespaces(client: KubeClient) -> list[str]:
    names = []
    for item in client.list("/api/v1/namespaces"):
        metadata = item.get("metadata")
        if isinstance(metadata, dict) and isinstance(metadata.get("name"), str):
            names.append(metadata["name"])
    return names


def _scopes(client: KubeClient, namespaces: Sequence[str]) -> Iterator[str | None]:
    """None (cluster-wide) when allowed, else each namespace."""
    if namespaces:
        yield from namespaces
        return
    try:
        next(iter(client.list("/api/v1/pods", limit=1)), None)
    except KubernetesError as exc:
        if exc.status != 403:
            raise
        yield from _namespaces(client)
        return
    yield None


def cluster_candidates(
    client: KubeClient, namespaces: Sequence[str] = ()
) -> tuple[list[Candidate], list[InputError]]:
    """Every candidate of the cluster's workloads, and what could not be read (a forbidden
    namespace or resource is an error of its own; the rest is read).

    Raises:
        KubernetesError: the API server cannot be reached, or neither the cluster-wide
            lists nor the namespace list are allowed.
    """
    origin = f"cluster {client.target.context}"
    found: list[Candidate] = []
    errors: list[InputError] = []
    for namespace in _scopes(client, namespaces):
        scope = f"/namespaces/{namespace}" if namespace else ""
        refused: list[str] = []
        first = ""
        for prefix, resource, kind in RESOURCES:
            try:
                for item in client.list(f"{prefix}{scope}/{resource}"):
                    found.extend(_object_candidates(item, kind, origin))
            except KubernetesError as exc:
                if exc.status not in (403, 404):
                    raise
                refused.append(resource)
                first = first or exc.message
        if refused:
            where = f"{origin} namespace {namespace}" if namespace else origin
            errors.append(InputError(where, f"not read ({', '.join(refused)}): {first}"))
    return found, errors
