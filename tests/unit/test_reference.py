"""Tests for imgmirror.model.reference: grammar, Docker Hub normalisation and derived forms."""

from __future__ import annotations

import pytest

from imgmirror.errors import InvalidReference
from imgmirror.model.digest import Digest
from imgmirror.model.reference import Reference, is_loopback_host

D = "sha256:" + "a" * 64
D2 = "sha256:" + "b" * 64


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("alpine", "docker.io", "library/alpine", "latest", None),
        ("alpine:3.19", "docker.io", "library/alpine", "3.19", None),
        ("library/alpine", "docker.io", "library/alpine", "latest", None),
        ("docker.io/alpine", "docker.io", "library/alpine", "latest", None),
        ("index.docker.io/alpine:1", "docker.io", "library/alpine", "1", None),
        ("index.docker.io/user/app", "docker.io", "user/app", "latest", None),
        ("user/app:v1.0", "docker.io", "user/app", "v1.0", None),
        ("ghcr.io/owner/app", "ghcr.io", "owner/app", "latest", None),
        ("ghcr.io/app", "ghcr.io", "app", "latest", None),
        ("localhost/app", "localhost", "app", "latest", None),
        ("localhost:5000/foo", "localhost:5000", "foo", "latest", None),
        ("localhost:5000/foo:1", "localhost:5000", "foo", "1", None),
        ("localhost:5000", "docker.io", "library/localhost", "5000", None),
        ("10.0.0.1:5000/a/b/c", "10.0.0.1:5000", "a/b/c", "latest", None),
        ("[::1]:5000/img:t", "[::1]:5000", "img", "t", None),
        ("[fe80::1]/img", "[fe80::1]", "img", "latest", None),
        ("Registry.Example/img", "Registry.Example", "img", "latest", None),
        (f"alpine@{D}", "docker.io", "library/alpine", None, D),
        (f"alpine:3.19@{D}", "docker.io", "library/alpine", "3.19", D),
        (f"host:5000/a:b@{D}", "host:5000", "a", "b", D),
        ("a/b__c.d-e--f_g:TAG_x.y-z", "docker.io", "a/b__c.d-e--f_g", "TAG_x.y-z", None),
        ("docker.io/x/y:" + "t" * 128, "docker.io", "x/y", "t" * 128, None),
    ],
)
def test_parse(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = Reference.parse(text)
    assert ref.registry == registry
    assert ref.repository == repository
    assert ref.tag == tag
    assert (str(ref.digest) if ref.digest else None) == digest


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        (" alpine", "whitespace"),
        ("Foo/Bar", "repository name must be lowercase"),
        ("Alpine", "repository name must be lowercase"),
        ("docker.io/Library/alpine", "repository name must be lowercase"),
        ("alpine:", "tag is empty"),
        ("alpine:-x", "invalid tag '-x'"),
        ("alpine:a/b", "invalid registry host 'alpine:a'"),
        ("alpine:" + "t" * 129, "tag is longer than 128 characters"),
        ("x/" + "a" * 254, "longer than 255 characters"),
        ("a" * 64, "image ID"),
        ("foo//bar", "empty path component"),
        ("foo/", "empty path component"),
        ("-foo/bar", "invalid repository path component '-foo'"),
        ("foo_/bar", "invalid repository path component 'foo_'"),
        ("foo___bar", "invalid repository path component"),
        ("foo bar", "invalid repository path component"),
        ("alpine@sha256:abc", "needs 64 hex characters"),
        ("alpine@md5:" + "a" * 32, "unsupported digest algorithm"),
        (f"alpine@{D}@{D2}", "invalid digest"),
        ("host_name:5000/img", "invalid registry host"),
        ("-host.com/img", "invalid registry host"),
        ("[::zz]:5000/img", "invalid registry host"),
        ("[1:2:3:4:5:6:7:8:9]/img", "invalid IPv6 address"),
        ("host:port/img", "invalid registry host"),
        (":tag", "repository name is empty"),
        (f"@{D}", "repository name is empty"),
    ],
)
def test_parse_rejects(text: str, problem: str) -> None:
    with pytest.raises(InvalidReference) as info:
        Reference.parse(text)
    message = str(info.value)
    assert message.startswith(f'invalid image reference "{text}": ')
    assert problem in message
    assert isinstance(info.value, ValueError)


def test_lowercase_example_message() -> None:
    with pytest.raises(InvalidReference) as info:
        Reference.parse("Foo/Bar")
    assert str(info.value) == 'invalid image reference "Foo/Bar": repository name must be lowercase'


def test_path_of_255_is_fine() -> None:
    assert len(Reference.parse("x/" + "a" * 253).repository) == 255


