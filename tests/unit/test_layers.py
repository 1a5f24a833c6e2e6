"""The layering holds: pure modules import no HTTP, no subprocess and nothing above them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import imgmirror

PACKAGE = Path(imgmirror.__file__).parent
PURE = [
    "errors",
    "digest",
    "reference",
    "mediatypes",
    "platform",
    "manifest",
    "challenge",
    "credentials",
    "compression",
    "dockerconfig",
    "pullsecret",
    "nodeconfig",
    "inspection",
]
FORBIDDEN_IN_PURE = {"httpx", "socket", "subprocess", "ssl", "imgmirror.transport"}
ABOVE_PURE = {
    "copier",
    "saver",
    "pusher",
    "session",
    "image",
    "cli",
    "keychain",
    "transport",
    "lookup",
    "nodefiles",
}


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                found.add("imgmirror." + (node.module or ""))
            elif node.module:
                found.add(node.module)
    return found


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_do_no_io(module: str):
    imported = imports_of(PACKAGE / f"{module}.py")
    bad = {
        name
        for name in imported
        if name.split(".")[0] in FORBIDDEN_IN_PURE
        or name in FORBIDDEN_IN_PURE
        or (name.startswith("imgmirror.") and name.split(".")[1] in ABOVE_PURE)
    }
    assert not bad, f"{module}.py imports {sorted(bad)}"


def test_only_the_transport_imports_httpx():
    users = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "httpx" in {name.split(".")[0] for name in imports_of(path)}
    )
    assert all(user.startswith("transport/") for user in users), users


def test_public_names_are_exported():
    for name in imgmirror.__all__:
        assert getattr(imgmirror, name) is not None
    assert {"copy", "Reference", "ImgmirrorError", "Credential"} <= set(imgmirror.__all__)


def test_operations_stay_functions_after_their_modules_load():
    import imgmirror.copier
    import imgmirror.pusher
    import imgmirror.saver

    assert callable(imgmirror.copy)
    assert callable(imgmirror.save)
    assert callable(imgmirror.push)
    assert imgmirror.copy is imgmirror.copier.copy
