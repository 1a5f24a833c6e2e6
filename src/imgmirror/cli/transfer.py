"""``imgmirror copy``, ``save`` and ``push``: the transfer commands, each one library call.

Each command imports its operation when it runs, so a command pays only for what it uses.
"""

from __future__ import annotations

import itertools
import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from imgmirror.cli.common import (
    DEFAULT_TIMEOUT,
    AuthfileOpt,
    CaFileOpt,
    CertsDirOpt,
    DestCredsOpt,
    InsecureOpt,
    JobsOpt,
    JsonOpt,
    PlatformOpt,
    QuietOpt,
    SrcCredsOpt,
    TimeoutOpt,
    app,
    emit_json,
    make_options,
    running,
)
from imgmirror.cli.referrer_options import (
    PushReferrersOpt,
    ReferrersOpt,
    ReferrersOptionalOpt,
    SaveReferrersOpt,
    referrers_wanted,
)
from imgmirror.cli.terminal import human_bytes
from imgmirror.cli.verify_options import PolicyOpt, VerifyCacheOpt, VerifyKeyOpt, policy_of
from imgmirror.transport.options import ClientOptions

if TYPE_CHECKING:
    from imgmirror.ops.save import SaveResult
    from imgmirror.ops.saverequest import ImageArg

__all__ = ["copy_command", "push_command", "save_command"]


@app.command("copy")
def copy_command(
    source: Annotated[
        str,
        typer.Argument(
            metavar="SRC", help="Image to copy, e.g. registry.k8s.io/pause:3.9 (docker:// is fine)."
        ),
    ],
    destination: Annotated[
        str,
        typer.Argument(
            metavar="DST",
            help="Where to put it, e.g. registry.corp/mirror/pause:3.9 (without a tag, SRC's "
            "tag); ending in / it is a prefix: registry.corp/mirror/ + registry.k8s.io/pause:3.9 "
            "-> registry.corp/mirror/pause:3.9 (the source's path and tag kept, its host dropped).",
        ),
    ],
    platform: PlatformOpt = None,
    src_creds: SrcCredsOpt = None,
    dest_creds: DestCredsOpt = None,
    jobs: JobsOpt = 8,
    authfile: AuthfileOpt = None,
    ca_file: CaFileOpt = None,
    certs_dir: CertsDirOpt = None,
    insecure_registry: InsecureOpt = None,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    referrers: ReferrersOpt = None,
    referrers_optional: ReferrersOptionalOpt = False,
    verify_key: VerifyKeyOpt = None,
    policy: PolicyOpt = None,
    verify_cache: VerifyCacheOpt = None,
) -> None:
    """Copy the image SRC to DST; an index is copied whole, digests unchanged.

    --platform picks images from an index; asked of a single-platform image of another \
platform, it is an error that names the image's platform.

    \b
    Example:
      imgmirror copy registry.k8s.io/pause:3.9 reg.corp/mirror/pause:3.9 \\
          --dest-creds "$USER:$PASS" --platform linux/arm64
    """
    from imgmirror.api.copy import copy  # noqa: PLC0415 - imported when the command runs

    with running(quiet, as_json) as progress:
        result = copy(
            source,
            destination,
            platforms=platform,
            src_creds=src_creds,
            dest_creds=dest_creds,
            jobs=jobs,
            authfile=authfile,
            options=make_options(ca_file, certs_dir, insecure_registry, timeout),
            progress=progress,
            referrers=referrers_wanted(referrers, referrers_optional),
            referrers_optional=referrers_optional,
            verify=policy_of(verify_key, policy),
            verify_cache=verify_cache,
        )
    carried = result.referrers
    for failure in carried.failed if carried else ():
        typer.echo(f"imgmirror: warning: {failure}", err=True)
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
        if carried is not None:
            typer.echo(
                f"  referrers: {len(carried.copied)} copied, {len(carried.failed)} left behind"
            )
        if result.verification is not None:
            typer.echo(f"  {result.verification.summary()}")


SavePlatformOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--platform",
        metavar="OS/ARCH[/VARIANT]",
        help="Image to take from an index (repeatable: carry several), or all: the whole "
        "index. Default: this machine's platform; with --format oci or -f, the whole index "
        "(manifest.json names this machine's image).",
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
    output: Annotated[
        str,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Archive to write: .tar, or .gz/.zst compressed (.xz/.bz2 are refused). A "
            "regular file appears only when complete; a device or FIFO is written as a stream; "
            "- writes to stdout (not a terminal), and the summary then goes to stderr.",
        ),
    ],
    images: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="IMAGE[=NAME]...",
            help="Images to save, e.g. registry.k8s.io/pause:3.9; =NAME saves it under "
            "another name.",
        ),
    ] = None,
    sync_file: Annotated[
        str | None,
        typer.Option(
            "--file",
            "-f",
            metavar="SYNC_FILE",
            help="Also save every image this sync file selects (docs/sync.md), under its "
            "source name, with its entry's platforms (default: every platform) unless "
            "--platform is given.",
        ),
    ] = None,
    from_mirror: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="MIRROR",
            help="With -f: read the images from this mirror prefix, where sync FILE --to "
            "MIRROR put them (tags listed there), still naming them as the file does; "
            "--src-creds are the mirror's.",
        ),
    ] = None,
    platform: SavePlatformOpt = None,
    archive_format: FormatOpt = "docker",
    src_creds: SrcCredsOpt = None,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            max=64,
            help="Manifests and blobs fetched at once (a compressed or streamed archive: "
            "fetched ahead into bounded buffers, written in order).",
        ),
    ] = 8,
    authfile: AuthfileOpt = None,
    ca_file: CaFileOpt = None,
    certs_dir: CertsDirOpt = None,
    insecure_registry: InsecureOpt = None,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    referrers: SaveReferrersOpt = None,
    referrers_optional: ReferrersOptionalOpt = False,
    verify_key: VerifyKeyOpt = None,
    policy: PolicyOpt = None,
    verify_cache: VerifyCacheOpt = None,
) -> None:
    """Save images into one archive FILE for docker load and ctr images import.

    \b
    Example:
      imgmirror save registry.k8s.io/pause:3.9 -o pause.tar
      imgmirror save alpine:3.19=reg.corp/alpine:3.19 -o alpine.tar.zst
    """
    from imgmirror.api.save import save  # noqa: PLC0415 - imported when the command runs
    from imgmirror.ops.save import load_commands  # noqa: PLC0415 - imported when the command runs

    if archive_format not in ("docker", "legacy", "oci"):
        raise typer.BadParameter("use docker, legacy or oci", param_hint="--format")
    if not images and sync_file is None:
        raise typer.BadParameter("name IMAGEs to save, or a sync file with -f")
    if from_mirror is not None and sync_file is None:
        raise typer.BadParameter("--from goes with -f SYNC_FILE", param_hint="--from")
    options = make_options(ca_file, certs_dir, insecure_registry, timeout)
    wanted: list[ImageArg] = list(images or ())
    with running(quiet, as_json) as progress:
        if sync_file is not None:
            every = archive_format != "legacy"
            wanted += _from_sync_file(
                sync_file, platform, from_mirror, every, src_creds, authfile, options
            )
        result = save(
            wanted,
            output,
            platforms=platform,
            format=archive_format,  # type: ignore[arg-type]
            src_creds=src_creds,
            jobs=jobs,
            authfile=authfile,
            options=options,
            progress=progress,
            referrers=referrers_wanted(referrers, referrers_optional),
            referrers_optional=referrers_optional,
            verify=policy_of(verify_key, policy),
            verify_cache=verify_cache,
        )
    for failure in result.referrers_failed:
        typer.echo(f"imgmirror: warning: {failure}", err=True)
    commands = load_commands(result)
    for image in result.images:
        if image.renamed_from_digest:
            typer.echo(
                f"imgmirror: note: {image.source} has no tag; saved as {image.name}", err=True
            )
    to_stderr = output in ("-", "/dev/stdout", "/dev/fd/1")  # stdout carries the archive
    if as_json:
        payload = {**result.to_json(), "load_commands": commands}
        typer.echo(json.dumps(payload, sort_keys=True), err=to_stderr)
        return
    if not quiet:
        _print_saved(result, commands, to_stderr)


def _creds_read_stdin(argv: list[str]) -> bool:
    """Whether ``--dest-creds`` was given as ``-`` or ``USER:-`` (read from stdin)."""
    values = [b for a, b in itertools.pairwise(argv) if a == "--dest-creds"]
    values += [a.partition("=")[2] for a in argv if a.startswith("--dest-creds=")]
    return any(v == "-" or (v.endswith(":-") and v.count(":") == 1) for v in values)


