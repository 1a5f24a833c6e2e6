"""Credentials for the command line that keep passwords out of ``ps`` and shell history.

``--src-creds``/``--dest-creds``/``--creds`` take ``USER:PASS`` as before, or:

- ``-``: read ``USER:PASS`` from the next line of stdin;
- ``USER:-``: read the password alone from the next line of stdin (like
  ``docker login --password-stdin``); on a terminal it is asked for without echo.

When the flag is absent, ``IMGMIRROR_SRC_CREDS`` / ``IMGMIRROR_DEST_CREDS`` are read (same
forms). Two ``-`` flags read two lines, in the order the flags were given. A value that does
not parse is a usage error (exit 2) whose message never contains the password.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from typing import Any, TextIO

import typer

from imgmirror.auth.credentials import Credential
from imgmirror.errors import CredentialsError

__all__ = ["DEST_ENV", "SRC_ENV", "credentials_callback", "creds_option", "read_credentials"]

SRC_ENV = "IMGMIRROR_SRC_CREDS"
DEST_ENV = "IMGMIRROR_DEST_CREDS"
_STDIN = "-"


def _next_line(stdin: TextIO, flag: str, what: str) -> str:
    if stdin.isatty():
        return getpass.getpass(f"{what} for {flag}: ")
    line = stdin.readline()
    if not line:
        raise CredentialsError(
            f"{flag} {_STDIN if what == 'USER:PASS' else 'USER:-'} expects {what} on stdin, "
            "but stdin is empty",
            hint=f"pipe it in, e.g. printf '%s\\n' \"$SECRET\" | imgmirror ... {flag} -",
        )
    return line.rstrip("\r\n")


def read_credentials(value: str, flag: str, stdin: TextIO | None = None) -> Credential:
    """Parse a credentials flag value, reading stdin for ``-`` and ``USER:-``.

    Raises:
        CredentialsError: the value (or the line read) is not ``USER:PASS``; the message
            names ``flag`` and never the password.
    """
    stream = sys.stdin if stdin is None else stdin
    if value == _STDIN:
        value = _next_line(stream, flag, "USER:PASS")
    elif value.endswith(":" + _STDIN) and value.count(":") == 1:
        user = value[: -len(_STDIN) - 1]
        value = f"{user}:{_next_line(stream, flag, 'the password')}"
    try:
        return Credential.parse(value)
    except CredentialsError as exc:
        raise CredentialsError(
            f"{flag}: {exc.message}",
            hint=f"give {flag} USER:PASS, {flag} - (USER:PASS on stdin) or {flag} USER:- "
            "(the password on stdin)",
        ) from None


def credentials_callback(flag: str) -> Callable[[str | None], Credential | None]:
    """A typer option callback turning the flag (or its environment variable) into a
    [Credential][], reporting a bad value as one line and exit status 2."""

    def convert(value: str | None) -> Credential | None:
        if value is None or value == "":
            return None
        try:
            return read_credentials(value, flag)
        except CredentialsError as exc:
            typer.echo(f"imgmirror: error: {exc}", err=True)
            raise typer.Exit(2) from None

    return convert


def creds_option(*names: str, env: str, who: str) -> Any:
    """The ``typer.Option`` of a credentials flag: ``USER:PASS``, ``-``, ``USER:-`` or ``env``."""
    return typer.Option(
        *names,
        metavar="USER:PASS",
        envvar=env,
        callback=credentials_callback(names[0]),
        help=f"Credentials for {who}; - reads USER:PASS from stdin, USER:- the password alone.",
    )
