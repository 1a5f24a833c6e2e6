"""Semver versions and npm-style ranges of image tags."""

from __future__ import annotations

import pytest

from imgmirror.syncing.semver import SemverError, parse_range, parse_version

TAGS = ["1.1.9", "1.2.0", "1.2.3", "1.2.3-rc.2", "1.2.9", "1.3.0", "2.0.0", "0.2.5", "0.3.0"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.2.3", (1, 2, 3, ())),
        ("v1.30.2", (1, 30, 2, ())),
        ("3.19", (3, 19, 0, ())),
        ("3", (3, 0, 0, ())),
        ("3.5.12-0", (3, 5, 12, ("0",))),
        ("1.0.0-rc.1+build.5", (1, 0, 0, ("rc", "1"))),
        ("1.25-alpine", (1, 25, 0, ("alpine",))),
    ],
)
def test_versions_parse(text, expected):
    v = parse_version(text)
    assert v is not None
    assert (v.major, v.minor, v.patch, v.pre) == expected


@pytest.mark.parametrize("text", ["latest", "edge", "", "1.2.3.4", "01.2", "sha-abc", "1.2.x"])
def test_non_versions_are_none(text):
    assert parse_version(text) is None


def test_precedence_follows_semver():
    order = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta.2",
             "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.10.0", "2.0.0"]  # fmt: skip
    versions = [parse_version(t) for t in order]
    assert all(v is not None for v in versions)
    assert sorted(versions, key=lambda v: v.key) == versions  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("spec", "matched"),
    [
        (">=1.2 <1.3", ["1.2.0", "1.2.3", "1.2.9"]),
        (">=1.2, <1.3", ["1.2.0", "1.2.3", "1.2.9"]),
        ("^1.2.3", ["1.2.3", "1.2.9", "1.3.0"]),
        ("^0.2.3", ["0.2.5"]),
        ("~1.2", ["1.2.0", "1.2.3", "1.2.9"]),
        ("~1.2.3", ["1.2.3", "1.2.9"]),
        ("1.2", ["1.2.0", "1.2.3", "1.2.9"]),
        ("1.2.x", ["1.2.0", "1.2.3", "1.2.9"]),
        (">1.2", ["1.3.0", "2.0.0"]),
        ("<=1.2", ["1.1.9", "1.2.0", "1.2.3", "1.2.9", "0.2.5", "0.3.0"]),
        ("<1.2.3", ["1.1.9", "1.2.0", "0.2.5", "0.3.0"]),
        ("=2.0.0", ["2.0.0"]),
        ("1.x || >=2", ["1.1.9", "1.2.0", "1.2.3", "1.2.9", "1.3.0", "2.0.0"]),
        ("*", [t for t in TAGS if "-" not in t]),
        # a pre-release matches only when the range names one of the same release
        (">=1.2.3-rc.1 <2", ["1.2.3", "1.2.3-rc.2", "1.2.9", "1.3.0"]),
        (">=1.2.0-rc.1 <2", ["1.2.0", "1.2.3", "1.2.9", "1.3.0"]),
    ],
)
def test_ranges(spec, matched):
    r = parse_range(spec)
    got = [t for t in TAGS if r.contains(parse_version(t))]  # type: ignore[arg-type]
    assert got == matched


def test_alpine_example_from_the_issue():
    r = parse_range(">=3.18 <3.21")
    assert [t for t in ["3.17", "3.18", "3.18.4", "3.20.9", "3.21", "3.21.0"]
            if r.contains(parse_version(t))] == ["3.18", "3.18.4", "3.20.9"]  # type: ignore[arg-type]  # fmt: skip


@pytest.mark.parametrize("spec", ["", "   ", ">=abc", "1.2 ||", ">= 1.2.3.4", "=>1.2", "~>1.2"])
def test_bad_ranges_are_refused(spec):
    with pytest.raises(SemverError, match="semver range"):
        parse_range(spec)


def test_numbers_longer_than_a_tag_allows_are_no_versions_and_no_ranges():
    from imgmirror.syncing.semver import SemverError, parse_range, parse_version

    assert parse_version("1" * 5000) is None
    assert parse_version("1." + "2" * 33) is None
    assert parse_version("1." + "2" * 32) is not None
    with pytest.raises(SemverError, match="longer than 32 digits"):
        parse_range(">=" + "9" * 5000)
