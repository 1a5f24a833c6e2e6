"""JSON and YAML documents from users and registries, parsed within bounds.

Whoever wrote a document, parsing it must end fast, in bounded memory, with a one-line error:

* [load_json][] parses JSON; a document nested past the interpreter's recursion limit is a
  [DocumentLimit][] (a ``ValueError``), never a ``RecursionError``. Callers cap the size
  (registry bodies are read capped; files with [read_capped_text][]).
* [compose_yaml][] and [load_yaml_all][] parse YAML with PyYAML's safe loader, refusing
  more than [MAX_DEPTH][] levels of nesting, more than [MAX_ALIASES][] aliases and more
  than [MAX_NODES][] nodes once every alias is expanded (the "billion laughs"), or an
  alias inside the node it names. The [DocumentLimit][] names the line.

Nothing here does I/O except [read_capped_text][], which reads one file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import yaml

__all__ = [
    "MAX_ALIASES",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "DocumentLimit",
    "compose_yaml",
    "load_json",
    "load_json_object",
    "load_yaml_all",
    "read_capped_text",
]

#: Deepest nesting of a YAML document (a sync file or a Secret needs fewer than 10 levels).
MAX_DEPTH = 64
#: Most aliases (``*name``) in one YAML stream.
MAX_ALIASES = 1000
#: Most nodes of a YAML stream, counting each alias as the whole node it names.
MAX_NODES = 1_000_000
#: Largest sync file, image list or credentials file read.
MAX_FILE_BYTES = 4 * 1024 * 1024


class DocumentLimit(ValueError):
    """A document passes one of the bounds: too deep, too many aliases or nodes, too large.

    Attributes:
        line: the 1-based line where it was noticed, when known.
    """

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


def load_json_object(
    data: str | bytes | bytearray, what: str, error: Callable[[str], Exception]
) -> dict[str, Any]:
    """A JSON document that must be an object (a manifest, a payload, a bundle).

    Raises:
        Exception: ``error("<what> is not JSON")`` or ``error("<what> is not a JSON object")``
            (the caller's own class), also for a document nested too deeply.
    """
    try:
        doc = load_json(data)
    except ValueError:  # a DocumentLimit or a UnicodeDecodeError too
        raise error(f"{what} is not JSON") from None
    if not isinstance(doc, dict):
        raise error(f"{what} is not a JSON object")
    return doc


def load_json(data: str | bytes | bytearray) -> Any:
    """``json.loads`` that ends in a ``ValueError`` for any document, however deep.

    Raises:
        DocumentLimit: nested deeper than the interpreter can parse.
        ValueError: not JSON (``UnicodeDecodeError`` for bytes that are not UTF-8).
    """
    try:
        return json.loads(data)
    except RecursionError:
        raise DocumentLimit("the JSON document is nested too deeply") from None


def read_capped_text(path: str | os.PathLike[str], limit: int = MAX_FILE_BYTES) -> str:
    """The text of a UTF-8 file of at most ``limit`` bytes.

    Raises:
        DocumentLimit: the file is larger than ``limit``.
        OSError, UnicodeDecodeError: it cannot be read.
    """
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise DocumentLimit(f"the file is larger than {limit // (1024 * 1024)} MiB")
    return data.decode("utf-8")


def _loader(text: str) -> yaml.SafeLoader:
    """A safe loader for ``text`` that counts depth and aliases as it composes."""
    import yaml  # noqa: PLC0415 - PyYAML loads only when a YAML document is read

    class Bounded(yaml.SafeLoader):
        depth = 0
        aliases = 0

        def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
            line = self.peek_event().start_mark.line + 1  # type: ignore[no-untyped-call]
            if self.check_event(yaml.AliasEvent):
                self.aliases += 1
                if self.aliases > MAX_ALIASES:
                    raise DocumentLimit(f"the document has more than {MAX_ALIASES} aliases", line)
                return super().compose_node(parent, index)
            self.depth += 1
            try:
                if self.depth > MAX_DEPTH:
                    problem = f"the document is nested more than {MAX_DEPTH} levels deep"
                    raise DocumentLimit(problem, line)
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    return Bounded(text)


def _count(node: yaml.Node, sizes: dict[int, int], open_nodes: set[int]) -> int:
    """Nodes under ``node`` with aliases expanded (memoised per node: linear in the graph)."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_nodes:
        raise DocumentLimit("an alias refers to a node that contains it", node.start_mark.line + 1)
    open_nodes.add(key)
    total = 1
    children = node.value if isinstance(node.value, list) else []
    for child in children:
        for part in child if isinstance(child, tuple) else (child,):
            total += _count(part, sizes, open_nodes)
            if total > MAX_NODES:
                raise DocumentLimit(
                    f"the document has more than {MAX_NODES} nodes once aliases are expanded",
                    part.start_mark.line + 1,
                )
    open_nodes.discard(key)
    sizes[key] = total
    return total


def compose_yaml(text: str) -> yaml.Node | None:
    """The node graph of the single YAML document in ``text`` (None when empty).

    Raises:
        DocumentLimit: a bound passed (see the module docstring).
        yaml.YAMLError: not YAML, or more than one document.
    """
    loader = _loader(text)
    try:
        node = loader.get_single_node()
    finally:
        loader.dispose()
    if node is not None:
        _count(node, {}, set())
    return node


def load_yaml_all(text: str | bytes) -> list[Any]:
    """Every document of a YAML (or JSON) stream as Python values, within the bounds.

    Raises:
        DocumentLimit: a bound passed.
        yaml.YAMLError: not YAML.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    loader = _loader(text)
    sizes: dict[int, int] = {}
    documents = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            _count(node, sizes, set())
            documents.append(loader.construct_document(node))
    finally:
        loader.dispose()
    return documents
