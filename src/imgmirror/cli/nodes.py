"""``imgmirror node-config``: the files that make a node's runtime pull through the mirror."""

from __future__ import annotations

from typing import Annotated

import typer

from imgmirror.cli.common import JsonOpt, app, emit_json, reported_errors

__all__ = ["node_config_command"]

NODE_CONFIG_HELP = """Write the files that make containerd, docker and CRI-O/podman pull \
SOURCE images from a mirror, without renaming any image.

\b
  --mirror registry.k8s.io=registry.corp:5000/k8s   pulls of registry.k8s.io/pause:3.9
                                                    come from registry.corp:5000/k8s/pause:3.9
                                                    (falling back to registry.k8s.io unless
                                                    --no-fallback)

\b
Files, relative to /etc (-o DIR writes them under DIR; otherwise they are printed):
  containerd/certs.d/SOURCE/hosts.toml (+ ca.crt, client.cert/.key next to it)
  containers/registries.conf.d/50-imgmirror.conf, containers/certs.d/MIRROR/ (CRI-O, podman)
  docker/daemon.json (registry-mirrors: Docker Hub only), docker/certs.d/MIRROR/
The containerd config.toml lines, CRI-O pause_image and kubelet --pod-infra-container-image
values for the pause image under the mirror are printed, never edited in place.

\b
Example:
  imgmirror node-config --mirror registry.k8s.io=registry.corp:5000/k8s -o /etc
"""


@app.command("node-config", help=NODE_CONFIG_HELP)
def node_config_command(
    mirror: Annotated[
        list[str],
        typer.Option(
            "--mirror",
            metavar="SOURCE=MIRROR[/PREFIX]",
            help="Serve pulls of SOURCE from MIRROR (repeatable; in order of preference). "
            "MIRROR may start with http:// for a plain-HTTP mirror.",
        ),
    ],
    ca_file: Annotated[
        str | None,
        typer.Option("--ca-file", metavar="FILE", help="PEM CA bundle the mirror's TLS uses."),
    ] = None,
    client_cert: Annotated[
        str | None,
        typer.Option("--client-cert", metavar="CERT", help="Client certificate (PEM) for mTLS."),
    ] = None,
    client_key: Annotated[
        str | None, typer.Option("--client-key", metavar="KEY", help="Its private key (PEM).")
    ] = None,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Do not verify the mirror's TLS certificate.")
    ] = False,
    runtime: Annotated[
        list[str] | None,
        typer.Option(
            "--runtime",
            metavar="containerd|docker|crio",
            help="Write for this runtime only (repeatable). Default: all three.",
        ),
    ] = None,
    sandbox_image: Annotated[
        str | None,
        typer.Option(
            "--sandbox-image",
            metavar="REF",
            help="The pause image to point kubelet/containerd/CRI-O at, under the mirror. "
            "Default: registry.k8s.io/pause:3.9.",
        ),
    ] = None,
    no_fallback: Annotated[
        bool,
        typer.Option("--no-fallback", help="Never pull from SOURCE itself when the mirror fails."),
    ] = False,
    output: Annotated[
        str | None,
        typer.Option(
            "--output", "-o", metavar="DIR", help="Write the tree (laid out like /etc) here."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    from imgmirror.nodes.files import node_config  # noqa: PLC0415 - imported when the command runs

    with reported_errors():
        config = node_config(
            mirror,
            ca_file=ca_file,
            client_cert=client_cert,
            client_key=client_key,
            insecure=insecure,
            runtimes=runtime,  # type: ignore[arg-type]
            sandbox_image=sandbox_image,
            fallback=not no_fallback,
            output=output,
        )
    for note in config.notes:
        typer.echo(f"imgmirror: note: {note}", err=True)
    if as_json:
        emit_json(
            {
                "output": output,
                "files": sorted(config.files),
                "sandbox_image": config.sandbox_image,
                "snippets": list(config.snippets),
                "notes": list(config.notes),
            }
        )
        return
    root = output.rstrip("/") if output else "/etc"
    for path, data in config.items():
        if output:
            typer.echo(f"wrote {root}/{path}")
        elif path.endswith(".key"):
            typer.echo(f"# {root}/{path}: a copy of --client-key (not shown)\n")
        else:
            typer.echo(f"# {root}/{path}\n{data.decode()}")
    typer.echo("\n" + "\n\n".join(config.snippets))
