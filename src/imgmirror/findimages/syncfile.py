"""Found images into a sync file: a new one, or merged into an existing one with its comments,
order, quoting and hand-added entries kept (ruamel.yaml round trip).

New images are appended to ``images:`` (sorted among themselves); an image already there,
however spelled (``nginx:1`` and ``docker.io/library/nginx:1`` are one image), is left as it
is. Nothing is removed unless ``prune``: then plain and ``image:`` entries that were not
found go; ``repository:`` entries (tag filters written by hand) always stay. The result is
parsed by [imgmirror.syncing.file.parse_sync_file][imgmirror.syncing.file.parse_sync_file] before it
is returned, so what is
written is what ``imgmirror sync`` reads. Pure: callers pass and write the text.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import Any

import attrs
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from imgmirror.errors import InvalidReference, InvalidSyncFile
from imgmirror.model.reference import Reference
from imgmirror.syncing.file import parse_sync_file

__all__ = ["Merged", "merge_sync_file"]

_HEADER = (
    "# Written by imgmirror find-images. Run it again with --sync-file to add the images found\n"
    "# since; none is removed without --prune. Comments and hand-added entries are kept.\n"
)
_ZERO_OFFSET = re.compile(r"^[A-Za-z_][^\n]*:\s*\n- ", re.MULTILINE)


@attrs.frozen
class Merged:
    """The sync file text, and what changed."""

    text: str
    added: tuple[str, ...]
    removed: tuple[str, ...]


def _identity(text: str) -> tuple[str, str | None, str | None] | None:
    try:
        ref = Reference.parse(text.strip())
    except InvalidReference:
        return None
    return ref.name, ref.tag, str(ref.digest) if ref.digest else None


def _entry_image(entry: Any) -> str | None:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict) and isinstance(entry.get("image"), str):
        return str(entry["image"])
    return None


def _yaml(existing: str) -> YAML:
    yaml = YAML(typ="rt", pure=True)
    yaml.preserve_quotes = True
    yaml.width = 4096
    if _ZERO_OFFSET.search(existing):
        yaml.indent(mapping=2, sequence=2, offset=0)
    else:
        yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _load(yaml: YAML, existing: str, origin: str) -> CommentedMap:
    try:
        root = yaml.load(existing) if existing.strip() else CommentedMap()
    except YAMLError as exc:
        raise InvalidSyncFile(f"{origin}: YAML syntax error: {exc}") from None
    if not isinstance(root, CommentedMap):
        raise InvalidSyncFile(f"{origin}: a sync file is a mapping with an images: list")
    if "images" not in root or root["images"] is None:
        root["images"] = CommentedSeq()
    if not isinstance(root["images"], CommentedSeq):
        raise InvalidSyncFile(f"{origin}: images: must be a list")
    return root


def _set_prefix(root: CommentedMap, to: str) -> None:
    defaults = root.get("defaults")
    if not isinstance(defaults, CommentedMap):
        defaults = CommentedMap()
        root.insert(0, "defaults", defaults)
    defaults["to"] = to


def merge_sync_file(
    existing: str | None,
    images: Sequence[str],
    *,
    to: str | None = None,
    prune: bool = False,
    origin: str = "<sync file>",
) -> Merged:
    """Merge ``images`` into the sync file text ``existing`` (None: a new file, which
    needs ``to``); ``to`` replaces ``defaults.to``.

    Raises:
        InvalidSyncFile: the existing file is not a sync file, a new one has no ``to``, or
            the result would not be one (pruning every image, no destination).
    """
    if existing is None and to is None:
        raise InvalidSyncFile(f"{origin}: a new sync file needs a destination prefix",
                              hint="give to (the registry/path images go under)")  # fmt: skip
    yaml = _yaml(existing or "")
    root = _load(yaml, existing or "", origin)
    if to is not None:
        _set_prefix(root, to)
    entries: CommentedSeq = root["images"]
    found = {_identity(image): image for image in images}
    found.pop(None, None)
    present = {_identity(i) for e in entries if (i := _entry_image(e)) is not None}
    removed = []
    if prune:
        for index in reversed(range(len(entries))):
            image = _entry_image(entries[index])
            if image is not None and _identity(image) not in found:
                removed.append(image)
                del entries[index]
    added = sorted(image for key, image in found.items() if key not in present)
    entries.extend(added)
    out = io.StringIO()
    if existing is None:
        out.write(_HEADER)
    yaml.dump(root, out)
    text = out.getvalue()
    parse_sync_file(text, origin)  # what sync reads, or InvalidSyncFile
    return Merged(text, tuple(added), tuple(sorted(removed)))
