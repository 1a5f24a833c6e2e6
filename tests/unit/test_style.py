"""Code-shape rules the style guide sets: functions stay short, modules say what they do."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import imgmirror

PACKAGE = Path(imgmirror.__file__).parent
MAX_BODY = 60


def _is_command(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A typer command declaration: one parameter per option, so long by nature."""
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(target, ast.Attribute) and target.attr in {"command", "callback"}:
            return True
    return False


def body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of a function's body, its docstring left out."""
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    if not body:
        return 0
    return (body[-1].end_lineno or body[-1].lineno) - body[0].lineno + 1


def long_functions() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not _is_command(node):
                lines = body_lines(node)
                if lines > MAX_BODY:
                    found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({lines})")
    return found


def test_no_function_body_is_longer_than_60_lines():
    assert long_functions() == []


def test_the_length_check_counts_bodies_without_docstrings():
    tree = ast.parse('def f():\n    """Doc.\n\n    More."""\n    a = 1\n    return a\n')
    function = tree.body[0]
    assert isinstance(function, ast.FunctionDef)
    assert body_lines(function) == 2


def test_every_module_opens_with_a_docstring():
    missing = [
        str(path.relative_to(PACKAGE))
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name not in {"__main__.py", "_version.py"}
        and not ast.get_docstring(ast.parse(path.read_text()))
    ]
    assert missing == []


SPHINX_ROLE = re.compile(r":(?:meth|class|mod|func|data|attr|exc|obj):`")


def _docstrings(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                yield getattr(node, "lineno", 1), doc


def test_docstrings_cross_reference_the_way_the_site_renders():
    """mkdocstrings reads ``[Name][]`` and ``[text][imgmirror.x.Name]``, not Sphinx roles
    (``:class:`...```), which the API site would show raw."""
    raw = [
        f"{path.relative_to(PACKAGE)}:{line}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line, doc in _docstrings(ast.parse(path.read_text()))
        if SPHINX_ROLE.search(doc)
    ]
    assert raw == []
