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
from pathlib import Path
from typing import Annotated, Any

import typer

from ._version import __version__
from .copy import copy
from .credentials import Credential
from .errors import ImgmirrorError
from .keychain import try_credentials
from .pullsecret import check_text, create_secret, parse_authfile, render
from .push import push
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


PUSH_HELP = """Push the images of an archive to a registry.

FILE is a tarball from docker save (any version), skopeo (docker-archive, oci-archive), \
crane, ctr images export or imgmirror save; plain, .gz or .zst. It is read in place, never \
unpacked to disk, and checked completely before anything is tagged.

How names map (an image's name comes from the archive: RepoTags, repositories or \
io.containerd.image.name):

\b
  no DEST                 each image goes to the name it carries
  DEST with a tag         exactly there; only for a one-image archive
                          (reg.corp/mirror/pause:3.9)
  DEST without a tag      a registry, or registry/prefix; each image keeps
                          its repository path and tag under it:
                          reg.corp/mirror + gcr.io/google_containers/pause:3.9
                            -> reg.corp/mirror/google_containers/pause:3.9
                          reg.corp/mirror + alpine:3.19 (Docker Hub)
                            -> reg.corp/mirror/library/alpine:3.19
                          an image without a name goes to DEST:latest

Archives that keep the registry's manifests (OCI layouts, imgmirror save) are pushed byte \
for byte: same digests. Older docker save archives hold none: a Docker manifest is built \
(layers gzipped on the fly, config unchanged, so the image ID stays the same).
"""


@app.command("push", help=PUSH_HELP)
def push_command(
    archive: Annotated[str, typer.Argument(metavar="FILE", help="The archive to push.")],
    destination: Annotated[
        str | None,
        typer.Argument(
            metavar="DEST",
            help="A registry, registry/prefix or registry/repo:tag (see above). Default: the "
            "names in the archive.",
        ),
    ] = None,
    dest_creds: DestCredsOpt = None,
    jobs: JobsOpt = 4,
    authfile: AuthfileOpt = None,
    ca_file: CaFileOpt = None,
    certs_dir: CertsDirOpt = None,
    insecure_registry: InsecureOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    progress = progress_for(quiet, as_json)
    with reported_errors():
        try:
            result = push(
                archive,
                destination,
                dest_creds=dest_creds,
                jobs=jobs,
                authfile=authfile,
                options=make_options(ca_file, certs_dir, insecure_registry),
                progress=progress,
            )
        finally:
            if progress is not None:
                progress.close()
    for note in result.notes:
        typer.echo(f"imgmirror: note: {note}", err=True)
    if as_json:
        emit_json(result.to_json())
        return
    if quiet:
        return
    for name, digest in result.images:
        typer.echo(f"pushed {name}\n  digest {digest}")
    typer.echo(
        f"  blobs: {result.blobs_uploaded} uploaded ({human_bytes(result.bytes)}), "
        f"{result.blobs_skipped} already there, {result.blobs_mounted} mounted"
    )


# -- imgmirror secret: Kubernetes image pull secrets ----------------------------------------

secret_app = typer.Typer(
    name="secret",
    help="Create and check Kubernetes image pull Secrets (kubernetes.io/dockerconfigjson).",
    no_args_is_help=True,
)
app.add_typer(secret_app, name="secret")


def _read_creds(value: str) -> Credential:
    """``USER:PASS``, or ``-`` to read ``USER:PASS`` from the first line of stdin."""
    if value == "-":
        value = sys.stdin.readline().rstrip("\r\n")
    return Credential.parse(value)


@secret_app.command("create")
def secret_create_command(
    name: Annotated[str, typer.Argument(help="Name of the Secret.")],
    registry: Annotated[
        str, typer.Option("--registry", metavar="HOST[:PORT]", help="Registry the Secret is for.")
    ],
    creds: Annotated[
        str,
        typer.Option(
            "--creds", metavar="USER:PASS", help="Credentials (- reads USER:PASS from stdin)."
        ),
    ],
    namespace: Annotated[
        str | None, typer.Option("--namespace", "-n", metavar="NS", help="Namespace.")
    ] = None,
    email: Annotated[str | None, typer.Option("--email", help="Legacy email field.")] = None,
    output: Annotated[
        str, typer.Option("--output", "-o", metavar="yaml|json", help="Output format.")
    ] = "yaml",
) -> None:
    """Print the Secret kubectl create secret docker-registry would create."""
    if output not in ("yaml", "json"):
        typer.echo("imgmirror: error: --output must be yaml or json", err=True)
        raise typer.Exit(2)
    with reported_errors():
        doc = create_secret(name, registry, _read_creds(creds), namespace=namespace, email=email)
    typer.echo(render(doc, output), nl=False)


@secret_app.command("check")
def secret_check_command(
    file: Annotated[
        str,
        typer.Argument(
            metavar="FILE", help="Secret as YAML/JSON (kubectl get secret -o yaml); - is stdin."
        ),
    ],
    registry: Annotated[
        str | None,
        typer.Option(
            "--registry",
            metavar="HOST[:PORT]",
            help="Check that an entry matches it, and log in to it with those credentials.",
        ),
    ] = None,
    repository: Annotated[
        str | None,
        typer.Option(
            "--repository", metavar="REPO", help="With --registry: also check pull access to REPO."
        ),
    ] = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="With --registry: only check the entry matches.")
    ] = False,
    ca_file: CaFileOpt = None,
    certs_dir: CertsDirOpt = None,
    insecure_registry: InsecureOpt = None,
) -> None:
    """Report every problem that would stop the kubelet from using a pull Secret, with its fix."""
    if file == "-":
        text, source = sys.stdin.read(), "stdin"
    else:
        try:
            text, source = Path(file).read_text(encoding="utf-8"), file
        except (OSError, UnicodeDecodeError) as exc:
            typer.echo(f"imgmirror: error: cannot read {file}: {exc}", err=True)
            raise typer.Exit(1) from None
    problems = check_text(text, source, registry)
    for problem in problems:
        typer.echo(f"{source}: {problem}")
    if problems:
        raise typer.Exit(1)
    if registry is None or offline:
        typer.echo(f"{source}: ok")
        return
    credential = parse_authfile(text, source).lookup(registry).credential
    who = f"user {credential.username!r}" if credential else "anonymous"
    try:
        try_credentials(
            registry,
            credential,
            repository=repository,
            options=make_options(ca_file, certs_dir, insecure_registry),
        )
    except ImgmirrorError as exc:
        typer.echo(f"{source}: credentials for {registry} ({who}) do not work: {exc}")
        raise typer.Exit(1) from None
    scope = f" and may pull {repository}" if repository else ""
    typer.echo(f"{source}: ok; {registry} accepts the credentials ({who}){scope}")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
