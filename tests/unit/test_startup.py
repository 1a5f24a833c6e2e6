"""Start-up: ``imgmirror --version`` answers before the heavy modules load, and the package
itself imports nothing until a name is used."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("typer", "click", "rich", "httpx", "attrs", "attr", "yaml", "email")

PROBE = """
import json, sys
sys.argv = ["imgmirror", *ARGS]
from imgmirror.cli import main
main()
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def loaded_after(*args: str) -> tuple[str, set[str]]:
    code = PROBE.replace("ARGS", repr(list(args)))
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    *output, modules = proc.stdout.splitlines()
    return "\n".join(output), set(json.loads(modules))


def test_version_loads_none_of_the_heavy_modules():
    output, modules = loaded_after("--version")

    assert output.startswith("imgmirror ")
    assert modules.isdisjoint(HEAVY), modules & set(HEAVY)


def modules_after(statements: str) -> set[str]:
    """The modules loaded once a fresh interpreter has run ``statements``."""
    code = f"import json, sys; {statements}; print(json.dumps(list(sys.modules)))"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(proc.stdout))


def test_the_package_loads_a_name_only_when_used():
    bare = modules_after("import imgmirror")
    used = modules_after("import imgmirror; imgmirror.Reference; imgmirror.NotFound")

    assert not {"attrs", "httpx", "typer"} & bare
    assert {"imgmirror.reference", "imgmirror.errors"} <= used
    assert "imgmirror.copier" not in used


def test_touching_the_operations_does_not_load_the_cli_libraries():
    modules = {
        m.split(".")[0]
        for m in modules_after("import imgmirror; imgmirror.copy; imgmirror.save; imgmirror.push")
    }

    assert "httpx" in modules
    assert not {"typer", "click", "rich", "pygments"} & modules
