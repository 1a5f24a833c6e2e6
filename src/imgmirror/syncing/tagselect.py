"""Which tags of a repository a sync entry selects.

A [TagSelector][] holds the filters a ``repository:`` entry of a sync file may give;
[select_tags][] applies them to the tags a registry lists, in this order:

1. what is wanted: ``tags`` (exact names), ``all-tags``, ``tags-regex`` and/or ``semver``
   (when both a regex and a range are given, a tag must pass both);
2. ``exclude-regex`` drops tags (searched anywhere in the tag, like ``tags-regex``);
3. ``newest: N`` keeps the N highest: by semver precedence when every remaining tag is a
   version, else versions first (highest first) and then the other tags in reverse natural
   order.

Regexes are RE2 ([LinearRegex][imgmirror.model.linregex.LinearRegex]: linear time whatever the
tag), searched, not anchored: use ``^`` and ``$``. This module does no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import attrs

from imgmirror.errors import NoTagsSelected
from imgmirror.model.linregex import LinearRegex
from imgmirror.syncing.semver import Range, parse_version

__all__ = ["NoTagsSelected", "TagSelector", "select_tags", "version_order"]

_RUNS = re.compile(r"[0-9]+|[^0-9]+")


@attrs.frozen
class TagSelector:
    """The tag filters of one entry (at least one of ``tags``, ``all_tags``, ``tags_regex``
    or ``semver`` is set; the sync file parser checks that)."""

    tags: tuple[str, ...] = ()
    all_tags: bool = False
    tags_regex: LinearRegex | None = None
    exclude_regex: LinearRegex | None = None
    semver: Range | None = None
    newest: int | None = None

    @property
    def needs_listing(self) -> bool:
        """Whether the registry's tag list must be read (not for a plain ``tags:`` list)."""
        return not self.tags or self.newest is not None or self.exclude_regex is not None

    def describe(self) -> str:
        """A short text naming the filters, for messages."""
        parts = []
        if self.tags:
            parts.append("tags " + ", ".join(self.tags))
        if self.all_tags:
            parts.append("all tags")
        if self.tags_regex is not None:
            parts.append(f"tags-regex {self.tags_regex.pattern!r}")
        if self.semver is not None:
            parts.append(f"semver {str(self.semver)!r}")
        if self.exclude_regex is not None:
            parts.append(f"exclude-regex {self.exclude_regex.pattern!r}")
        if self.newest is not None:
            parts.append(f"newest {self.newest}")
        return ", ".join(parts)


def _natural(tag: str) -> tuple[tuple[int, int, str], ...]:
    """Natural order: runs of ASCII digits compare as numbers (by length, then digits, so a
    run of any length costs no integer conversion), the rest as text."""
    key = []
    for piece in _RUNS.findall(tag):
        if piece[0] in "0123456789":
            number = piece.lstrip("0")
            key.append((0, len(number), number))
        else:
            key.append((1, 0, piece))
    return tuple(key)


def version_order(tags: Iterable[str]) -> list[str]:
    """Tags from highest to lowest: versions by semver, then the rest in reverse natural order."""
    versions = []
    others = []
    for tag in tags:
        version = parse_version(tag)
        if version is None:
            others.append(tag)
        else:
            versions.append((version.key, _natural(tag), tag))
    versions.sort(reverse=True)
    others.sort(key=_natural, reverse=True)
    return [t for _, _, t in versions] + others


def _wanted(selector: TagSelector, tag: str) -> bool:
    if selector.tags and tag in selector.tags:
        return True
    if selector.tags and not (selector.all_tags or selector.tags_regex or selector.semver):
        return False
    if selector.tags_regex is not None and not selector.tags_regex.search(tag):
        return False
    if selector.semver is not None:
        version = parse_version(tag)
        if version is None or not selector.semver.contains(version):
            return False
    return True


def select_tags(selector: TagSelector, available: Iterable[str] | None) -> list[str]:
    """The tags to mirror, highest version first.

    ``available`` is the registry's tag list; None when it was not read (only a plain
    ``tags:`` list without ``newest``/``exclude-regex``), then ``tags`` are taken as given.

    Raises:
        NoTagsSelected: nothing matched; the message names the filters.
    """
    if available is None:
        chosen = list(dict.fromkeys(selector.tags))
    else:
        chosen = [t for t in dict.fromkeys(available) if _wanted(selector, t)]
    if selector.exclude_regex is not None:
        chosen = [t for t in chosen if not selector.exclude_regex.search(t)]
    ordered = version_order(chosen)
    if selector.newest is not None:
        ordered = ordered[: selector.newest]
    if not ordered:
        raise NoTagsSelected(f"no tag matches {selector.describe()}")
    return ordered
