"""The ``imgmirror`` command line: parse options, call the library, print the outcome.

No protocol logic lives here. [.common][imgmirror.cli.common] holds the app and what the commands
share;
[.transfer][imgmirror.cli.transfer] has ``copy``, ``save`` and ``push``;
[.secret][imgmirror.cli.secret] the pull-Secret tools;
[.nodes][imgmirror.cli.nodes] ``node-config``; [.doctor][imgmirror.cli.doctor] ``doctor``;
[.lookup][imgmirror.cli.lookup] ``ls``, ``digest``,
``inspect``, ``catalog``; [.sync][imgmirror.cli.sync] the ``sync`` command;
[.referrers][imgmirror.cli.referrers] the referrers
listing; [.verify][imgmirror.cli.verify] ``verify``;
[.findimages][imgmirror.cli.findimages] ``find-images``.
[main][] answers ``--version`` before importing any of them (typer, rich, attrs), and
accepts ``--debug`` after the command as well as before it.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

    import typer

__all__ = ["COMMANDS", "app", "command_of", "load_app", "main", "root_first", "run"]

#: Root options also accepted after the command (moved in front before typer parses).
ROOT_FLAGS = ("--debug",)


def root_first(args: list[str]) -> list[str]:
    """Move root flags given after the command (``copy … --debug``) in front of it; an
    argument after ``--`` is never moved."""
    end = args.index("--") if "--" in args else len(args)
    head, tail = args[:end], args[end:]
    moved = [a for a in head if a in ROOT_FLAGS]
    if not moved:
        return args
    return [*dict.fromkeys(moved), *(a for a in head if a not in ROOT_FLAGS), *tail]


#: The module that registers each command. A run imports only its command's module, so that
#: ``sync`` does not pay for building ``inspect`` (start-up time); ``--help`` and anything
#: unknown load them all.
COMMANDS = {
    "copy": "transfer",
    "save": "transfer",
    "push": "transfer",
    "sync": "sync",
    "secret": "secret",
    "node-config": "nodes",
    "doctor": "doctor",
    "ls": "lookup",
    "catalog": "lookup",
    "digest": "lookup",
    "inspect": "lookup",
    "referrers": "referrers",
    "verify": "verify",
    "find-images": "findimages",
}


def load_app(command: str | None = None) -> typer.Typer:
    """The typer app with ``command`` registered (every command if None or unknown)."""
    from importlib import import_module  # noqa: PLC0415

    from imgmirror.cli.common import app  # noqa: PLC0415

    wanted = {COMMANDS[command]} if command in COMMANDS else set(COMMANDS.values())
    for module in sorted(wanted):
        import_module(f"{__name__}.{module}")
    return app


def command_of(args: list[str]) -> str | None:
    """The command a command line runs: its first argument that is not an option."""
    return next((a for a in args if not a.startswith("-")), None)


def __getattr__(name: str) -> Any:
    if name == "app":
        return load_app()
    raise AttributeError(f"module 'imgmirror.cli' has no attribute {name!r}")


def run() -> None:
    """Console-script entry point: [main][], then leave without tearing Python down.

    A finished command has written and closed everything it opened; the interpreter's orderly
    shutdown (tearing down every module, collecting every object) would add 30-150 ms to each
    run and do nothing a user sees, so the standard streams are flushed and the process ends
    with the command's exit status. Ctrl-C before a command runs (while its modules load)
    prints one line and exits 130, no traceback; another exception (a bug) still goes through
    Python's own exit, with its traceback.
    """
    try:
        main()
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    except KeyboardInterrupt:
        sys.stderr.write("imgmirror: interrupted\n")
        code = 130
    if code is not None and not isinstance(code, int):
        sys.stderr.write(f"{code}\n")
        code = 1
    import contextlib  # noqa: PLC0415
    import os  # noqa: PLC0415

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (ls | head), or stream
            stream.flush()

    os._exit(code or 0)


def main() -> None:
    """Run the command line in ``sys.argv`` (returns, or raises ``SystemExit``)."""
    args = sys.argv[1:]
    if args == ["--version"]:
        from imgmirror._version import __version__  # noqa: PLC0415

        sys.stdout.write(f"imgmirror {__version__}\n")
        return
    from imgmirror.cli.referrer_options import bare_referrers  # noqa: PLC0415

    args = bare_referrers(root_first(args))
    load_app(command_of(args))(args=args, prog_name="imgmirror")