@pytest.mark.parametrize(
    ("text", "full", "familiar", "identifier", "api_host", "name"),
    [
        (
            "alpine",
            "docker.io/library/alpine:latest",
            "alpine:latest",
            "latest",
            "registry-1.docker.io",
            "docker.io/library/alpine",
        ),
        (
            "user/app:1",
            "docker.io/user/app:1",
            "user/app:1",
            "1",
            "registry-1.docker.io",
            "docker.io/user/app",
        ),
        (
            "docker.io/library/a/b:1",
            "docker.io/library/a/b:1",
            "library/a/b:1",
            "1",
            "registry-1.docker.io",
            "docker.io/library/a/b",
        ),
        (
            f"alpine:3.19@{D}",
            f"docker.io/library/alpine:3.19@{D}",
            f"alpine:3.19@{D}",
            D,
            "registry-1.docker.io",
            "docker.io/library/alpine",
        ),
        (
            f"ghcr.io/o/x@{D}",
            f"ghcr.io/o/x@{D}",
            f"ghcr.io/o/x@{D}",
            D,
            "ghcr.io",
            "ghcr.io/o/x",
        ),
        (
            "localhost:5000/library/x:2",
            "localhost:5000/library/x:2",
            "localhost:5000/library/x:2",
            "2",
            "localhost:5000",
            "localhost:5000/library/x",
        ),
    ],
)
def test_derived_forms(
    *, text: str, full: str, familiar: str, identifier: str, api_host: str, name: str
) -> None:
    ref = Reference.parse(text)
    assert str(ref) == full
    assert ref.familiar == familiar
    assert ref.identifier == identifier
    assert ref.api_host == api_host
    assert ref.name == name
    assert Reference.parse(str(ref)) == ref


def test_with_tag_drops_digest() -> None:
    ref = Reference.parse(f"alpine:3.19@{D}").with_tag("edge")
    assert str(ref) == "docker.io/library/alpine:edge"
    with pytest.raises(InvalidReference, match="invalid tag"):
        ref.with_tag(".bad")


def test_with_digest_keeps_tag() -> None:
    ref = Reference.parse("alpine:3.19")
    assert str(ref.with_digest(D)) == f"docker.io/library/alpine:3.19@{D}"
    assert ref.with_digest(Digest.parse(D2)).identifier == D2
    with pytest.raises(InvalidReference, match="needs 64 hex"):
        ref.with_digest("sha256:00")


def test_with_repository() -> None:
    ref = Reference.parse("ghcr.io/a/b:1")
    assert str(ref.with_repository("c/d")) == "ghcr.io/c/d:1"
    assert ref.with_repository("c").repository == "c"
    assert Reference.parse("alpine").with_repository("busybox").repository == "library/busybox"
    with pytest.raises(InvalidReference, match="lowercase"):
        ref.with_repository("Up")


@pytest.mark.parametrize(
    ("actions", "scope"),
    [
        ("pull", "repository:library/alpine:pull"),
        ("pull,push", "repository:library/alpine:pull,push"),
        (("pull", "push"), "repository:library/alpine:pull,push"),
        (["delete"], "repository:library/alpine:delete"),
    ],
)
def test_scope(actions: str | tuple[str, ...] | list[str], scope: str) -> None:
    assert Reference.parse("alpine:1").scope(actions) == scope


def test_scope_default_is_pull() -> None:
    assert Reference.parse("localhost:5000/x").scope() == "repository:x:pull"


def test_frozen_and_hashable() -> None:
    ref = Reference.parse("alpine")
    assert {ref, Reference.parse("docker.io/library/alpine:latest")} == {ref}
    with pytest.raises(AttributeError):
        ref.tag = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "loopback"),
    [
        ("localhost:5000/x", True),
        ("localhost/x", True),
        ("registry.localhost:5000/x", True),
        ("127.0.0.1:5000/x", True),
        ("127.1.2.3/x", True),
        ("[::1]:5000/x", True),
        ("ghcr.io/x", False),
        ("10.0.0.1:5000/x", False),
        ("alpine", False),
    ],
)
def test_is_loopback(text: str, loopback: bool) -> None:
    assert Reference.parse(text).is_loopback is loopback


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LOCALHOST:5000", True),
        ("a.b.localhost", True),
        ("127.0.0.1", True),
        ("127.0.0.1:443", True),
        ("127.255.255.254", True),
        ("::1", True),
        ("[::1]", True),
        ("[::1]:5000", True),
        ("::ffff:127.0.0.1", True),
        ("localhost.", True),
        ("notlocalhost", False),
        ("localhost.example.com", False),
        ("128.0.0.1", False),
        ("[::2]:5000", False),
        ("192.168.1.1:5000", False),
        ("", False),
        ("registry-1.docker.io", False),
    ],
)
def test_is_loopback_host(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_default_tag_none_says_no_tag_was_given():
    bare = Reference.parse("reg.corp:5000/mirror/pause", default_tag=None)
    assert (bare.tag, bare.digest) == (None, None)
    assert Reference.parse("reg.corp:5000/mirror/pause:3.9", default_tag=None).tag == "3.9"
    assert Reference.parse("reg.corp:5000/mirror/pause").tag == "latest"
