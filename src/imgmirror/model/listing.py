"""Names a registry lists (tags, repositories), each checked before it can reach a URL.

A registry's tag list or catalog is untrusted: an entry may be ``../../victim/manifests/x``,
a number, 100 KB long or hold escape sequences. [NameCollector][] takes the entries page by
page, keeps those the reference grammar allows and counts the others, with a few of them
(quoted, escaped, shortened) for the message; [Listing][] is the result. No I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import attrs

from imgmirror.errors import UnsafeName
from imgmirror.model.reference import check_repository, check_tag

__all__ = ["Listing", "NameCollector"]

#: How many refused names a message quotes.
_EXAMPLES = 3
_CHECKS: dict[str, Callable[[object], str]] = {
    "tag": check_tag,
    "repository name": check_repository,
}


@attrs.frozen
class Listing:
    """What a listing held: the valid ``names`` in the registry's order, and how many entries
    were refused (``rejected``), with the reasons of the first few (``examples``)."""

    names: tuple[str, ...]
    kind: str = "tag"
    rejected: int = 0
    examples: tuple[str, ...] = ()

    def problem(self) -> str | None:
        """One line naming the refused entries (None when there are none)."""
        if not self.rejected:
            return None
        many = self.rejected != 1
        what = (
            f"names that are not valid {self.kind}s"
            if many
            else f"name that is not a valid {self.kind}"
        )
        more = self.rejected - len(self.examples)
        shown = "; ".join(self.examples) + (f"; and {more} more" if more > 0 else "")
        return f"the registry listed {self.rejected} {what}, left out: {shown}"


@attrs.define
class NameCollector:
    """Collects the entries of a listing's pages (``kind``: ``"tag"`` or ``"repository name"``)."""

    kind: str
    names: list[str] = attrs.field(factory=list)
    rejected: int = 0
    examples: list[str] = attrs.field(factory=list)

    def add(self, entries: Iterable[object]) -> None:
        """Check each entry of one page."""
        check = _CHECKS[self.kind]
        for entry in entries:
            try:
                self.names.append(check(entry))
            except UnsafeName as exc:
                self.rejected += 1
                if len(self.examples) < _EXAMPLES:
                    self.examples.append(exc.message)

    @property
    def count(self) -> int:
        """Entries seen so far, valid or not."""
        return len(self.names) + self.rejected

    def listing(self) -> Listing:
        """The names collected (each once, in the registry's order)."""
        names = tuple(dict.fromkeys(self.names))
        return Listing(names, self.kind, self.rejected, tuple(self.examples))
