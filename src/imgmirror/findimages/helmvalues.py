"""A Helm chart's ``values.yaml`` walked for images, for when ``helm template`` cannot run.

``image: REF``, ``*Image: REF`` and ``image:``/``*Image:`` maps of ``registry``,
``repository``, ``tag`` and ``digest`` (Bitnami's and most charts' layout) are read.
A complete reference is a candidate judged like any indirect one; a map whose tag is empty
or missing (the chart's templates usually fill in ``appVersion``) becomes a hint that says
which value to set and what the chart's ``appVersion`` is. Values only approximate what a
chart renders (conditions, defaults in templates, subcharts): say so to the user. Pure.
"""

from __future__ import annotations

import re
from typing import Any

from imgmirror.findimages.documents import line_of
from imgmirror.findimages.extract import Candidate
from imgmirror.findimages.found import Hint, Source

__all__ = ["values_candidates"]

_KEY = re.compile(r"^images?$|[a-z]Images?$", re.IGNORECASE)
_MAX_NODES = 200_000


def _text(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return ""
    return str(value).strip()


def _map(
    node: dict[str, Any], path: str, line: int, origin: str, app_version: str | None
) -> tuple[list[Candidate], list[Hint]]:
    repository = _text(node.get("repository") or node.get("name"))
    if not repository:
        return [], []
    registry, tag, digest = (_text(node.get(k)) for k in ("registry", "tag", "digest"))
    name = f"{registry.rstrip('/')}/{repository}" if registry else repository
    source = Source(origin, line, "values.yaml", "", path, direct=False)
    if digest:
        return [Candidate(f"{name}:{tag}@{digest}" if tag else f"{name}@{digest}", source)], []
    if tag:
        return [Candidate(f"{name}:{tag}", source)], []
    guess = f"; the chart's appVersion is {app_version}" if app_version else ""
    reason = f"no tag in values: the templates choose it (set {path}.tag){guess}"
    return [], [Hint(f"{name}:{app_version}" if app_version else name, source, reason)]


def values_candidates(
    values: Any, origin: str, app_version: str | None = None
) -> tuple[list[Candidate], list[Hint]]:
    """The image candidates and hints of a chart's parsed ``values.yaml``."""
    found: list[Candidate] = []
    hints: list[Hint] = []
    todo: list[tuple[Any, str, int]] = [(values, "", 1)]
    seen = 0
    while todo and seen < _MAX_NODES:
        node, path, line = todo.pop(0)
        seen += 1
        if isinstance(node, list):
            todo.extend((v, f"{path}[{i}]", line_of(node, i, line)) for i, v in enumerate(node))
            continue
        if not isinstance(node, dict):
            continue
        for key, value in node.items():
            where = f"{path}.{key}" if path else str(key)
            at = line_of(node, key, line)
            if isinstance(key, str) and _KEY.search(key):
                if isinstance(value, str) and value.strip():
                    found.append(
                        Candidate(value, Source(origin, at, "values.yaml", "", where, False))
                    )
                    continue
                if isinstance(value, dict) and "repository" in value:
                    more, more_hints = _map(value, where, at, origin, app_version)
                    found.extend(more)
                    hints.extend(more_hints)
                    continue
            if isinstance(value, dict | list):
                todo.append((value, where, at))
    return found, hints
