"""The one destination naming rule (sync, copy SRC PREFIX/, push --to PREFIX)."""

from __future__ import annotations

import pytest

from imgmirror.errors import InvalidReference
from imgmirror.model.naming import Prefix, is_prefix, under_prefix
from imgmirror.model.reference import Reference

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("source", "prefix", "keep", "expected"),
    [
        ("registry.k8s.io/pause:3.9", "reg.corp/mirror", False, "reg.corp/mirror/pause:3.9"),
        ("registry.k8s.io/pause:3.9", "reg.corp/mirror/", True,
         "reg.corp/mirror/registry.k8s.io/pause:3.9"),
        ("registry.k8s.io/coredns/coredns:v1.11.1", "reg.corp", False,
         "reg.corp/coredns/coredns:v1.11.1"),
        ("alpine:3.19", "reg.corp/m", False, "reg.corp/m/library/alpine:3.19"),
        ("alpine:3.19", "reg.corp/m", True, "reg.corp/m/docker.io/library/alpine:3.19"),
        ("localhost:5000/a/b:1", "reg.corp/m", True, "reg.corp/m/localhost_5000/a/b:1"),
        (f"quay.io/x/y@{DIGEST}", "127.0.0.1:5000/m", False, f"127.0.0.1:5000/m/x/y@{DIGEST}"),
        (f"quay.io/x/y:1@{DIGEST}", "localhost:5000", False, f"localhost:5000/x/y:1@{DIGEST}"),
    ],
)  # fmt: skip
def test_rule(source, prefix, keep, expected):
    assert str(under_prefix(Reference.parse(source), prefix, keep_registry=keep)) == expected


@pytest.mark.parametrize(
    "text", ["mirror", "reg.corp/m:1", "reg.corp/m@" + DIGEST, "reg.corp/Bad", "/x", ""]
)
def test_bad_prefixes(text):
    with pytest.raises(InvalidReference):
        Prefix.parse(text)


def test_prefix_parse_and_is_prefix():
    assert str(Prefix.parse("reg.corp:5000/a/b/")) == "reg.corp:5000/a/b"
    assert str(Prefix.parse("reg.corp")) == "reg.corp"
    assert is_prefix("reg.corp/m/")
    assert not is_prefix("reg.corp/m")


def test_too_long_names_are_refused_with_the_rule_in_the_message():
    source = Reference.parse("reg.io/" + "/".join(["a" * 60] * 4) + ":1")
    with pytest.raises(InvalidReference, match="cannot be placed under"):
        under_prefix(source, "reg.corp/" + "b" * 30)
