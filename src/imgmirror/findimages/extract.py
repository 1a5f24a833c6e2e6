"""Kubernetes objects into image candidates, each with the place it came from.

*Direct*: every ``containers``, ``initContainers`` and ``ephemeralContainers`` entry's
``image``, wherever a list of containers appears (Pods, every workload kind, ``List`` items,
pod templates nested in custom resources). *Indirect*, what a program pulls later:

- env values named like images (``*_IMAGE``, ``*_IMAGES``, ``RELATED_IMAGE_*``), one image
  per line, ``version=image`` lines read by their right side;
- ``--*image*=VALUE`` and ``--*image* VALUE`` arguments (one or two dashes, in ``args`` and
  ``command``, also inside a ``sh -c`` string);
- ConfigMap ``data`` values under image-like keys (or any value of a ConfigMap whose name
  says ``image``);
- custom resources' ``image`` and ``*Image`` fields, ``image: {repository, tag}`` maps and
  ``repository`` + ``tag`` (+ ``registry``, ``digest``) maps.

Never: ``metadata`` (labels, annotations, ``last-applied-configuration``, managed fields),
``status``, Secrets, CRDs, comments (the parser drops them). Each candidate then goes
through [judge][imgmirror.findimages.judge.judge]. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import attrs

from imgmirror.findimages.documents import Document, line_of
from imgmirror.findimages.found import Hint, Source
from imgmirror.findimages.judge import judge, judge_shaped

__all__ = ["BUILTIN_KINDS", "Candidate", "candidates", "findings"]

#: Kinds Kubernetes itself defines: their fields are known, so only containers count.
BUILTIN_KINDS = frozenset(
    [
        "Pod",
        "PodTemplate",
        "Deployment",
        "DaemonSet",
        "StatefulSet",
        "ReplicaSet",
        "ReplicationController",
        "Job",
        "CronJob",
        "Service",
        "Endpoints",
        "EndpointSlice",
        "Namespace",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ClusterRole",
        "ClusterRoleBinding",
        "PersistentVolume",
        "PersistentVolumeClaim",
        "StorageClass",
        "Ingress",
        "IngressClass",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "PriorityClass",
        "LimitRange",
        "ResourceQuota",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "APIService",
        "CSIDriver",
        "Lease",
        "RuntimeClass",
    ]
)
_SKIPPED_KINDS = frozenset({"Secret", "CustomResourceDefinition", "Kustomization", "Event"})
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
_ENV_NAME = re.compile(r"(?:^|_)IMAGES?(?:_|$)|^RELATED_IMAGE", re.IGNORECASE)
_KEY_NAME = re.compile(r"(?:^|[._-])images?(?:$|[._-])|[a-z]Images?$|^images?$", re.IGNORECASE)
_FLAG = re.compile(r"^-{1,2}([A-Za-z0-9][A-Za-z0-9._-]*)(?:=(.*))?$", re.DOTALL)
_MAX_NODES = 200_000


@attrs.frozen
class Candidate:
    """A text that may be an image, where it is, and whether a container names it."""

    text: str
    source: Source
    #: ``named``: under a name or key that says image (or a container's own image);
    #: ``shaped``: under any other name, so only a full ``host/path:tag`` counts.
    strength: str = "named"


@attrs.define
class _Walk:
    """The document being read: its input, kind and name, and a budget of nodes."""

    origin: str
    kind: str
    name: str
    custom: bool
    nodes: int = 0
    out: list[Candidate] = attrs.Factory(list)

    def add(self, text: Any, line: int, path: str, *, direct: bool, shaped: bool = False) -> None:
        if isinstance(text, str):
            source = Source(self.origin, line, self.kind, self.name, path, direct)
            self.out.append(Candidate(text, source, "shaped" if shaped else "named"))

    def tick(self) -> None:
        self.nodes += 1
        if self.nodes > _MAX_NODES:  # aliases can make a small file an enormous tree
            raise ValueError(f"more than {_MAX_NODES} values (aliases expanding?)")


def _name(item: Any, index: int) -> str:
    name = item.get("name") if isinstance(item, dict) else None
    return name if isinstance(name, str) and name else str(index)


def _values(text: str) -> Iterator[str]:
    """The images one value may hold: itself, or one per line (``version=image`` lines by
    their right side; ``a,b`` lists split)."""
    for line in text.splitlines() or [text]:
        for part in line.split(","):
            item = part.strip()
            key, sep, rest = item.partition("=")
            yield rest.strip() if sep and "/" not in key else item


def _env(walk: _Walk, container: dict[str, Any], path: str, line: int) -> None:
    env = container.get("env")
    if not isinstance(env, list):
        return
    for index, item in enumerate(env):
        if not isinstance(item, dict) or not isinstance(item.get("value"), str):
            continue
        name = str(item.get("name", ""))
        where = f"{path}.env[{name or index}].value"
        at = line_of(env, index, line)
        if _ENV_NAME.search(name):
            for value in _values(item["value"]):
                walk.add(value, at, where, direct=False)
        else:
            walk.add(item["value"], at, where, direct=False, shaped=True)


def _tokens(arg: str) -> list[str]:
    return [t.strip("'\"") for t in arg.split()] if any(c.isspace() for c in arg) else [arg]


def _flags(walk: _Walk, container: dict[str, Any], path: str, line: int) -> None:
    for key in ("command", "args"):
        args = container.get(key)
        if not isinstance(args, list):
            continue
        for index, arg in enumerate(args):
            if not isinstance(arg, str):
                continue
            at = line_of(args, index, line)
            tokens = _tokens(arg)
            following = [
                *tokens[1:],
                *(a for a in args[index + 1 : index + 2] if isinstance(a, str)),
            ]
            for position, token in enumerate(tokens):
                found = _FLAG.match(token)
                if not found:
                    continue
                named = "image" in found[1].lower()
                value = found[2]
                if value is None and named and position < len(following):
                    value = following[position]
                if value is not None and not value.startswith("-"):
                    text = value.strip().strip("'\"")
                    where = f"{path}.{key}[{index}]"
                    walk.add(text, at, where, direct=False, shaped=not named)


def _containers(walk: _Walk, node: dict[str, Any], path: str) -> set[str]:
    """The container lists of a pod spec; returns the keys it read."""
    read = set()
    for key in _CONTAINER_LISTS:
        items = node.get(key)
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            continue
        read.add(key)
        for index, container in enumerate(items):
            where = f"{path}{key}[{_name(container, index)}]"
            line = line_of(items, index, 0)
            if "image" in container:
                walk.add(container["image"], line_of(container, "image", line), f"{where}.image",
                         direct=True)  # fmt: skip
            _env(walk, container, where, line)
            _flags(walk, container, where, line)
    return read


def _composed(node: dict[str, Any]) -> str | None:
    """``registry/repository:tag@digest`` from a ``repository`` + ``tag`` map, if complete."""
    repository, tag, digest = node.get("repository"), node.get("tag"), node.get("digest")
    if not isinstance(repository, str) or not repository:
        return None
    tag = str(tag) if isinstance(tag, str | int | float) and not isinstance(tag, bool) else None
    if not tag and not isinstance(digest, str):
        return None
    registry = node.get("registry")
    text = (
        f"{registry.rstrip('/')}/{repository}"
        if isinstance(registry, str) and registry
        else repository
    )
    if tag:
        text += f":{tag}"
    if isinstance(digest, str) and digest:
        text += f"@{digest}" if ":" in digest else ""
    return text


def _fields(walk: _Walk, node: dict[str, Any], path: str, line: int) -> None:
    """A custom resource's image fields in one mapping."""
    composed = _composed(node)
    if composed is not None:
        walk.add(composed, line_of(node, "repository", line), f"{path}repository", direct=False)
    for key, value in node.items():
        if not isinstance(key, str) or not _KEY_NAME.search(key):
            continue
        at = line_of(node, key, line)
        if isinstance(value, str):
            for text in _values(value):
                walk.add(text, at, f"{path}{key}", direct=False)
        elif isinstance(value, dict) and "repository" not in node:
            inner = _composed(value)
            if inner is not None:
                walk.add(inner, at, f"{path}{key}", direct=False)


