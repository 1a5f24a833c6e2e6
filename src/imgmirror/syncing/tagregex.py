"""``tags-regex`` and ``exclude-regex``: regexes that run in linear time, on RE2.

A sync file's regex is matched against every tag a source lists, and the tags come from the
registry: with a backtracking engine (Python's :mod:`re`), ``^(\\d+\\.?)+$`` and one 32-character
tag keep a sync busy for minutes. :class:`TagRegex` compiles the pattern with RE2 (the
``google-re2`` binding; Go's ``regexp``, which skopeo and regsync use, follows the same design),
whose matching time is linear in the tag's length. RE2 has no lookaround and no
backreferences; a pattern it cannot compile is refused when the file is read. No I/O.
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["TagRegex", "TagRegexError"]


class TagRegexError(ValueError):
    """A pattern RE2 does not accept (the message says why, as RE2 puts it)."""


def _compile(pattern: str) -> Any:
    import re2  # noqa: PLC0415 - the binding loads only when a sync file has a regex

    options = re2.Options()
    options.log_errors = False  # RE2 would print every refused pattern to stderr
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        text = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
        raise TagRegexError(text) from None


@attrs.frozen
class TagRegex:
    """A compiled tag regex, searched (not anchored), in linear time.

    Build one with :meth:`compile`; two are equal when their patterns are.
    """

    pattern: str
    _compiled: Any = attrs.field(eq=False, repr=False, alias="compiled")

    @classmethod
    def compile(cls, pattern: str) -> TagRegex:
        """Compile ``pattern`` (RE2 syntax).

        Raises:
            TagRegexError: RE2 does not accept it (lookaround, backreferences, bad syntax,
                a pattern too large for RE2's memory budget).
        """
        return cls(pattern, _compile(pattern))

    def search(self, tag: str) -> bool:
        """Whether the pattern matches somewhere in ``tag``."""
        return self._compiled.search(tag) is not None
