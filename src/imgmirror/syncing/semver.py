"""Semantic versions of image tags, and npm-style ranges such as ``>=3.18 <3.21``.

Image tags are looser than semver 2.0: a leading ``v`` (``v1.30.2``) and missing minor or
patch numbers (alpine's ``3.19``) are common, so [parse_version][] accepts them (missing
numbers count as 0). Ordering follows semver 2.0: a pre-release (``1.2.3-rc.1``, etcd's
``3.5.12-0``) sorts before its release; build metadata (``+build``) is ignored.

Why not `packaging`: its ``Version`` is PEP 440, which reads ``3.5.12-0`` as a
post-release (newer than ``3.5.12``), ``1.0.0-rc1`` as ``1.0.0rc1`` but refuses
``1.25-alpine``, and orders pre-releases differently; tag ranges need semver's rules.

Range grammar (npm's): comparators ``=`` ``>`` ``>=`` ``<`` ``<=`` ``~`` ``^`` or a bare
version, joined by spaces or commas (all must hold), alternatives joined by ``||``. A partial
version is an x-range: ``3.18`` and ``3.18.x`` mean ``>=3.18.0 <3.19.0``; ``<=3.20`` means
``<3.21.0``; ``>3.18`` means ``>=3.19.0``; ``~1.2.3`` is ``>=1.2.3 <1.3.0``; ``^1.2.3`` is
``>=1.2.3 <2.0.0`` (``^0.2.3`` is ``<0.3.0``). As in npm, a pre-release tag matches only when a
comparator of the same alternative names a pre-release of the same ``major.minor.patch``.

This module does no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import attrs

from imgmirror.errors import SemverError

__all__ = ["MAX_DIGITS", "Range", "SemverError", "Version", "parse_range", "parse_version"]

_VERSION = re.compile(
    r"[vV]?(?P<major>0|[1-9]\d*)(?:\.(?P<minor>\d+))?(?:\.(?P<patch>\d+))?"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z.-]+)?"
)
_PARTIAL = re.compile(
    r"[vV]?(?P<major>\d+|[xX*])(?:\.(?P<minor>\d+|[xX*]))?(?:\.(?P<patch>\d+|[xX*]))?"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z.-]+)?"
)
_COMPARATOR = re.compile(r"(?P<op>>=|<=|==|=|>|<|~|\^)?\s*(?P<version>\S+)")
#: Longest number of a version (a tag is at most 128 characters; dates have 8 or 14 digits).
MAX_DIGITS = 32


def _pre_key(pre: tuple[str, ...]) -> tuple[tuple[int, int, str], ...]:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre)


@attrs.frozen(order=False)
class Version:
    """A parsed version; compare with ``<`` etc. (semver precedence)."""

    major: int
    minor: int
    patch: int
    pre: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[object, ...]:
        """Sort key: releases after their pre-releases, identifiers compared as semver says."""
        release = (self.major, self.minor, self.patch)
        return (release, 1, ()) if not self.pre else (release, 0, _pre_key(self.pre))

    @property
    def release(self) -> tuple[int, int, int]:
        """``(major, minor, patch)``."""
        return (self.major, self.minor, self.patch)

    def __lt__(self, other: Version) -> bool:
        return self.key < other.key

    def __le__(self, other: Version) -> bool:
        return self.key <= other.key

    def __gt__(self, other: Version) -> bool:
        return self.key > other.key

    def __ge__(self, other: Version) -> bool:
        return self.key >= other.key


def _too_long(match: re.Match[str]) -> bool:
    return any(len(match[name] or "") > MAX_DIGITS for name in ("major", "minor", "patch"))


def parse_version(text: str) -> Version | None:
    """The version a tag spells, or None when it is not one (``latest``, ``alpine``, or a
    number of more than [MAX_DIGITS][] digits)."""
    match = _VERSION.fullmatch(text)
    if match is None or _too_long(match):
        return None
    pre = tuple(match["pre"].split(".")) if match["pre"] else ()
    return Version(int(match["major"]), int(match["minor"] or 0), int(match["patch"] or 0), pre)


Test = Callable[[Version], bool]


@attrs.frozen
class _Bound:
    low: Version | None
    low_inclusive: bool
    high: Version | None
    high_inclusive: bool

    def holds(self, v: Version) -> bool:
        if self.low is not None and (v < self.low or (v == self.low and not self.low_inclusive)):
            return False
        return not (
            self.high is not None
            and (v > self.high or (v == self.high and not self.high_inclusive))
        )


@attrs.frozen
class Range:
    """A parsed range: alternatives of bounds; `contains` tests a version."""

    text: str
    alternatives: tuple[tuple[tuple[_Bound, ...], frozenset[tuple[int, int, int]]], ...]

    def contains(self, version: Version) -> bool:
        """Whether ``version`` satisfies the range (pre-releases as the module says)."""
        for bounds, pre_releases in self.alternatives:
            if version.pre and version.release not in pre_releases:
                continue
            if all(bound.holds(version) for bound in bounds):
                return True
        return False

    def __str__(self) -> str:
        return self.text


def _bump(numbers: list[int], index: int) -> Version:
    raised = [*numbers[:index], numbers[index] + 1] + [0] * (2 - index)
    return _version(raised, ("0",))  # the lowest version of the next release


def _version(numbers: list[int], pre: tuple[str, ...]) -> Version:
    return Version(numbers[0], numbers[1], numbers[2], pre)


def _comparator(op: str, text: str, whole: str) -> tuple[_Bound, Version | None]:
    match = _PARTIAL.fullmatch(text)
    if match is None:
        raise SemverError(f"semver range {whole!r}: {text!r} is not a version")
    if _too_long(match):
        raise SemverError(f"semver range {whole!r}: a number is longer than {MAX_DIGITS} digits")
    given: list[int] = []
    for name in ("major", "minor", "patch"):
        part = match[name]
        if part is None or part in "xX*":
            break
        given.append(int(part))
    pre = tuple(match["pre"].split(".")) if match["pre"] and len(given) == 3 else ()
    numbers = given + [0] * (3 - len(given))
    floor = _version(numbers, pre or (("0",) if len(given) < 3 else ()))
    exact = _version(numbers, pre)
    marked = exact if pre else None
    if not given:
        return _Bound(None, True, None, True), None
    partial = len(given) < 3
    top = _bump(numbers, len(given) - 1) if partial else None
    if op in ("", "=", "=="):
        bound = _Bound(floor, True, top, False) if partial else _Bound(exact, True, exact, True)
    elif op == ">=":
        bound = _Bound(floor if partial else exact, True, None, True)
    elif op == ">":
        bound = _Bound(top, True, None, True) if top else _Bound(exact, False, None, True)
    elif op == "<":
        bound = _Bound(None, True, floor if partial else exact, False)
    elif op == "<=":
        bound = _Bound(None, True, top, False) if top else _Bound(None, True, exact, True)
    elif op == "~":
        bound = _Bound(floor, True, _bump(numbers, min(len(given) - 1, 1)), False)
    else:  # "^": the first non-zero number is fixed
        fixed = next((i for i, n in enumerate(numbers[: len(given)]) if n), len(given) - 1)
        bound = _Bound(floor, True, _bump(numbers, min(fixed, len(given) - 1)), False)
    return bound, marked


def parse_range(text: str) -> Range:
    """Parse an npm-style range (see the module docstring).

    Raises:
        SemverError: a comparator does not parse, or the range is empty.
    """
    alternatives = []
    for part in text.split("||"):
        spaced = re.sub(r"(>=|<=|==|=|>|<|~|\^)\s+", r"\1", part.replace(",", " "))
        tokens = spaced.split()
        if not tokens:
            raise SemverError(f"semver range {text!r} has an empty alternative")
        bounds: list[_Bound] = []
        pre_releases: set[tuple[int, int, int]] = set()
        for token in tokens:
            match = _COMPARATOR.fullmatch(token)
            if match is None:
                raise SemverError(f"semver range {text!r}: cannot read {token!r}")
            bound, marked = _comparator(match["op"] or "", match["version"], text)
            bounds.append(bound)
            if marked is not None:
                pre_releases.add(marked.release)
        alternatives.append((tuple(bounds), frozenset(pre_releases)))
    return Range(text, tuple(alternatives))
