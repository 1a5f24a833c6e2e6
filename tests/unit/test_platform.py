"""Tests for imgmirror.model.platform: containerd-style normalisation, parsing and matching."""

from __future__ import annotations

import pytest

from imgmirror.errors import InvalidPlatform
from imgmirror.model.platform import Platform


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("linux/amd64", "linux/amd64"),
        ("linux/x86_64", "linux/amd64"),
        ("linux/x86-64", "linux/amd64"),
        ("linux/amd64/v1", "linux/amd64"),
        ("linux/amd64/v3", "linux/amd64/v3"),
        ("linux/aarch64", "linux/arm64"),
        ("linux/arm64/v8", "linux/arm64"),
        ("linux/arm64/8", "linux/arm64"),
        ("linux/arm64/v8.0", "linux/arm64"),
        ("linux/arm64/9", "linux/arm64/v9"),
        ("linux/aarch64/v9.0", "linux/arm64/v9"),
        ("linux/armhf", "linux/arm/v7"),
        ("linux/armel", "linux/arm/v6"),
        ("linux/arm", "linux/arm/v7"),
        ("linux/arm/7", "linux/arm/v7"),
        ("linux/arm/v7", "linux/arm/v7"),
        ("linux/arm/6", "linux/arm/v6"),
        ("linux/arm/5", "linux/arm/v5"),
        ("linux/arm/8", "linux/arm/v8"),
        ("linux/i386", "linux/386"),
        ("macos/arm64", "darwin/arm64"),
        ("Linux/AMD64", "linux/amd64"),
        ("LINUX/ARM/V7", "linux/arm/v7"),
        ("windows/amd64", "windows/amd64"),
        ("linux/s390x", "linux/s390x"),
        ("linux/ppc64le", "linux/ppc64le"),
        (" linux/riscv64 ", "linux/riscv64"),
    ],
)
def test_parse_normalises(text: str, normalised: str) -> None:
    assert str(Platform.parse(text)) == normalised


@pytest.mark.parametrize(
    "text", ["", "linux", "linux/", "/amd64", "linux/amd64/v8/extra", "linux//v7", "linux/am d64"]
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(InvalidPlatform, match="invalid platform") as info:
        Platform.parse(text)
    assert repr(text.strip()) in str(info.value) or repr(text) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_constructor_normalises() -> None:
    assert Platform("linux", "x86_64") == Platform("linux", "amd64")
    assert Platform("linux", "arm") == Platform("linux", "arm", "v7")
    assert Platform("linux", "amd64", os_version="") == Platform("linux", "amd64")


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"os": "linux", "architecture": "amd64"}, Platform("linux", "amd64")),
        ({"os": "linux", "architecture": "arm", "variant": "v6"}, Platform("linux", "arm", "v6")),
        ({"os": "linux", "architecture": "aarch64", "variant": "v8"}, Platform("linux", "arm64")),
        (
            {"os": "windows", "architecture": "amd64", "os.version": "10.0.17763.5576"},
            Platform("windows", "amd64", None, "10.0.17763.5576"),
        ),
        ({"os": "linux", "architecture": "amd64", "variant": ""}, Platform("linux", "amd64")),
        (
            {"os": "linux", "architecture": "amd64", "os.features": ["x"]},
            Platform("linux", "amd64"),
        ),
    ],
)
def test_from_json(obj: dict[str, object], expected: Platform) -> None:
    assert Platform.from_json(obj) == expected


@pytest.mark.parametrize(
    ("obj", "problem"),
    [
        ({"architecture": "amd64"}, "no 'os'"),
        ({"os": "linux"}, "no 'architecture'"),
        ({"os": "", "architecture": "amd64"}, "no 'os'"),
        ({"os": "linux", "architecture": 64}, "'architecture' must be a string"),
        ({"os": "linux", "architecture": "amd64", "variant": 7}, "'variant' must be a string"),
    ],
)
def test_from_json_rejects(obj: dict[str, object], problem: str) -> None:
    with pytest.raises(InvalidPlatform, match=problem):
        Platform.from_json(obj)


@pytest.mark.parametrize(
    ("platform", "json"),
    [
        (Platform("linux", "amd64"), {"architecture": "amd64", "os": "linux"}),
        (Platform("linux", "arm"), {"architecture": "arm", "os": "linux", "variant": "v7"}),
        (
            Platform("windows", "amd64", None, "10.0.1"),
            {"architecture": "amd64", "os": "windows", "os.version": "10.0.1"},
        ),
    ],
)
def test_to_json_round_trip(platform: Platform, json: dict[str, str]) -> None:
    assert platform.to_json() == json
    assert Platform.from_json(platform.to_json()) == platform


@pytest.mark.parametrize(
    ("a", "b", "match"),
    [
        (Platform("linux", "amd64"), Platform("linux", "x86_64"), True),
        (Platform("linux", "arm64", "v8"), Platform("linux", "aarch64"), True),
        (Platform("linux", "arm"), Platform("linux", "arm", "v7"), True),
        (Platform("linux", "arm", "v6"), Platform("linux", "arm", "v7"), False),
        (Platform("linux", "amd64"), Platform("linux", "arm64"), False),
        (Platform("linux", "amd64"), Platform("windows", "amd64"), False),
        (Platform("linux", "amd64", "v3"), Platform("linux", "amd64"), False),
        (Platform("windows", "amd64", None, "10.0.1"), Platform("windows", "amd64"), True),
        (
            Platform("windows", "amd64", None, "10.0.1"),
            Platform("windows", "amd64", None, "10.0.2"),
            False,
        ),
        (
            Platform("windows", "amd64", None, "10.0.1"),
            Platform("windows", "amd64", None, "10.0.1"),
            True,
        ),
    ],
)
def test_matches(a: Platform, b: Platform, match: bool) -> None:
    assert a.matches(b) is match
    assert b.matches(a) is match


@pytest.mark.parametrize(
    ("machine", "expected"),
    [
        ("x86_64", "linux/amd64"),
        ("AMD64", "linux/amd64"),
        ("aarch64", "linux/arm64"),
        ("arm64", "linux/arm64"),
        ("armv7l", "linux/arm/v7"),
        ("armv6l", "linux/arm/v6"),
        ("i686", "linux/386"),
        ("s390x", "linux/s390x"),
        ("ppc64le", "linux/ppc64le"),
        ("", "linux/amd64"),
    ],
)
def test_host(monkeypatch: pytest.MonkeyPatch, machine: str, expected: str) -> None:
    import platform as stdlib_platform

    monkeypatch.setattr(stdlib_platform, "machine", lambda: machine)
    assert str(Platform.host()) == expected


def test_host_uses_real_machine() -> None:
    assert Platform.host().os == "linux"
