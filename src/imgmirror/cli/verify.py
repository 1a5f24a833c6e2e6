"""``imgmirror verify IMAGE``: check an image against a verification policy, copy nothing."""

from __future__ import annotations

from typing import Annotated

import typer

from imgmirror.cli.common import (
    DEFAULT_TIMEOUT,
    REFUSED,
    AuthfileOpt,
    CaFileOpt,
    CertsDirOpt,
    InsecureOpt,
    JsonOpt,
    SrcCredsOpt,
    TimeoutOpt,
    app,
    emit_json,
    make_options,
    reported_errors,
)
from imgmirror.cli.verify_options import PolicyOpt, VerifyKeyOpt, policy_of

__all__ = ["verify_command"]


@app.command("verify")
def verify_command(
    image: Annotated[str, typer.Argument(help="Image, e.g. registry.k8s.io/pause:3.10")],
    verify_key: VerifyKeyOpt = None,
    policy: PolicyOpt = None,
    src_creds: SrcCredsOpt = None,
    authfile: AuthfileOpt = None,
    ca_file: CaFileOpt = None,
    certs_dir: CertsDirOpt = None,
    insecure_registry: InsecureOpt = None,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    as_json: JsonOpt = False,
) -> None:
    """Check IMAGE's signatures and attestations against a policy (--policy FILE or
    --verify-key FILE...), as copy, save and sync do before writing; copy nothing.

    Exit status 0: accepted; 3: refused (the reason on stderr); 1: it could not be checked.

    \b
    Example:
      imgmirror verify registry.corp/app:1.4 --verify-key cosign.pub
    """
    from imgmirror.session import Session  # noqa: PLC0415 - imported when the command runs

    if not verify_key and policy is None:
        raise typer.BadParameter("give --policy FILE or --verify-key FILE")
    with reported_errors():
        wanted = policy_of(verify_key, policy)
        assert wanted is not None
        options = make_options(ca_file, certs_dir, insecure_registry, timeout)
        with Session(options, authfile=authfile) as session:
            decision = session.verify(image, wanted, src_creds=src_creds)
    if as_json:
        emit_json({"image": image, **decision.to_json()})
    elif decision.accepted:
        typer.echo(f"{image} {decision.digest}\n  {decision.summary()}")
        for found in (*decision.signatures, *decision.attestations):
            what = found.predicate_type or "signature"
            typer.echo(f"  {what} on {found.subject} by {found.by}")
    if not decision.accepted:
        typer.echo(
            f"imgmirror: error: {image} ({decision.digest}) refused by the verification "
            f"policy: {decision.reason}",
            err=True,
        )
        raise typer.Exit(REFUSED)
