"""The architecture holds: packages import only packages below them, with no circles.

The rule (docs/design.md), from the real import graph of every module (imports at module level
and inside functions both count; those under ``if TYPE_CHECKING:`` never run and do not):

    cli > api > session > syncing, nodes > ops > referrers > registry, archive
        > transport > auth, progress > model > errors

Packages on one line of the rule (siblings: ``syncing``/``nodes``, ``registry``/``archive``,
``auth``/``progress``) do not import each other. Inside a package, modules form no circle.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

import pytest

import imgmirror

PACKAGE = Path(imgmirror.__file__).parent

#: Each top-level part of the package and its rank: a part may import only lower ranks.
RANKS = {
    "_version": 0,
    "errors": 0,
    "model": 1,
    "auth": 2,
    "progress": 2,
    "transport": 3,
    "registry": 4,
    "archive": 4,
    "referrers": 5,
    "ops": 6,
    "syncing": 7,
    "nodes": 7,
    "session": 8,
    "api": 9,
    "cli": 10,
    "__main__": 11,
}

FORBIDDEN_IN_MODEL = {"httpx", "httpcore", "h11", "socket", "subprocess", "ssl"}


def all_modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(["imgmirror", *parts]))
    return names


def module_path(name: str) -> Path | None:
    """The file of ``imgmirror.<name>`` (a module or a package), None if not ours."""
    if name.split(".", maxsplit=1)[0] != "imgmirror":
        return None
    relative = Path(*name.split(".")[1:]) if name != "imgmirror" else Path()
    for candidate in (PACKAGE / relative.with_suffix(".py"), PACKAGE / relative / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def runtime_nodes(tree: ast.AST) -> Iterator[tuple[ast.AST, bool]]:
    """Every node except those under ``if TYPE_CHECKING:``, with whether it sits in a function."""
    todo: list[tuple[ast.AST, bool]] = [(tree, False)]
    while todo:
        node, in_function = todo.pop()
        yield node, in_function
        inner = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and ast.unparse(child.test).endswith("TYPE_CHECKING"):
                todo.extend((grandchild, inner) for grandchild in child.orelse)
                continue
            todo.append((child, inner))


@functools.cache
def imports(name: str) -> tuple[tuple[str, bool], ...]:
    """What module ``name`` imports at run time: (imported name, inside a function).

    Relative imports are resolved; ``from x import y`` counts as importing ``x`` and, where
    ``x.y`` is a module, ``x.y``.
    """
    path = module_path(name)
    if path is None:
        return ()
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: list[tuple[str, bool]] = []
    for node, in_function in runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.extend((alias.name, in_function) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((module, in_function))
            for alias in node.names:
                if module_path(f"{module}.{alias.name}") is not None:
                    found.append((f"{module}.{alias.name}", in_function))
    return tuple(found)


def own_imports(name: str) -> set[str]:
    """The imgmirror modules ``name`` imports (the package facade aside)."""
    return {
        target
        for target, _ in imports(name)
        if target.startswith("imgmirror.") and module_path(target) is not None
    }


def part_of(name: str) -> str:
    return name.split(".")[1]


def reached_from(start: str) -> set[str]:
    """Every module ``start`` imports at run time, directly or through others."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(target for target, _ in imports(name) if target not in seen)
    return seen


MODULES = [m for m in all_modules() if m != "imgmirror"]


def test_every_part_of_the_package_has_a_rank():
    assert {part_of(m) for m in MODULES} <= set(RANKS), "add the new package to RANKS"


@pytest.mark.parametrize("module", MODULES)
def test_imports_point_down(module: str):
    rank = RANKS[part_of(module)]
    bad = sorted(
        target
        for target in own_imports(module)
        if part_of(target) != part_of(module) and RANKS[part_of(target)] >= rank
    )
    assert not bad, f"{module} imports {bad}, which are not below it"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of ``graph`` (as a path that starts and ends at the same node), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_modules_form_no_circle():
    graph = {m: own_imports(m) - {"imgmirror"} for m in MODULES}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_packages_form_no_circle():
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        targets = {part_of(t) for t in own_imports(module)} - {part_of(module)}
        graph.setdefault(part_of(module), set()).update(targets)
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_circle_finder_finds_circles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


@pytest.mark.parametrize("module", [m for m in MODULES if part_of(m) != "cli"])
def test_no_function_level_imports_of_our_own_modules(module: str):
    inside = sorted(
        target
        for target, in_function in imports(module)
        if in_function and target.startswith("imgmirror")
    )
    assert not inside, f"{module} imports {inside} inside a function"


@pytest.mark.parametrize("module", [m for m in MODULES if part_of(m) == "model"])
def test_model_modules_do_no_io(module: str):
    reached = reached_from(module)
    bad = sorted(n for n in reached if n.split(".")[0] in FORBIDDEN_IN_MODEL)
    assert not bad, f"{module} reaches {bad}"


@pytest.mark.parametrize(
    "module",
    [m for m in MODULES if part_of(m) in {"model", "auth", "archive", "errors"}],
)
def test_pure_and_archive_modules_never_reach_http(module: str):
    # the one retry policy is a pure value in transport/ (it imports no HTTP, checked below)
    allowed = {"imgmirror.transport", "imgmirror.transport.retry"}
    bad = sorted(
        name
        for name in reached_from(module)
        if name.split(".")[0] in {"httpx", "h11", "httpcore"}
        or (name.startswith("imgmirror.transport") and name not in allowed)
    )
    assert not bad, f"{module} reaches {bad} through its imports"


def test_the_package_facade_loads_no_http():
    reached = set().union(*(reached_from(m) for m in ("imgmirror.transport.retry",)))
    assert not {n for n in reached if n.split(".")[0] in {"httpx", "h11", "httpcore"}}


def test_the_transitive_check_sees_through_modules():
    assert "imgmirror.transport.client" in reached_from("imgmirror.registry.fetch")
    assert "httpx" in reached_from("imgmirror.ops.copy")


def test_only_the_transport_imports_httpx():
    users = sorted(
        module
        for module in MODULES
        if "httpx" in {target.split(".")[0] for target, _ in imports(module)}
    )
    assert all(part_of(user) == "transport" for user in users), users


def test_every_package_says_what_it_holds_and_may_import():
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert "May import" in doc or init.parent.name == "cli", f"{init} lacks its rule"


def test_the_root_holds_few_modules():
    assert len(list(PACKAGE.glob("*.py"))) <= 9


def test_public_names_are_exported():
    for name in imgmirror.__all__:
        assert getattr(imgmirror, name) is not None
    assert {"copy", "Reference", "ImgmirrorError", "Credential"} <= set(imgmirror.__all__)


def test_operations_stay_functions_after_their_modules_load():
    import imgmirror.ops.copy
    import imgmirror.ops.push
    import imgmirror.ops.save
    import imgmirror.syncing.run

    assert callable(imgmirror.copy)
    assert callable(imgmirror.save)
    assert callable(imgmirror.push)
    assert callable(imgmirror.sync)
