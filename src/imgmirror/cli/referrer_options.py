"""The ``--referrers`` options that ``copy`` takes, and what makes a bare ``--referrers`` work."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = [
    "PushReferrersOpt",
    "ReferrersOpt",
    "ReferrersOptionalOpt",
    "SaveReferrersOpt",
    "bare_referrers",
    "referrers_wanted",
]


def bare_referrers(argv: list[str]) -> list[str]:
    """``--referrers`` without a value means ``--referrers=all``.

    The option parser wants a value for every option, so a bare ``--referrers`` (last, or
    followed by another option or by something that is not a list of artifact types) gets
    ``=all`` here, before parsing. ``--referrers TYPE,...`` and ``--referrers=...`` pass.
    """
    from imgmirror.errors import InvalidArtifactType  # noqa: PLC0415
    from imgmirror.model.artifacts import ArtifactFilter  # noqa: PLC0415 - only when the option is used

    out: list[str] = []
    for i, arg in enumerate(argv):
        if arg == "--":
            return out + argv[i:]
        if arg != "--referrers":
            out.append(arg)
            continue
        following = argv[i + 1] if i + 1 < len(argv) else None
        try:
            typed = following is not None and not following.startswith("-")
            typed = typed and ArtifactFilter.parse(following) is not None
        except InvalidArtifactType:
            typed = False
        out.append(arg if typed else "--referrers=all")
    return out


ReferrersOpt = Annotated[
    str | None,
    typer.Option(
        "--referrers",
        metavar="[TYPE,...]",
        help="Also copy what refers to the image and each manifest copied: signatures, SBOMs, "
        "attestations (referrers API, fallback tag, cosign tags), and their own referrers. "
        "Alone: all; or sig, att, sbom or media types, comma-separated (--referrers=sig,sbom). "
        "Pushed after the image, digests unchanged.",
    ),
]
SaveReferrersOpt = Annotated[
    str | None,
    typer.Option(
        "--referrers",
        metavar="[TYPE,...]",
        help="Also store what refers to each image and its manifests (signatures, SBOMs, "
        "attestations, and their own referrers) in the archive's OCI layout, for push to "
        "restore; docker load and ctr import ignore them. Alone: all; or sig, att, sbom or "
        "media types, comma-separated. Not with --format legacy.",
    ),
]
PushReferrersOpt = Annotated[
    str | None,
    typer.Option(
        "--referrers",
        metavar="[TYPE,...]",
        help="Which referrers the archive stores (save --referrers) to restore after the "
        "images: all (the default) or sig, att, sbom or media types, comma-separated.",
    ),
]
ReferrersOptionalOpt = Annotated[
    bool,
    typer.Option(
        "--referrers-optional",
        help="Carry referrers best effort: one that cannot be copied is reported and the "
        "image still lands (implies --referrers).",
    ),
]


def referrers_wanted(value: str | None, optional: bool) -> str | None:
    """The ``referrers=`` argument for the library from the two options."""
    if value is None and optional:
        return "all"
    return value
