"""``imgmirror secret create|check``: Kubernetes image pull Secrets."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from imgmirror.cli.common import (
    CaFileOpt,
    CertsDirOpt,
    InsecureOpt,
    app,
    make_options,
    reported_errors,
)
from imgmirror.cli.creds import read_credentials
from imgmirror.errors import ImgmirrorError

__all__ = ["secret_app"]

secret_app = typer.Typer(
    name="secret",
    help="Create and check Kubernetes image pull Secrets (kubernetes.io/dockerconfigjson).",
    no_args_is_help=True,
)
app.add_typer(secret_app, name="secret")


@secret_app.command("create")
def secret_create_command(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Name of the Secret.")],
    registry: Annotated[
        str, typer.Option("--registry", metavar="HOST[:PORT]", help="Registry the Secret is for.")
    ],
    creds: Annotated[
        str,
        typer.Option(
            "--creds",
            metavar="USER:PASS",
            help="Credentials; - reads USER:PASS from stdin, USER:- the password alone.",
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
    """Print the Secret kubectl create secret docker-registry would create.

    \b
    Example:
      imgmirror secret create regcred --registry reg.corp --creds - < creds.txt
    """
    from imgmirror.auth.pullsecret import create_secret, render  # noqa: PLC0415 - imported when run

    if output not in ("yaml", "json"):
        typer.echo("imgmirror: error: --output must be yaml or json", err=True)
        raise typer.Exit(2)
    with reported_errors():
        doc = create_secret(
            name, registry, read_credentials(creds, "--creds"), namespace=namespace, email=email
        )
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
    """Report every problem that would stop the kubelet from using a pull Secret, with its fix.

    \b
    Example:
      kubectl get secret regcred -o yaml > regcred.yaml
      imgmirror secret check regcred.yaml --registry reg.corp
    """
    from imgmirror.auth.pullsecret import check_text, parse_authfile  # noqa: PLC0415
    from imgmirror.ops.login import try_credentials  # noqa: PLC0415 - imported when run

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
