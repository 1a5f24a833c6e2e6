"""The verification options ``copy``, ``save``, ``sync`` and ``verify`` share, and the
policy they make."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from imgmirror.verify.policy import Policy

__all__ = ["PolicyOpt", "VerifyCacheOpt", "VerifyKeyOpt", "policy_of"]

VerifyKeyOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--verify-key",
        metavar="FILE",
        help="Copy only images signed by this cosign public key (PEM, or a Kubernetes Secret "
        "manifest holding cosign.pub); repeatable: any of them. Checked before anything is "
        "written; a refused image exits 3.",
    ),
]
PolicyOpt = Annotated[
    str | None,
    typer.Option(
        "--policy",
        metavar="FILE",
        help="A verification policy (YAML, docs/verify.md): keys, keyless identities with a "
        "trusted root, required attestations, min-age/max-age, per-platform.",
    ),
]
VerifyCacheOpt = Annotated[
    str | None,
    typer.Option(
        "--verify-cache",
        metavar="FILE",
        help="Keep accepted decisions here (by digest and policy): an image already at the "
        "destination is not verified again until the policy changes.",
    ),
]


def policy_of(keys: list[str] | None, policy: str | None) -> Policy | None:
    """The policy ``--policy`` and ``--verify-key`` give (the keys are added to the file's).

    Raises:
        InvalidPolicy: the file cannot be read or is malformed.
    """
    if not keys and policy is None:
        return None
    import attrs  # noqa: PLC0415 - imported when the options are used

    from imgmirror.errors import InvalidPolicy  # noqa: PLC0415
    from imgmirror.verify.policy import KeySource, Policy  # noqa: PLC0415
    from imgmirror.verify.policyfile import parse_policy  # noqa: PLC0415

    given = tuple(KeySource(str(Path(k).absolute()), "--verify-key") for k in keys or ())
    if policy is None:
        return Policy(keys=given, origin="--verify-key")
    try:
        text = Path(policy).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidPolicy(f"cannot read policy file {policy}: {exc}") from None
    parsed = parse_policy(text, policy, base=str(Path(policy).parent))
    return attrs.evolve(parsed, keys=parsed.keys + given) if given else parsed
