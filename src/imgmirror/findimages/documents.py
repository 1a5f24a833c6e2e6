"""YAML and JSON text into documents that remember their line numbers.

A stream is split at its ``---`` lines and each document parsed on its own (ruamel.yaml,
round trip, so every mapping and list knows the line of each key and item, and anchors,
aliases and ``<<`` merges resolve as YAML says), so a document that does not parse is one
error naming its file and line and the others are still read. JSON is YAML, with a plain
``json`` fallback (no line numbers) for what the YAML parser refuses. A
``CustomResourceDefinition`` is skipped unparsed: its schema describes fields, it names no
image, and it is most of the bytes of an operator install. Pure: callers pass text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import attrs
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from imgmirror.findimages.found import InputError

__all__ = ["Document", "line_of", "load_documents", "split_documents"]

_MARKER = re.compile(r"^---(?:[ \t]|$)")
_CRD = re.compile(r"^kind:[ \t]*['\"]?CustomResourceDefinition['\"]?[ \t]*(?:#.*)?$", re.MULTILINE)


@attrs.frozen
class Document:
    """One parsed document: its data (ruamel round-trip values), input name and first line."""

    data: Any
    origin: str
    line: int


def split_documents(text: str) -> Iterator[tuple[int, str]]:
    """Each document of a stream as (1-based line of its first line, its text)."""
    lines = text.splitlines(keepends=True)
    start = 0
    for number, line in enumerate(lines):
        if number > start and _MARKER.match(line):
            yield start + 1, "".join(lines[start:number])
            start = number
    if start < len(lines):
        yield start + 1, "".join(lines[start:])


def line_of(container: Any, key: Any, default: int) -> int:
    """The 1-based line of ``key`` (a mapping key or list index) in a round-trip value."""
    lc = getattr(container, "lc", None)
    if lc is None:
        return default
    try:
        found = lc.item(key) if isinstance(key, int) else lc.key(key)
    except (KeyError, IndexError, TypeError, AttributeError):
        return default
    return int(found[0]) + 1 if found else default


def _only_crds(chunk: str) -> bool:
    """A CustomResourceDefinition: its top-level ``kind:`` (column 0) says so (a ``List``
    of them has ``kind: List`` there, and is parsed)."""
    return bool(_CRD.search(chunk))


def _parse(yaml: YAML, chunk: str, origin: str, first: int) -> Any:
    try:
        # blank lines in front keep the parser's line numbers those of the whole stream
        return yaml.load("\n" * (first - 1) + chunk)
    except MarkedYAMLError as exc:
        stripped = chunk.strip()
        if stripped.startswith(("{", "[")):
            try:
                return json.loads(stripped)
            except ValueError:
                pass
        mark = exc.problem_mark or exc.context_mark
        last = first + max(chunk.count("\n") - 1, 0)  # the parser may point past the end
        line = min(mark.line + 1, last) if mark is not None else first
        raise _Failed(InputError(f"{origin}:{line}", f"YAML syntax error: {exc.problem}")) from None
    except YAMLError as exc:
        raise _Failed(InputError(f"{origin}:{first}", f"YAML error: {exc}")) from None
    except RecursionError:
        raise _Failed(InputError(f"{origin}:{first}", "nested too deeply")) from None


class _Failed(Exception):
    def __init__(self, error: InputError) -> None:
        super().__init__(str(error))
        self.error = error


def load_documents(text: str, origin: str) -> tuple[list[Document], list[InputError]]:
    """Every document of ``text`` that parses (empty ones dropped), and an error for each
    that does not."""
    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = True  # the API server keeps the last; so do we
    documents: list[Document] = []
    errors: list[InputError] = []
    for first, chunk in split_documents(text):
        if not chunk.strip() or _only_crds(chunk):
            continue
        try:
            data = _parse(yaml, chunk, origin, first)
        except _Failed as failed:
            errors.append(failed.error)
            continue
        if data is None:
            continue
        documents.append(Document(data, origin, first))
    return documents, errors
