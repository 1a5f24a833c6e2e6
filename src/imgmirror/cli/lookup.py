"""``imgmirror ls``, ``digest``, ``inspect`` and ``catalog``: look without copying."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from imgmirror.cli.common import (
    AuthfileOpt,
    CaFileOpt,
    CertsDirOpt,
    InsecureOpt,
    JsonOpt,
    app,
    emit_json,
    make_options,
    reported_errors,
)
from imgmirror.cli.creds import SRC_ENV, creds_option
from imgmirror.cli.referrer_tree import render_listing
from imgmirror.cli.terminal import human_bytes, untrusted
from imgmirror.model.inspection import Entry, ImageInfo

if TYPE_CHECKING:
    from imgmirror.referrers.discover import ReferrerListing

__all__ = ["catalog_command", "digest_command", "inspect_command", "ls_command"]

CredsOpt = Annotated[
    str | None, creds_option("--creds", "--src-creds", env=SRC_ENV, who="the registry")
]
InspectReferrersOpt = Annotated[
    str | None,
    typer.Option(
        "--referrers",
        metavar="[TYPE,...]",
        help="Also list what refers to the image and each manifest of its index (signatures, "
        "SBOMs, attestations) as a tree: artifact type, digest, size, annotations. Alone: all; "
        "or sig, att, sbom or media types, comma-separated.",
    ),
]
PageSizeOpt = Annotated[
    int,
    typer.Option("--page-size", min=1, help="Entries asked for per request (Link pagination)."),
]


@app.command("ls")
def ls_command(
    repository: Annotated[
        str, typer.Argument(metavar="REPO", help="A repository, e.g. registry.corp/k8s/pause.")
    ],
    page_size: PageSizeOpt = 1000,
    creds: CredsOpt = None,
    authfile: AuthfileOpt = None,
    ca_file: CaFileOpt = None,
    certs_dir: CertsDirOpt = None,
    insecure_registry: InsecureOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the tags of a repository, one per line.

    \b
    Example:
      imgmirror ls registry.corp/k8s/pause
    """
    from imgmirror.api.lookup import list_tags  # noqa: PLC0415 - imported when the command runs

    with reported_errors():
        access = _access(creds, authfile, ca_file, certs_dir, insecure_registry)
        tags = list_tags(repository, page_size=page_size, **access)
    if as_json:
        emit_json({"repository": repository, "tags": tags})
        return
    for tag in tags:
        typer.echo(untrusted(tag))