def _print_saved(result: SaveResult, commands: list[str], err: bool) -> None:
    count = len(result.images)
    lines = [
        f"saved {count} image{'s' if count != 1 else ''} to {result.path} "
        f"({result.format} format, {human_bytes(result.bytes)})"
    ]
    for image in result.images:
        platforms = ", ".join(image.platforms) or "-"
        lines.append(f"  {image.source} -> {image.name} [{platforms}] {image.digest}")
    for image, decision in zip(result.images, result.verification, strict=False):
        found = [*decision["signatures"], *decision["attestations"]]
        signers = ", ".join(dict.fromkeys(str(v["by"]) for v in found))
        lines.append(f"  {image.source}: verified by {signers}")
    if result.referrers or result.referrers_failed:
        lines.append(
            f"  referrers: {len(result.referrers)} saved, "
            f"{len(result.referrers_failed)} left behind"
        )
    if commands:
        lines += ["load it with:", *(f"  {command}" for command in commands)]
    typer.echo("\n".join(lines), err=err)


def _from_sync_file(
    path: str,
    platform: list[str] | None,
    mirror: str | None,
    every: bool,
    src_creds: str | None,
    authfile: str | None,
    options: ClientOptions,
) -> list[ImageArg]:
    """What a sync file selects, each image with its entry's platforms (every platform when
    it names none and ``every``) unless --platform is given (which then applies to every
    image); with ``mirror``, read where ``sync --to MIRROR`` put each (whole: the mirror
    holds what the entry selected) and named as the file names it."""
    from imgmirror.auth.credentials import Credential  # noqa: PLC0415
    from imgmirror.ops.saverequest import ALL_PLATFORMS, ImageRequest  # noqa: PLC0415
    from imgmirror.session import Session  # noqa: PLC0415
    from imgmirror.syncing.items import mirrored_images, selected_images  # noqa: PLC0415

    creds = Credential.coerce(src_creds, setting="src_creds")
    whole = ALL_PLATFORMS if every else None
    with Session(options, authfile=authfile) as session:
        if mirror is not None:
            items = mirrored_images(session, path, _prefix_option(mirror, "--from"), creds=creds)
            return [
                ImageRequest(str(i.destination), str(i.source), None if platform else whole)
                for i in items
            ]
        items = selected_images(session, path, src_creds=creds)
    return [
        ImageRequest(str(i.source), platforms=None if platform else (i.platforms or whole))
        for i in items
    ]


PUSH_HELP = """Push the images of an archive to a registry.

FILE is a tarball from docker save (any version), skopeo (docker-archive, oci-archive), \
crane, ctr images export or imgmirror save, plain, .gz or .zst; a directory holding an OCI \
image layout (skopeo oci:DIR, podman oci-dir) or a skopeo/podman dir: layout; or - (stdin, \
also /dev/stdin or a FIFO), spooled to a temporary file in $TMPDIR (at most 64 GiB). It is \
read in place, never unpacked to disk, and checked completely before anything is tagged. \
FILE:REF (or --image REF) pushes only the image REF names: a name, a tag or a digest.

How names map (an image's name comes from the archive: RepoTags, repositories or \
io.containerd.image.name):

\b
  no DEST                 each image goes to the name it carries
                          (--dest-creds then needs --to-archive-names)
  --to PREFIX             a registry or registry/path: as DEST without a tag,
                          always a prefix (the naming rule of sync)
  DEST with a tag         exactly there; only for a one-image archive
                          (reg.corp/mirror/pause:3.9)
  DEST without a tag      a registry, or registry/prefix; each image keeps
                          its repository path and tag under it:
                          reg.corp/mirror + gcr.io/google_containers/pause:3.9
                            -> reg.corp/mirror/google_containers/pause:3.9
                          reg.corp/mirror + alpine:3.19 (Docker Hub)
                            -> reg.corp/mirror/library/alpine:3.19
                          an image without a name goes to DEST:TAG, TAG
                          the bare tag its OCI layout gives it, else latest

Archives that keep the registry's manifests (OCI layouts, imgmirror save) are pushed byte \
for byte: same digests. Older docker save archives hold none: a Docker manifest is built \
(layers gzipped on the fly, config unchanged, so the image ID stays the same).

\b
Example:
  imgmirror push pause.tar reg.corp/mirror --dest-creds "$USER:$PASS"
"""


def _prefix_option(text: str, option: str = "--to") -> str:
    from imgmirror.errors import InvalidReference  # noqa: PLC0415
    from imgmirror.model.naming import Prefix  # noqa: PLC0415

    try:
        return str(Prefix.parse(text))
    except InvalidReference as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


