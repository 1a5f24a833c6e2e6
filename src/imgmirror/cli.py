"""The ``imgmirror`` command line: parse options, call the library, print the outcome.

No protocol logic lives here. Library errors become one line on stderr and exit status 1
(``--debug`` adds the traceback); usage errors exit 2; ``--json`` makes the last line of stdout
one JSON object for scripts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import traceback
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from ._version import __version__
from .copy import copy
from .errors import ImgmirrorError
from .save import load_commands, save
from .terminal import TerminalProgress, human_bytes
from .transport.tls import DEFAULT_CERTS_DIRS, ClientOptions

__all__ = ["app", "main"]

app = typer.Typer(
    name="imgmirror",
    help=(
        "Copy container images between registries and into docker-loadable archives, "
        "without a Docker daemon."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_state: dict[str, bool] = {"debug": False}


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
        bool, typer.Option("--debug", help="Log requests and show tracebacks on errors.")
    ] = False,
) -> None:
    _state["debug"] = debug
    if debug:
        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")
        logging.getLogger("httpx").setLevel(logging.WARNING)
        logging.getLogger("httpcore").setLevel(logging.WARNING)


@contextlib.contextmanager
def reported_errors() -> Iterator[None]:
    """Turn library errors into a one-line message and exit status 1."""
    try:
        yield
    except ImgmirrorError as exc:
        if _state["debug"]:
            traceback.print_exc()
        typer.echo(f"imgmirror: error: {exc}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        typer.echo("imgmirror: interrupted", err=True)
        raise typer.Exit(130) from None


def progress_for(quiet: bool, as_json: bool) -> TerminalProgress | None:
    """A terminal renderer when a person is watching, else None."""
    if quiet or as_json or not sys.stderr.isatty():
        return None
    return TerminalProgress(sys.stderr)


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
    str | None,
    typer.Option("--src-creds", metavar="USER:PASS", help="Credentials for the source registry."),
]
DestCredsOpt = Annotated[
    str | None,
    typer.Option(
        "--dest-creds", metavar="USER:PASS", help="Credentials for the destination registry."
    ),
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


def make_options(
    ca_file: str | None = None,
    certs_dirs: list[str] | None = None,
    insecure: list[str] | None = None,
) -> ClientOptions:
    """Connection settings from the shared TLS options."""
    return ClientOptions(
        user_agent=f"imgmirror/{__version__}",
        ca_file=ca_file,
        certs_dirs=(*(certs_dirs or ()), *DEFAULT_CERTS_DIRS),
        insecure_registries=frozenset(insecure or ()),
    )


@app.command("copy")
def copy_command(
    source: Annotated[str, typer.Argument(help="Image to copy, e.g. registry.k8s.io/pause:3.9")],
    destination: Annotated[
        str, typer.Argument(help="Where to put it, e.g. registry.corp/mirror/pause:3.9")
    ],
    platform: PlatformOpt = None,
    src_creds: SrcCredsOpt = None,
    dest_creds: DestCredsOpt = None,
    jobs: JobsOpt = 4,
    authfile: AuthfileOpt = None,
    ca_file: CaFileOpt = None,
    certs_dir: CertsDirOpt = None,
    insecure_registry: InsecureOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Copy an image between registries; an index is copied whole, digests unchanged."""
    progress = progress_for(quiet, as_json)
    with reported_errors():
        try:
            result = copy(
                source,
                destination,
                platforms=platform,
                src_creds=src_creds,
                dest_creds=dest_creds,
                jobs=jobs,
                authfile=authfile,
                options=make_options(ca_file, certs_dir, insecure_registry),
                progress=progress,
            )
        finally:
            if progress is not None:
                progress.close()
    if as_json:
        emit_json(result.to_json())
        return
    if not quiet:
        typer.echo(
            f"copied {result.source} -> {result.destination}\n"
            f"  digest {result.digest}\n"
            f"  blobs: {result.blobs_copied} copied ({human_bytes(result.bytes_copied)}), "
            f"{result.blobs_skipped} already there, {result.blobs_mounted} mounted; "
            f"{result.manifests_pushed} manifest(s) pushed"
        )


SavePlatformOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--platform",
        metavar="OS/ARCH[/VARIANT]",
        help="Image to take from an index (repeatable: carry several). Default: this "
        "machine's platform; with --format oci, the whole index.",
    ),
]
FormatOpt = Annotated[
    str,
    typer.Option(
        "--format",
        metavar="docker|legacy|oci",
        help="docker: for docker load and ctr import (default); legacy: docker save of "
        "Docker 1.10-24 (uncompressed layer.tar); oci: OCI image layout.",
    ),
]


@app.command("save")
def save_command(
    images: Annotated[
        list[str],
        typer.Argument(
            metavar="IMAGE[=NAME]...",
            help="Images to save, e.g. registry.k8s.io/pause:3.9; =NAME saves it under "
            "another name.",
        ),
    ],
    output: Annotated[
        str,
        typer.Option(
            "--output", "-o", metavar="FILE", help="Archive to write (.gz/.zst: compressed)."
        ),
    ],
    platform: SavePlatformOpt = None,
    archive_format: FormatOpt = "docker",
    src_creds: SrcCredsOpt = None,
    jobs: JobsOpt = 4,
    authfile: AuthfileOpt = None,
    ca_file: CaFileOpt = None,
    certs_dir: CertsDirOpt = None,
    insecure_registry: InsecureOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Save images into one archive for docker load and ctr images import."""
    if archive_format not in ("docker", "legacy", "oci"):
        raise typer.BadParameter("use docker, legacy or oci", param_hint="--format")
    progress = progress_for(quiet, as_json)
    with reported_errors():
        try:
            result = save(
                images,
                output,
                platform=platform,
                format=archive_format,  # type: ignore[arg-type]
                src_creds=src_creds,
                jobs=jobs,
                authfile=authfile,
                options=make_options(ca_file, certs_dir, insecure_registry),
                progress=progress,
            )
        finally:
            if progress is not None:
                progress.close()
    commands = load_commands(result)
    for image in result.images:
        if image.renamed_from_digest:
            typer.echo(
                f"imgmirror: note: {image.source} has no tag; saved as {image.name}", err=True
            )
    if as_json:
        emit_json({**result.to_json(), "load_commands": commands})
        return
    if quiet:
        return
    count = len(result.images)
    typer.echo(
        f"saved {count} image{'s' if count != 1 else ''} to {result.path} "
        f"({result.format} format, {human_bytes(result.bytes)})"
    )
    for image in result.images:
        platforms = ", ".join(image.platforms) or "-"
        typer.echo(f"  {image.source} -> {image.name} [{platforms}] {image.digest}")
    typer.echo("load it with:")
    for command in commands:
        typer.echo(f"  {command}")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
