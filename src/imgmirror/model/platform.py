"""Platforms (``os/arch[/variant]``): parsing, containerd-style normalisation and matching.

Normalisation follows containerd ``platforms/database.go`` (``normalizeOS``,
``normalizeArch``): everything lowercase; ``macos`` → ``darwin``; ``x86_64``/``x86-64`` →
``amd64`` and ``amd64/v1`` → ``amd64``; ``aarch64`` → ``arm64`` and arm64 variants
``8``/``v8``/``v8.0`` dropped, ``9``/``9.0``/``v9.0`` → ``v9``; ``i386`` → ``386``;
``armhf`` → ``arm/v7``, ``armel`` → ``arm/v6``; ``arm`` without variant or ``7`` → ``arm/v7``,
``5``/``6``/``8`` → ``v5``/``v6``/``v8``. Matching is exact after normalisation. This module
does no I/O (``Platform.host()`` only asks `platform.machine`).
"""

from __future__ import annotations

import platform as _stdlib_platform
import re
from collections.abc import Mapping, Sequence
from typing import TypeAlias

import attrs

from imgmirror.errors import InvalidPlatform

__all__ = ["Platform", "PlatformsArg", "parse_platforms"]

_COMPONENT = re.compile(r"[a-z0-9_.-]+")


def _normalise_os(value: str) -> str:
    value = value.lower()
    return "darwin" if value == "macos" else value


def _normalise_arch(arch: str, variant: str | None) -> tuple[str, str | None]:
    arch = arch.lower()
    variant = variant.lower() if variant else None
    if arch == "i386":
        return "386", None
    if arch in {"x86_64", "x86-64", "amd64"}:
        return "amd64", None if variant == "v1" else variant
    if arch in {"aarch64", "arm64"}:
        if variant in {"8", "v8", "v8.0"}:
            variant = None
        elif variant in {"9", "9.0", "v9.0"}:
            variant = "v9"
        return "arm64", variant
    if arch == "armhf":
        return "arm", "v7"
    if arch == "armel":
        return "arm", "v6"
    if arch == "arm":
        if variant in {None, "7"}:
            variant = "v7"
        elif variant in {"5", "6", "8"}:
            variant = f"v{variant}"
    return arch, variant


@attrs.frozen
class Platform:
    """An image platform, normalised on construction.

    Args:
        os: Operating system, GOOS style (``linux``, ``windows``).
        architecture: CPU architecture, GOARCH style (``amd64``, ``arm64``, ``arm``).
        variant: CPU variant (``v7``), or ``None``.
        os_version: The ``os.version`` field (matters on Windows), or ``None``.

    Raises:
        InvalidPlatform: If ``os`` or ``architecture`` is empty or has odd characters.
    """

    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None

    def __attrs_post_init__(self) -> None:
        os_name = _normalise_os(self.os)
        arch, variant = _normalise_arch(self.architecture, self.variant)
        for label, value in (("os", os_name), ("architecture", arch), ("variant", variant)):
            if value is not None and not _COMPONENT.fullmatch(value):
                raise InvalidPlatform(
                    f"invalid platform {self._display()!r}: bad {label} {value!r}"
                )
        object.__setattr__(self, "os", os_name)
        object.__setattr__(self, "architecture", arch)
        object.__setattr__(self, "variant", variant)
        object.__setattr__(self, "os_version", self.os_version or None)

    def _display(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p is not None)

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse ``"os/arch"`` or ``"os/arch/variant"`` (e.g. ``linux/arm/v7``).

        Raises:
            InvalidPlatform: If ``text`` does not have two or three non-empty parts.
        """
        parts = text.strip().split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise InvalidPlatform(
                f"invalid platform {text!r}: expected os/arch or os/arch/variant",
                hint="for example linux/amd64 or linux/arm/v7",
            )
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    @classmethod
    def from_json(cls, obj: Mapping[str, object]) -> Platform:
        """Build from an OCI/Docker ``platform`` object or the matching config fields.

        Raises:
            InvalidPlatform: If ``os`` or ``architecture`` is missing or not a string.
        """
        fields: dict[str, str | None] = {}
        for key in ("os", "architecture", "variant", "os.version"):
            value = obj.get(key)
            if value is not None and not isinstance(value, str):
                raise InvalidPlatform(f"platform field {key!r} must be a string, not {value!r}")
            fields[key] = value or None
        os_name, arch = fields["os"], fields["architecture"]
        if os_name is None or arch is None:
            missing = "os" if os_name is None else "architecture"
            raise InvalidPlatform(f"platform object has no {missing!r}")
        return cls(os_name, arch, fields["variant"], fields["os.version"])

    @classmethod
    def host(cls) -> Platform:
        """The Linux platform matching this machine's CPU (``platform.machine()``)."""
        machine = _stdlib_platform.machine().lower()
        match = re.fullmatch(r"armv(\d+)\w*", machine)
        if match:
            return cls("linux", "arm", match.group(1))
        if machine in {"i486", "i586", "i686"}:
            return cls("linux", "386")
        return cls("linux", machine or "amd64")

    def matches(self, other: Platform) -> bool:
        """Exact match after normalisation; ``os_version`` counts only when both have one."""
        if (self.os, self.architecture, self.variant) != (
            other.os,
            other.architecture,
            other.variant,
        ):
            return False
        if self.os_version is None or other.os_version is None:
            return True
        return self.os_version == other.os_version

    def to_json(self) -> dict[str, str]:
        """The OCI ``platform`` object (``architecture``, ``os``, then optional fields)."""
        out = {"architecture": self.architecture, "os": self.os}
        if self.os_version is not None:
            out["os.version"] = self.os_version
        if self.variant is not None:
            out["variant"] = self.variant
        return out

    def __str__(self) -> str:
        return self._display()


#: What ``platforms=`` takes in every operation: one platform or several, as strings or values.
PlatformsArg: TypeAlias = str | Platform | Sequence[str | Platform] | None


def parse_platforms(value: PlatformsArg) -> list[Platform] | None:
    """``"linux/arm64"``, a [Platform][] or a list of either -> platforms; None -> None.

    Raises:
        InvalidPlatform: a string is not ``os/arch[/variant]``.
    """
    if value is None:
        return None
    items = [value] if isinstance(value, str | Platform) else list(value)
    return [p if isinstance(p, Platform) else Platform.parse(p) for p in items]