@app.command("push", help=PUSH_HELP)
def push_command(
    archive: Annotated[
        str,
        typer.Argument(
            metavar="FILE[:REF]",
            help="The archive, layout directory or - (stdin) to push; :REF selects one image.",
        ),
    ],
    destination: Annotated[
        str | None,
        typer.Argument(
            metavar="DEST",
            help="A registry, registry/prefix or registry/repo:tag (see above). Default: the "
            "names in the archive.",
        ),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            metavar="PREFIX",
            help="Push every image under this prefix (registry or registry/path), as "
            "sync and copy SRC PREFIX/ name them.",
        ),
    ] = None,
    dest_creds: DestCredsOpt = None,
    to_archive_names: Annotated[
        bool,
        typer.Option(
            "--to-archive-names",
            help="With --dest-creds and no DEST: send the credentials to the registries the "
            "archive names (they are listed first). Without it that is refused.",
        ),
    ] = False,
    image: Annotated[
        str | None,
        typer.Option(
            "--image",
            metavar="REF",
            help="Push only this image of the archive: a name, a tag or a digest.",
        ),
    ] = None,
    platform: Annotated[
        list[str] | None,
        typer.Option(
            "--platform",
            metavar="OS/ARCH[/VARIANT]",
            help="Of an image that is an index, push only this platform (repeatable: a "
            "smaller index of several). Default: everything.",
        ),
    ] = None,
    jobs: JobsOpt = 4,
    authfile: AuthfileOpt = None,
    ca_file: CaFileOpt = None,
    certs_dir: CertsDirOpt = None,
    insecure_registry: InsecureOpt = None,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    referrers: PushReferrersOpt = None,
    referrers_optional: ReferrersOptionalOpt = False,
) -> None:
    from imgmirror.api.push import push  # noqa: PLC0415 - imported when run
    from imgmirror.ops.push import ArchiveNamesNeedConsent  # noqa: PLC0415 - imported when run

    if archive.split(":", 1)[0] in ("-", "/dev/stdin") and _creds_read_stdin(sys.argv):
        raise typer.BadParameter(
            "the archive and --dest-creds cannot both come from stdin; give the credentials "
            "as IMGMIRROR_DEST_CREDS or --authfile",
            param_hint="FILE",
        )

    def consent(registries: tuple[str, ...]) -> bool:
        if to_archive_names:
            typer.echo(
                "imgmirror: note: sending --dest-creds to the registries the archive names: "
                + ", ".join(registries),
                err=True,
            )
        return to_archive_names

    if to is not None:
        if destination is not None:
            raise typer.BadParameter("give DEST or --to PREFIX, not both", param_hint="--to")
        destination = _prefix_option(to)

    with running(quiet, as_json) as progress:
        try:
            result = push(
                archive,
                destination,
                platforms=platform,
                dest_creds=dest_creds,
                jobs=jobs,
                authfile=authfile,
                options=make_options(ca_file, certs_dir, insecure_registry, timeout),
                progress=progress,
                to_archive_names=consent,
                image=image,
                referrers=referrers or True,
                referrers_optional=referrers_optional,
            )
        except ArchiveNamesNeedConsent as exc:
            exc.message = exc.message.replace("credentials were", "--dest-creds was")
            exc.hint = "give DEST, or add --to-archive-names to send --dest-creds to them"
            raise
    for note in result.notes:
        typer.echo(f"imgmirror: note: {note}", err=True)
    carried = result.referrers
    for failure in carried.failed if carried else ():
        typer.echo(f"imgmirror: warning: {failure}", err=True)
    if as_json:
        emit_json(result.to_json())
        return
    if quiet:
        return
    for pushed in result.images:
        if pushed.state == "unchanged":
            typer.echo(f"unchanged {pushed.name}\n  digest {pushed.digest}")
        elif pushed.state == "moved":
            typer.echo(f"moved {pushed.name}\n  digest {pushed.previous} -> {pushed.digest}")
        else:
            typer.echo(f"pushed {pushed.name}\n  digest {pushed.digest}")
    typer.echo(
        f"  blobs: {result.blobs_uploaded} uploaded ({human_bytes(result.bytes)}), "
        f"{result.blobs_skipped} already there, {result.blobs_mounted} mounted"
    )
    if carried is not None:
        typer.echo(f"  referrers: {len(carried.copied)} pushed, {len(carried.failed)} left behind")
