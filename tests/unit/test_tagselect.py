"""Tag selection of a repository entry: every selector, in the documented order."""

from __future__ import annotations

import pytest

from imgmirror.syncing.semver import parse_range
from imgmirror.syncing.tagregex import TagRegex
from imgmirror.syncing.tagselect import NoTagsSelected, TagSelector, select_tags, version_order

K8S = ["v1.29.9", "v1.30.0", "v1.30.1-rc.0", "v1.30.2", "v1.31.0-alpha.1", "v1.31.1", "latest"]
ALPINE = ["3.17", "3.18", "3.18.4", "3.19", "3.19.1", "3.20", "3.20.3", "3.21", "edge", "latest"]


def test_regex_and_exclude_regex():
    selector = TagSelector(
        tags_regex=TagRegex.compile(r"^v1\.3[01]\."),
        exclude_regex=TagRegex.compile("-(rc|alpha|beta)"),
    )
    assert select_tags(selector, K8S) == ["v1.31.1", "v1.30.2", "v1.30.0"]


def test_semver_with_newest():
    selector = TagSelector(semver=parse_range(">=3.18 <3.21"), newest=3)
    assert select_tags(selector, ALPINE) == ["3.20.3", "3.20", "3.19.1"]


def test_all_tags_orders_versions_first_then_the_rest():
    assert select_tags(TagSelector(all_tags=True), ["b", "1.0", "a10", "a9", "2.0"]) == [
        "2.0", "1.0", "b", "a10", "a9",
    ]  # fmt: skip


def test_plain_tags_list_needs_no_listing_and_keeps_given_tags():
    selector = TagSelector(tags=("3.5.15-0", "3.5.12-0"))
    assert not selector.needs_listing
    assert select_tags(selector, None) == ["3.5.15-0", "3.5.12-0"]


def test_tags_with_newest_read_the_listing_and_drop_missing_tags():
    selector = TagSelector(tags=("1", "2", "9"), newest=1)
    assert selector.needs_listing
    assert select_tags(selector, ["1", "2", "3"]) == ["2"]


def test_regex_and_semver_must_both_hold():
    selector = TagSelector(tags_regex=TagRegex.compile("^v"), semver=parse_range("~1.30"))
    assert select_tags(selector, [*K8S, "1.30.5"]) == ["v1.30.2", "v1.30.0"]


def test_nothing_matched_names_the_filters():
    with pytest.raises(NoTagsSelected, match=r"no tag matches tags-regex '\^v9'"):
        select_tags(TagSelector(tags_regex=TagRegex.compile("^v9")), K8S)
    with pytest.raises(NoTagsSelected):
        select_tags(TagSelector(all_tags=True), [])


def test_duplicates_listed_once():
    assert select_tags(TagSelector(all_tags=True), ["1", "1", "2"]) == ["2", "1"]


def test_version_order_is_semver_not_text():
    assert version_order(["1.9", "1.10", "1.10-rc.1", "v1.2"]) == [
        "1.10",
        "1.10-rc.1",
        "1.9",
        "v1.2",
    ]


def test_a_hostile_number_in_a_tag_is_ordered_not_converted():
    """5000 digits pass Python's int() limit (4300): such a tag is no version, and its
    natural order needs no conversion."""
    huge = "1" * 5000
    assert version_order([huge, "v" + huge, "a" + huge, "a2", "1.0"]) == [
        "1.0", "v" + huge, "a" + huge, "a2", huge,
    ]  # fmt: skip
    assert version_order(["a10", "a9", "a010", "a²"]) == ["a²", "a10", "a010", "a9"]
    selector = TagSelector(semver=parse_range(">=1"), newest=1)
    assert select_tags(selector, [huge, f"{huge}.1.1", "1.2.3"]) == ["1.2.3"]