def _visit(walk: _Walk, node: Any, path: str, line: int) -> None:
    walk.tick()
    if isinstance(node, list):
        for index, item in enumerate(node):
            _visit(walk, item, f"{path.rstrip('.')}[{index}].", line_of(node, index, line))
        return
    if not isinstance(node, dict):
        return
    read = _containers(walk, node, path)
    if walk.custom:
        _fields(walk, node, path, line)
    for key, value in node.items():
        if key in read or key in ("metadata", "status") or not isinstance(value, dict | list):
            continue
        _visit(walk, value, f"{path}{key}.", line_of(node, key, line))


def _configmap(walk: _Walk, data: Any, line: int) -> None:
    values = data.get("data")
    if not isinstance(values, dict):
        return
    named = "image" in walk.name.lower()
    for key, value in values.items():
        if not isinstance(value, str) or not isinstance(key, str):
            continue
        at = line_of(values, key, line)
        if _KEY_NAME.search(key) or _ENV_NAME.search(key) or named:
            for text in _values(value):
                walk.add(text, at, f"data.{key}", direct=False)


def candidates(document: Document) -> list[Candidate]:
    """Every candidate of one document (``List`` items included), in document order.

    Raises:
        ValueError: the document expands past the node budget or nests too deeply.
    """
    try:
        return list(_object(document.data, document.origin, document.line))
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _object(data: Any, origin: str, line: int) -> Iterator[Candidate]:
    if not isinstance(data, dict):
        return
    kind = data.get("kind")
    if not isinstance(kind, str) or kind in _SKIPPED_KINDS:
        return
    items = data.get("items")
    if kind.endswith("List") and isinstance(items, list):
        for index, item in enumerate(items):
            yield from _object(item, origin, line_of(items, index, line))
        return
    metadata = data.get("metadata")
    name = metadata.get("name", "") if isinstance(metadata, dict) else ""
    namespace = metadata.get("namespace") if isinstance(metadata, dict) else None
    shown = f"{namespace}/{name}" if isinstance(namespace, str) and namespace else str(name)
    walk = _Walk(origin, kind, shown, custom=kind not in BUILTIN_KINDS and kind != "ConfigMap")
    if kind == "ConfigMap":
        _configmap(walk, data, line)
    else:
        _visit(walk, data, "", line)
    yield from walk.out


def findings(found: list[Candidate]) -> tuple[list[tuple[str, Source]], list[Hint]]:
    """Judge candidates: the images as written with their sources, and the hints."""
    images: list[tuple[str, Source]] = []
    hints: list[Hint] = []
    for candidate in found:
        text = candidate.text.strip()
        if candidate.strength == "shaped":
            verdict, reason = judge_shaped(text)
        else:
            verdict, reason = judge(text, direct=candidate.source.direct)
        if verdict == "image":
            images.append((text, candidate.source))
        elif verdict == "hint":
            hints.append(Hint(text, candidate.source, reason))
    return images, hints
