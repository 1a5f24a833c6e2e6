"""``imgmirror referrers IMAGE``: what refers to an image, as a tree."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ..terminal import human_bytes
from .common import (
    AuthfileOpt,
    CaFileOpt,
    CertsDirOpt,
    InsecureOpt,
    JsonOpt,
    SrcCredsOpt,
    app,
    emit_json,
    make_options,
    reported_errors,
)

if TYPE_CHECKING:
    from ..discovery import ReferrerListing
    from ..referrers import ReferrerNode

__all__ = ["referrers_command", "render_listing"]


def _line(node: ReferrerNode, prefix: str, last: bool) -> list[str]:
    referrer = node.referrer
    branch, below = ("└── ", "    ") if last else ("├── ", "│   ")
    tag = f"  (tag {referrer.tag})" if referrer.tag else ""
    lines = [
        f"{prefix}{branch}{referrer.artifact_type}  {referrer.digest}  "
        f"{human_bytes(referrer.descriptor.size)}{tag}"
    ]
    inner = prefix + below
    for key, value in sorted(referrer.descriptor.annotations.items()):
        lines.append(f"{inner}{'│ ' if node.children else '  '} {key}={value}")
    for i, child in enumerate(node.children):
        lines.extend(_line(child, inner, i == len(node.children) - 1))
    return lines


def render_listing(listing: ReferrerListing, indent: str = "") -> list[str]:
    """The referrer tree of ``listing`` (``referrers`` and ``inspect --referrers``): the
    top manifest's referrers, then each child manifest that has some, indented."""
    lines: list[str] = []
    for digest, media_type in listing.subjects:
        nodes = listing.under(digest)
        top = str(digest) == listing.digest
        prefix = indent if top else indent + "    "
        if not top:
            if not nodes:
                continue
            lines.append(f"{indent}  {media_type}  {digest}")
        for i, node in enumerate(nodes):
            lines.extend(_line(node, prefix, i == len(nodes) - 1))
    if not listing.nodes:
        lines.append(f"{indent}  (no referrers)")
    return lines


@app.command("referrers")
def referrers_command(
    image: Annotated[str, typer.Argument(help="Image, e.g. registry.k8s.io/pause:3.9")],
    types: Annotated[
        str | None,
        typer.Option(
            "--type",
            metavar="TYPE,...",
            help="Only these artifact types: sig, att, sbom or media types. Default: all.",
        ),
    ] = None,
    src_creds: SrcCredsOpt = None,
    authfile: AuthfileOpt = None,
    ca_file: CaFileOpt = None,
    certs_dir: CertsDirOpt = None,
    insecure_registry: InsecureOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List what refers to an image (signatures, SBOMs, attestations) as a tree.

    Each line: artifact type, digest, size (and the cosign tag it hangs on), then its
    annotations; referrers of referrers are nested below.
    """
    from ..discovery import find_referrers  # noqa: PLC0415 - imported when the command runs

    with reported_errors():
        listing = find_referrers(
            image,
            types=types or True,
            src_creds=src_creds,
            authfile=authfile,
            options=make_options(ca_file, certs_dir, insecure_registry),
        )
    if as_json:
        emit_json(listing.to_json())
        return
    typer.echo(f"{listing.image}  {listing.digest}")
    typer.echo("\n".join(render_listing(listing)))
