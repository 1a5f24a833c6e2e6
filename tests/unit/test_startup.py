"""Start-up: ``imgmirror --version`` answers before the heavy modules load, and the package
itself imports nothing until a name is used."""

from __future__ import annotations

import json
import subprocess
import sys

from imgmirror.cli import COMMANDS, command_of
from tests.support.tools import run_cli

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
    assert {"imgmirror.model.reference", "imgmirror.errors"} <= used
    assert "imgmirror.ops.copy" not in used


def test_touching_the_operations_does_not_load_the_cli_libraries():
    modules = {
        m.split(".")[0]
        for m in modules_after("import imgmirror; imgmirror.copy; imgmirror.save; imgmirror.push")
    }

    assert "httpx" in modules
    assert not {"typer", "click", "rich", "pygments"} & modules


def test_a_command_loads_only_its_own_cli_module():
    sync = modules_after("from imgmirror.cli import load_app; load_app('sync')")
    everything = modules_after("from imgmirror.cli import load_app; load_app(None)")

    assert "imgmirror.cli.sync" in sync
    assert not {"imgmirror.cli.lookup", "imgmirror.cli.transfer", "imgmirror.cli.nodes"} & sync
    assert {f"imgmirror.cli.{name}" for name in COMMANDS.values()} <= everything


def test_the_command_is_the_first_argument_that_is_not_an_option():
    assert command_of(["--debug", "sync", "file.yaml"]) == "sync"
    assert command_of(["--help"]) is None
    assert command_of(["secret", "check"]) == "secret"


def test_every_command_is_registered_by_the_module_named_for_it():
    """COMMANDS must follow the modules: a command missing from it or in the wrong module
    would make ``imgmirror CMD`` fail as unknown."""
    for command, module in COMMANDS.items():
        found = modules_after(
            "import typer.main; from imgmirror.cli import load_app; "
            f"group = typer.main.get_group(load_app({command!r})); "
            f"assert {command!r} in group.commands, sorted(group.commands)"
        )
        assert f"imgmirror.cli.{module}" in found


def test_every_command_is_in_the_map():
    found = modules_after(
        "import typer.main; from imgmirror.cli import COMMANDS, load_app; "
        "names = set(typer.main.get_group(load_app(None)).commands); "
        "assert names == set(COMMANDS), names ^ set(COMMANDS)"
    )
    assert "imgmirror.cli.common" in found


def test_the_entry_point_keeps_exit_statuses_and_output():
    """``run`` ends the process without Python's shutdown: statuses and output must survive."""
    helped = run_cli("sync", "--help")
    usage = run_cli("copy")
    failed = run_cli("ls", "127.0.0.1:1/nothing")

    assert helped.returncode == 0
    assert helped.stdout.rstrip().endswith("─╯")  # the whole help box arrived
    assert usage.returncode == 2
    assert "Missing argument" in usage.stderr
    assert failed.returncode == 1
    assert failed.stderr.startswith("imgmirror: error: cannot connect to registry 127.0.0.1:1")
