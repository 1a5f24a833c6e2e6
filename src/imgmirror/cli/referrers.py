"""``imgmirror referrers IMAGE``: what refers to an image, as a tree."""

from __future__ import annotations

from typing import Annotated

import typer

from imgmirror.cli.common import (
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
from imgmirror.cli.referrer_tree import render_listing
from imgmirror.cli.terminal import untrusted

__all__ = ["referrers_command"]


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
    from imgmirror.api.referrers import find_referrers  # noqa: PLC0415 - imported when the command runs

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
    typer.echo(untrusted(f"{listing.image}  {listing.digest}"))
    typer.echo(untrusted("\n".join(render_listing(listing))))
