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
    "imagetree",
    "naming",
    "semver",
    "tagselect",
    "syncfile",
    "shards",
    "syncreport",
    "artifacts",
    "referrers",
]
FORBIDDEN_IN_PURE = {"httpx", "socket", "subprocess", "ssl", "imgmirror.transport"}
ABOVE_PURE = {
    "copier",
    "saver",
    "pusher",
    "session",
    "image",
    "blobs",
    "cli",
    "keychain",
    "transport",
    "lookup",
    "nodefiles",
    "syncer",
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


def module_path(name: str) -> Path | None:
    """The file of ``imgmirror.<name>`` (a module or a package), None if not ours."""
    if name.split(".", maxsplit=1)[0] != "imgmirror" or name == "imgmirror":
        return None  # the package facade imports lazily; its eager names are checked below
    relative = Path(*name.split(".")[1:])
    for candidate in (PACKAGE / relative.with_suffix(".py"), PACKAGE / relative / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node except those under ``if TYPE_CHECKING:`` (never executed)."""
    out: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and ast.unparse(child.test).endswith("TYPE_CHECKING"):
                todo.extend(child.orelse)
                continue
            todo.append(child)
    return out


def reached_from(start: str) -> set[str]:
    """Every module ``imgmirror.<start>`` imports at run time, directly or through others
    (relative imports resolved; ``from . import x`` counts as importing ``x``)."""
    seen: set[str] = set()
    todo = [f"imgmirror.{start}"]
    while todo:
        name = todo.pop()
        path = module_path(name)
        if name in seen or path is None:
            seen.add(name)
            continue
        seen.add(name)
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in runtime_nodes(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package.split(".")
                if node.level:
                    base = base[: len(base) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                targets = [module] + [f"{module}.{alias.name}" for alias in node.names]
            todo.extend(t for t in targets if t not in seen)
    return seen


ARCHIVE = sorted(
    f"archive.{path.stem}" for path in (PACKAGE / "archive").glob("*.py") if path.stem != "__init__"
)


@pytest.mark.parametrize("module", PURE + ARCHIVE)
def test_pure_and_archive_modules_never_reach_http(module: str):
    reached = reached_from(module)
    bad = sorted(
        name
        for name in reached
        if name.split(".")[0] in {"httpx", "h11", "httpcore"}
        or name.startswith("imgmirror.transport")
    )
    assert not bad, f"{module} reaches {bad} through its imports"


def test_the_package_facade_loads_no_http():
    reached = set().union(*(reached_from(m) for m in ("transport.retry", "transport.tls")))
    assert not {n for n in reached if n.split(".")[0] in {"httpx", "h11", "httpcore"}}


def test_the_transitive_check_sees_through_modules():
    assert "imgmirror.transport.client" in reached_from("image")
    assert "httpx" in reached_from("copier")


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