@app.command("catalog")
def catalog_command(
    registry: Annotated[str, typer.Argument(metavar="REGISTRY", help="e.g. registry.corp:5000")],
    page_size: PageSizeOpt = 1000,
    creds: CredsOpt = None,
    authfile: AuthfileOpt = None,
    ca_file: CaFileOpt = None,
    certs_dir: CertsDirOpt = None,
    insecure_registry: InsecureOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the repositories of a registry (where it allows /v2/_catalog), one per line.

    \b
    Example:
      imgmirror catalog registry.corp:5000
    """
    from imgmirror.api.lookup import list_repositories  # noqa: PLC0415 - imported when the command runs

    with reported_errors():
        access = _access(creds, authfile, ca_file, certs_dir, insecure_registry)
        repositories = list_repositories(registry, page_size=page_size, **access)
    if as_json:
        emit_json({"registry": registry, "repositories": repositories})
        return
    for repository in repositories:
        typer.echo(untrusted(repository))


@app.command("digest")
def digest_command(
    image: Annotated[
        str, typer.Argument(metavar="IMAGE|ARCHIVE", help="An image reference or an archive.")
    ],
    creds: CredsOpt = None,
    authfile: AuthfileOpt = None,
    ca_file: CaFileOpt = None,
    certs_dir: CertsDirOpt = None,
    insecure_registry: InsecureOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the digest IMAGE resolves to (one HEAD request; exit 1 if it does not exist).

    For an archive: each image's digest and names, one image per line.

    \b
    Example:
      imgmirror digest registry.k8s.io/pause:3.9
    """
    from imgmirror.api.lookup import image_digest  # noqa: PLC0415
    from imgmirror.ops.lookup import inspect_archive, is_archive_path  # noqa: PLC0415

    if is_archive_path(image):
        with reported_errors():
            infos = inspect_archive(image)
        if as_json:
            emit_json({"archive": image, "images": [_short(i) for i in infos]})
            return
        for info in infos:
            typer.echo(untrusted(f"{info.digest} {info.name}"))
        return
    with reported_errors():
        found = image_digest(
            image, **_access(creds, authfile, ca_file, certs_dir, insecure_registry)
        )
    if as_json:
        emit_json(
            {
                "reference": image,
                "digest": str(found.digest),
                "media_type": found.media_type,
                "size": found.size,
            }
        )
        return
    typer.echo(str(found.digest))


def _access(
    creds: str | None,
    authfile: str | None,
    ca_file: str | None,
    certs_dir: list[str] | None,
    insecure_registry: list[str] | None,
) -> dict[str, Any]:
    """The credential and connection arguments every look-up takes, as ``copy`` builds them."""
    return {
        "creds": creds,
        "authfile": authfile,
        "options": make_options(ca_file, certs_dir, insecure_registry),
    }


def _inspect_archive(path: str, referrers: str | None, *, as_json: bool) -> None:
    """``inspect ARCHIVE``: each image, with the referrers the archive stores if asked."""
    from imgmirror.ops.lookup import inspect_archive  # noqa: PLC0415
    from imgmirror.referrers.archive import archive_referrers  # noqa: PLC0415 - imported when asked for

    with reported_errors():
        infos = inspect_archive(path)
        listings = archive_referrers(path, referrers) if referrers else None
    if as_json:
        images = [i.to_json() for i in infos]
        for shown, listing in zip(images, listings or (), strict=False):
            shown["referrers"] = listing.to_json()["subjects"]
        emit_json({"archive": path, "images": images})
        return
    typer.echo(untrusted(f"{path}: {len(infos)} image{'s' if len(infos) != 1 else ''}"))
    for i, info in enumerate(infos):
        lines = render(info)
        if listings is not None:
            lines += ["  referrers:", *render_listing(listings[i], "  ")]
        typer.echo(untrusted("\n".join(lines)))


def _referrers(image: str, types: str, access: dict[str, Any]) -> ReferrerListing:
    from imgmirror.api.referrers import find_referrers  # noqa: PLC0415 - imported when asked for

    return find_referrers(
        image,
        types=types,
        src_creds=access["creds"],
        authfile=access["authfile"],
        options=access["options"],
    )


def _show_with_referrers(info: ImageInfo, listing: ReferrerListing, *, as_json: bool) -> None:
    if as_json:
        emit_json({**info.to_json(), "referrers": listing.to_json()["subjects"]})
        return
    lines = [*render(info), "  referrers:", *render_listing(listing, "  ")]
    typer.echo(untrusted("\n".join(lines)))


def _short(info: ImageInfo) -> dict[str, object]:
    return {"name": info.name, "digest": info.digest, "media_type": info.media_type}


def _size(entry: Entry) -> str:
    return human_bytes(entry.size) if entry.size >= 0 else "size unknown"


def render(info: ImageInfo) -> list[str]:
    """The human-readable lines of ``inspect``."""
    lines = [
        info.name,
        f"  media type  {info.media_type}",
        f"  digest      {info.digest}",
        f"  size        {info.size} bytes",
    ]
    if info.manifests:
        lines.append(f"  manifests ({len(info.manifests)}):")
        width = max(len(e.platform or "-") for e in info.manifests)
        lines += [
            f"    {(e.platform or '-'):<{width}}  {e.digest}  {_size(e)}" for e in info.manifests
        ]
    for label, value in (
        ("platform", info.platform),
        ("created", info.created),
        ("entrypoint", json.dumps(list(info.entrypoint)) if info.entrypoint else None),
        ("cmd", json.dumps(list(info.cmd)) if info.cmd else None),
    ):
        if value:
            lines.append(f"  {label:<11} {value}")
    if info.config is not None:
        lines.append(f"  config      {info.config.digest}  {_size(info.config)}")
    if info.layers:
        total = sum(e.size for e in info.layers if e.size >= 0)
        lines.append(f"  layers ({len(info.layers)}, {human_bytes(total)}):")
        lines += [f"    {e.digest}  {_size(e)}" for e in info.layers]
    lines += [f"  could not read: {problem}" for problem in info.problems]
    return lines


INSPECT_HELP = """Show what IMAGE is: media type, digest, size; for an index, its platforms \
and their digests; for an image, its layers with sizes and, from its config, the platform, \
creation time, entrypoint and cmd.

IMAGE may be an archive (imgmirror save, docker save, skopeo, ctr export): every image it \
holds is shown with its names and digests. --referrers adds the tree of what refers to the \
image (signatures, SBOMs, attestations): at the registry, or as stored by save --referrers. \
Manifests imgmirror cannot parse (Docker schema 1, \
unknown media types) are shown as far as they can be read, with what could not be.

\b
Example:
  imgmirror inspect registry.k8s.io/pause:3.9
"""


@app.command("inspect", help=INSPECT_HELP)
def inspect_command(
    image: Annotated[
        str, typer.Argument(metavar="IMAGE|ARCHIVE", help="An image reference or an archive.")
    ],
    raw: Annotated[
        bool, typer.Option("--raw", help="Print the manifest exactly as the registry sent it.")
    ] = False,
    config: Annotated[
        bool, typer.Option("--config", help="Print the image config exactly as stored.")
    ] = False,
    platform: Annotated[
        str | None,
        typer.Option(
            "--platform", metavar="OS/ARCH[/VARIANT]", help="For an index: show this image."
        ),
    ] = None,
    creds: CredsOpt = None,
    authfile: AuthfileOpt = None,
    ca_file: CaFileOpt = None,
    certs_dir: CertsDirOpt = None,
    insecure_registry: InsecureOpt = None,
    as_json: JsonOpt = False,
    referrers: InspectReferrersOpt = None,
) -> None:
    from imgmirror.api.lookup import inspect  # noqa: PLC0415
    from imgmirror.ops.lookup import is_archive_path  # noqa: PLC0415

    if is_archive_path(image):
        if raw or config or platform:
            typer.echo("imgmirror: error: --raw, --config and --platform need an image", err=True)
            raise typer.Exit(2)
        _inspect_archive(image, referrers, as_json=as_json)
        return
    with reported_errors():
        access = _access(creds, authfile, ca_file, certs_dir, insecure_registry)
        found = inspect(image, platform=platform, **access)
        listing = _referrers(image, referrers, access) if referrers else None
    if listing is not None and not (raw or config):
        _show_with_referrers(found.info, listing, as_json=as_json)
    elif raw:
        sys.stdout.buffer.write(found.raw)
        sys.stdout.buffer.flush()
    elif config:
        if found.config is None:
            typer.echo(
                untrusted(
                    f"imgmirror: error: {found.info.name} has no image config "
                    f"({found.info.media_type}); pick an image with --platform"
                ),
                err=True,
            )
            raise typer.Exit(1)
        sys.stdout.buffer.write(found.config)
        sys.stdout.buffer.flush()
    elif as_json:
        emit_json(found.info.to_json())
    else:
        typer.echo(untrusted("\n".join(render(found.info))))
