"""What every ``imgmirror`` command shares: the app, error reporting, output and options.

Library errors become one line on stderr and exit status 1 (``--debug`` adds the traceback);
usage errors exit 2; an image the verification policy refused exits 3 ([REFUSED][]);
``--json`` makes the last line of stdout one JSON object for scripts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import traceback
from collections.abc import Iterator
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from imgmirror._version import __version__
from imgmirror.cli.creds import DEST_ENV, SRC_ENV, creds_option
from imgmirror.cli.stopping import Terminated, stop_on_signals
from imgmirror.cli.terminal import LogProgress, TerminalProgress
from imgmirror.errors import (
    AuthenticationError,
    ImgmirrorError,
    PolicyRefused,
    TLSVerificationError,
    credentials_hint,
)
from imgmirror.transport.options import ClientOptions, connection_options

__all__ = [
    "DEFAULT_TIMEOUT",
    "REFUSED",
    "ROLE_OPTIONS",
    "SETTING_OPTIONS",
    "AuthfileOpt",
    "CaFileOpt",
    "CertsDirOpt",
    "DestCredsOpt",
    "InsecureOpt",
    "JobsOpt",
    "JsonOpt",
    "PlatformOpt",
    "QuietOpt",
    "SrcCredsOpt",
    "Terminated",
    "TimeoutOpt",
    "app",
    "emit_json",
    "make_options",
    "reported_errors",
    "running",
]


class _Commands(TyperGroup):
    """The command group: every command runs under [reported_errors][], the imports it
    makes when it starts included, so a signal or an error there ends it as anywhere else
    (typer alone turns Ctrl-C into a silent exit 130)."""

    def invoke(self, ctx: Any) -> Any:  # typer's own (vendored) click.Context
        with reported_errors():
            return super().invoke(ctx)


app = typer.Typer(
    cls=_Commands,
    name="imgmirror",
    help=(
        "Copy container images between registries and into docker-loadable archives, "
        "without a Docker daemon."
    ),
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_state: dict[str, bool] = {"debug": False}
#: Exit status when a verification policy refused an image (a transfer failure exits 1).
REFUSED = 3


def _version(value: bool) -> None:
    if value:
        typer.echo(f"imgmirror {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            help="Log requests and show tracebacks on errors (also accepted after the command).",
        ),
    ] = False,
) -> None:
    _state["debug"] = debug
    if debug:
        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")
        logging.getLogger("httpx").setLevel(logging.WARNING)
        logging.getLogger("httpcore").setLevel(logging.WARNING)
    else:
        _warnings_as_lines()


def _warnings_as_lines() -> None:
    """The library's warnings (a registry rate limiting, a referrer left behind) as
    ``imgmirror: warning: ...`` lines on stderr."""
    logger = logging.getLogger("imgmirror")
    if not any(getattr(h, "_imgmirror_cli", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("imgmirror: warning: %(message)s"))
        handler._imgmirror_cli = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)


#: The option that gives credentials for each side of an operation (errors carry the side).
ROLE_OPTIONS = {"source": "--src-creds", "destination": "--dest-creds", "registry": "--creds"}
#: The option for each library parameter the hint of an error with a ``setting`` may name.
SETTING_OPTIONS = {
    "authfile": "--authfile",
    "client_cert": "--client-cert",
    "client_key": "--client-key",
    "creds": "--creds",
    "dest_creds": "--dest-creds",
    "mirrors": "--mirror",
    "platforms": "--platform",
    "src_creds": "--src-creds",
    "timeout": "--timeout",
}
_SETTING_WORDS = re.compile(r"\b(" + "|".join(SETTING_OPTIONS) + r")\b")


def _for_the_cli(exc: ImgmirrorError) -> ImgmirrorError:
    """Name the CLI options in a hint (the library names roles and settings, never options)."""
    if exc.setting in SETTING_OPTIONS and exc.hint:  # the parameters it names become options
        exc.hint = _SETTING_WORDS.sub(lambda found: SETTING_OPTIONS[found[1]], exc.hint)
    option = ROLE_OPTIONS.get(exc.role or "")
    if option and isinstance(exc, AuthenticationError) and exc.host:
        exc.hint = credentials_hint(exc.host, exc.username, option=option)
    elif isinstance(exc, TLSVerificationError) and exc.certs_dir:
        if exc.kind == "untrusted":
            exc.hint = (
                f"put the registry's CA certificate in {exc.certs_dir}/ca.crt, "
                f"pass --ca-file FILE, or pass --insecure-registry {exc.host}"
            )
        elif exc.kind == "client-certificate":
            exc.hint = (
                f"put the client certificate and key in {exc.certs_dir}/client.cert and "
                f"{exc.certs_dir}/client.key (or in DIR/{exc.host}/ with --certs-dir DIR)"
            )
    return exc


@contextlib.contextmanager
def reported_errors() -> Iterator[None]:
    """Turn library errors into a one-line message and exit status 1 (3: refused by the
    verification policy); SIGINT, SIGTERM and SIGHUP stop the command at once, nothing
    half-written ([.stopping][imgmirror.cli.stopping]; exit 130, 143, 129)."""
    try:
        with stop_on_signals():
            yield
    except ImgmirrorError as exc:
        if _state["debug"]:
            traceback.print_exc()
        typer.echo(f"imgmirror: error: {_for_the_cli(exc)}", err=True)
        raise typer.Exit(REFUSED if isinstance(exc, PolicyRefused) else 1) from None
    except KeyboardInterrupt as exc:
        code = exc.exit_code if isinstance(exc, Terminated) else 130
        what = exc.what if isinstance(exc, Terminated) else "interrupted"
        typer.echo(f"imgmirror: {what}", err=True)
        raise typer.Exit(code) from None


@contextlib.contextmanager
def running(quiet: bool, as_json: bool) -> Iterator[TerminalProgress | LogProgress | None]:
    """Run a transfer with its errors reported, and progress on stderr: a live display on a
    terminal, a plain line every few seconds otherwise; none with --quiet or --json.
    SIGINT/SIGTERM/SIGHUP stop it at once (exit 130/143/129, see
    [.stopping][imgmirror.cli.stopping])."""
    progress: TerminalProgress | LogProgress | None = None
    if not (quiet or as_json):
        progress = TerminalProgress() if sys.stderr.isatty() else LogProgress()
    with reported_errors():
        try:
            yield progress
        except BaseException:
            if progress is not None:
                progress.close(interrupted=True)
                progress = None
            raise
        finally:
            if progress is not None:
                progress.close()


def emit_json(payload: dict[str, Any]) -> None:
    """Print the machine-readable result as the last line of stdout."""
    typer.echo(json.dumps(payload, sort_keys=True))


PlatformOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--platform",
        metavar="OS/ARCH[/VARIANT]",
        help="Copy only this platform from an index (repeatable). Default: everything.",
    ),
]
SrcCredsOpt = Annotated[
    str | None, creds_option("--src-creds", env=SRC_ENV, who="the source registry")
]
DestCredsOpt = Annotated[
    str | None, creds_option("--dest-creds", env=DEST_ENV, who="the destination registry")
]
JobsOpt = Annotated[
    int, typer.Option("--jobs", "-j", min=1, max=64, help="Blobs transferred at once.")
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print the result as one JSON object on the last line.")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")]
AuthfileOpt = Annotated[
    str | None,
    typer.Option(
        "--authfile",
        metavar="PATH",
        help="Credentials file: docker config.json, podman auth.json, .dockercfg or a "
        "Kubernetes pull Secret (YAML/JSON).",
    ),
]
CaFileOpt = Annotated[
    str | None,
    typer.Option("--ca-file", metavar="FILE", help="Extra CA bundle (PEM) trusted for registries."),
]
CertsDirOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--certs-dir",
        metavar="DIR",
        help="docker-style certs.d: DIR/<host[:port]>/*.crt, client.cert, client.key "
        "(repeatable; /etc/docker/certs.d and /etc/containers/certs.d are always read).",
    ),
]
InsecureOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--insecure-registry",
        metavar="HOST[:PORT]",
        help="Reach this registry over plain HTTP or unverified HTTPS (repeatable).",
    ),
]


#: Seconds a transfer may stall (``ClientOptions.timeout``) unless --timeout says otherwise.
DEFAULT_TIMEOUT = 30.0
TimeoutOpt = Annotated[
    float,
    typer.Option(
        "--timeout",
        metavar="SECONDS",
        min=0.1,
        help="Fail when a registry, for this many seconds of waiting on it, sends no reply or "
        "moves under 1 KiB/s: reply heads included, a blob's resumes counted together, never "
        "retried (docs/reliability.md). Connecting may take at most 5 s of it.",
    ),
]


def make_options(
    ca_file: str | None = None,
    certs_dirs: list[str] | None = None,
    insecure: list[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> ClientOptions:
    """Connection settings from the shared TLS and timeout options."""
    return connection_options(
        timeout=timeout, ca_file=ca_file, certs_dirs=certs_dirs, insecure_registries=insecure
    )
