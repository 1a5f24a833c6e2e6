"""``imgmirror doctor``: why can (or can't) this node pull these images?"""

from __future__ import annotations

from typing import Annotated

import typer

from imgmirror.cli.common import JsonOpt, app, emit_json, reported_errors

__all__ = ["doctor_command"]

DOCTOR_HELP = """Say whether this node's runtime would pull IMAGE..., and through which host,
or the first step that fails and what to change.

\b
It reads the node's configuration under --node-root (default /): containerd's config.toml
(config_path, sandbox_image, registry.configs auth, the legacy registry.mirrors), the
certs.d/*/hosts.toml files, registries.conf(.d), daemon.json, the kubelet's config.json and
flags; follows the path the runtime would take (mirror order, override_path, fallback to the
source, skip_verify, CA and client certificates, the credentials the kubelet or the runtime
would send) and tries each host for real. The sandbox (pause) image is checked too, against
the pause version kubeadm expects for --kubernetes-version.

\b
Exit status 0 only when every image (and the sandbox image) would pull.

\b
Example:
  imgmirror doctor registry.k8s.io/coredns/coredns:v1.11.1 --pod ingress.yaml \\
      --secret regcred.yaml --kubernetes-version v1.28.4
"""


@app.command("doctor", help=DOCTOR_HELP)
def doctor_command(
    images: Annotated[
        list[str] | None, typer.Argument(metavar="IMAGE...", help="Images, as pods name them.")
    ] = None,
    node_root: Annotated[
        str, typer.Option("--node-root", metavar="DIR", help="The node's / (default /).")
    ] = "/",
    secret: Annotated[
        str | None,
        typer.Option(
            "--secret", metavar="FILE", help="Pull Secret(s), kubectl get secret -o yaml."
        ),
    ] = None,
    pod: Annotated[
        str | None,
        typer.Option(
            "--pod", metavar="FILE", help="A Pod or workload: its images and imagePullSecrets."
        ),
    ] = None,
    kubernetes_version: Annotated[
        str | None,
        typer.Option(
            "--kubernetes-version",
            metavar="V",
            help="The node's Kubernetes version (default: its kube-apiserver manifest's).",
        ),
    ] = None,
    platform: Annotated[
        str | None,
        typer.Option("--platform", metavar="OS/ARCH", help="The node's platform (default: here)."),
    ] = None,
    runtime: Annotated[
        str | None,
        typer.Option(
            "--runtime",
            metavar="containerd|crio|docker",
            help="Default: the one the node configures.",
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", metavar="SECONDS", help="Per host (default 10).")
    ] = 10.0,
    as_json: JsonOpt = False,
) -> None:
    from imgmirror.nodes.doctor import doctor  # noqa: PLC0415 - imported when the command runs

    if not images and pod is None:
        typer.echo("imgmirror: error: give IMAGE... or --pod FILE", err=True)
        raise typer.Exit(2)
    with reported_errors():
        report = doctor(
            images or [],
            node_root=node_root,
            secret=secret,
            pod=pod,
            kubernetes_version=kubernetes_version,
            platform=platform,
            runtime=runtime,
            timeout=timeout,
        )
    if as_json:
        emit_json(
            {
                "ok": report.ok,
                "runtime": report.runtime,
                "notes": list(report.notes),
                "verdicts": [v.as_dict() for v in report.verdicts],
            }
        )
    else:
        for note in report.notes:
            typer.echo(f"imgmirror: note: {note}", err=True)
        for verdict in report.verdicts:
            typer.echo(verdict.line())
            for warning in verdict.warnings:
                typer.echo(f"  warning: {warning}")
    if not report.ok:
        raise typer.Exit(1)
