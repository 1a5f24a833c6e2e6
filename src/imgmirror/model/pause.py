"""The pause (sandbox) image: which one kubeadm names, which one a node's runtime uses, and
whether they agree. Shared by ``find-images --kubeadm --node-config`` and ``doctor``.

Every pod starts with the pause image, pulled by the container runtime under the name its
own configuration gives (containerd ``sandbox_image``, CRI-O ``pause_image``), not the one
``kubeadm config images list`` prints; when they differ, the mirrored pause image is not the
one nodes ask for. Pure: callers pass text (tomllib parses it).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from typing import Any, Literal

import attrs

from imgmirror.errors import InvalidReference
from imgmirror.model.reference import Reference

__all__ = ["PauseCheck", "SandboxSetting", "compare_pause", "pause_image", "sandbox_setting"]

#: Where each runtime's configuration keeps the pause image, as TOML key paths.
_PLACES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("containerd 2.x", ("plugins", "io.containerd.cri.v1.images", "pinned_images", "sandbox")),
    ("containerd 1.x", ("plugins", "io.containerd.grpc.v1.cri", "sandbox_image")),
    ("containerd 1.x", ("plugins", "cri", "sandbox_image")),  # config version 1
    ("CRI-O", ("crio", "image", "pause_image")),
)


def pause_image(images: Iterable[str]) -> str | None:
    """The pause image among ``images`` (a repository whose last component is ``pause``)."""
    for text in images:
        try:
            ref = Reference.parse(text.strip())
        except InvalidReference:
            continue
        if ref.repository.rsplit("/", 1)[-1] == "pause":
            return text.strip()
    return None


@attrs.frozen
class SandboxSetting:
    """The pause image a runtime configuration names (None: not set, the runtime's built-in
    default applies) and where (``containerd 1.x``, ``containerd 2.x``, ``CRI-O``)."""

    image: str | None
    runtime: str


def _get(table: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        if not isinstance(table, dict) or key not in table:
            return None
        table = table[key]
    return table


def sandbox_setting(config_text: str) -> SandboxSetting:
    """The pause image of a containerd ``config.toml`` or CRI-O ``crio.conf``.

    Raises:
        ValueError: the text is not TOML.
    """
    try:
        config = tomllib.loads(config_text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"not TOML: {exc}") from None
    for runtime, keys in _PLACES:
        value = _get(config, keys)
        if isinstance(value, str) and value.strip():
            return SandboxSetting(value.strip(), runtime)
    runtime = "CRI-O" if "crio" in config else "containerd"
    return SandboxSetting(None, runtime)


@attrs.frozen
class PauseCheck:
    """The outcome: ``ok``, ``tag`` (same repository, other tag or digest), ``repository``
    (another image), ``unset`` (the runtime's built-in default) or ``invalid``."""

    status: Literal["ok", "tag", "repository", "unset", "invalid"]
    expected: str
    configured: str | None
    message: str

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def compare_pause(expected: str, setting: SandboxSetting) -> PauseCheck:
    """Whether the runtime's pause image is the one ``expected`` names (names normalised:
    ``pause:3.9`` and ``docker.io/library/pause:3.9`` agree)."""
    configured, runtime = setting.image, setting.runtime
    if configured is None:
        message = f"{runtime} sets no pause image: it uses its built-in default, not {expected}"
        return PauseCheck("unset", expected, None, f"{message}; set it to {expected}")
    try:
        want, have = Reference.parse(expected), Reference.parse(configured)
    except InvalidReference as exc:
        return PauseCheck("invalid", expected, configured, exc.message)
    if (want.name, want.tag, want.digest) == (have.name, have.tag, have.digest):
        return PauseCheck("ok", expected, configured, f"{runtime} uses {configured}")
    differs = f"{runtime} uses {configured}, kubeadm names {expected}"
    if want.name == have.name:
        return PauseCheck("tag", expected, configured, f"{differs}: mirror both or align them")
    where = f"the node pulls its pause image from {have.registry}"
    return PauseCheck("repository", expected, configured, f"{differs}: {where}; mirror it too")
