"""Regexes that run in linear time, on RE2: a sync file's ``tags-regex``/``exclude-regex``
and a verification policy's ``subject-regex``.

Such a pattern is matched against text a registry sends (every tag a source lists, the
subject of a signing certificate): with a backtracking engine (Python's `re`),
``^(\\d+\\.?)+$`` and one 32-character tag keep a sync busy for minutes.
[LinearRegex][imgmirror.model.linregex.LinearRegex] compiles the pattern with RE2 (the
``google-re2`` binding; Go's ``regexp``, which skopeo, regsync and cosign use, follows the
same design), whose matching time is linear in the input's length. RE2 has no lookaround and
no backreferences; a pattern it cannot compile is refused when the file is read. No I/O.
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["LinearRegex", "LinearRegexError"]


class LinearRegexError(ValueError):
    """A pattern RE2 does not accept (the message says why, as RE2 puts it)."""


def _compile(pattern: str) -> Any:
    import re2  # noqa: PLC0415 - the binding loads only when a regex is used

    options = re2.Options()
    options.log_errors = False  # RE2 would print every refused pattern to stderr
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        text = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
        raise LinearRegexError(text) from None


@attrs.frozen
class LinearRegex:
    """A compiled regex, searched or matched whole, in linear time.

    Build one with `compile`; two are equal when their patterns are.
    """

    pattern: str
    _compiled: Any = attrs.field(eq=False, repr=False, alias="compiled")

    @classmethod
    def compile(cls, pattern: str) -> LinearRegex:
        """Compile ``pattern`` (RE2 syntax).

        Raises:
            LinearRegexError: RE2 does not accept it (lookaround, backreferences, bad syntax,
                a pattern too large for RE2's memory budget).
        """
        return cls(pattern, _compile(pattern))

    def search(self, text: str) -> bool:
        """Whether the pattern matches somewhere in ``text``."""
        return self._compiled.search(text) is not None

    def fullmatch(self, text: str) -> bool:
        """Whether the pattern matches the whole of ``text``."""
        return self._compiled.fullmatch(text) is not None
