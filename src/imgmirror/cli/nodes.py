"""``imgmirror node-config``: the files that make a node's runtime pull through the mirror."""

from __future__ import annotations

from typing import Annotated

import typer

from imgmirror.cli.common import JsonOpt, app, emit_json, reported_errors
from imgmirror.cli.creds import creds_option

__all__ = ["NODE_ENV", "node_config_command"]

#: The environment variable ``--creds`` falls back to.
NODE_ENV = "IMGMIRROR_NODE_CREDS"

NODE_CONFIG_HELP = """Write the files that make containerd, docker and CRI-O/podman pull \
SOURCE images from a mirror, without renaming any image.

\b
  --mirror registry.k8s.io=registry.corp:5000/k8s   pulls of registry.k8s.io/pause:3.9
                                                    come from registry.corp:5000/k8s/pause:3.9
                                                    (falling back to registry.k8s.io unless
                                                    --no-fallback)

\b
Files, relative to /etc (-o DIR writes them under DIR, --node-root DIR under DIR/etc;
otherwise they are printed):
  containerd/certs.d/SOURCE/hosts.toml (+ ca.crt, client.cert/.key next to it)
  containerd/certs.d/MIRROR/hosts.toml (a mirror needing a CA, client cert or http://)
  containers/registries.conf.d/50-imgmirror.conf, containers/certs.d/MIRROR/ (CRI-O, podman)
  docker/daemon.json (registry-mirrors: Docker Hub only), docker/certs.d/MIRROR/
With --creds or --authfile (mode 0600, never printed): containerd/imgmirror-registry-auth.toml
(to append to config.toml), containers/auth.json and a crio.conf.d drop-in, and with
--node-root the kubelet's var/lib/kubelet/config.json.
The containerd config.toml lines (--containerd 1|2), CRI-O pause_image and kubelet
--pod-infra-container-image values for the pause image are printed, never edited in place.

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
            help="The pause image to point kubelet/containerd/CRI-O at. "
            "Default: registry.k8s.io/pause:3.9.",
        ),
    ] = None,
    sandbox_name: Annotated[
        str,
        typer.Option(
            "--sandbox-name",
            metavar="source|mirror",
            help="Name the pause image by its source name (default; the files redirect it) "
            "or under the mirror.",
        ),
    ] = "source",
    creds: Annotated[
        str | None,
        creds_option("--creds", env=NODE_ENV, who="the mirror (written for the node)"),
    ] = None,
    authfile: Annotated[
        str | None,
        typer.Option(
            "--authfile",
            metavar="FILE",
            help="Take the mirror's credentials from FILE (config.json, auth.json, "
            ".dockercfg or a pull Secret).",
        ),
    ] = None,
    containerd: Annotated[
        int | None,
        typer.Option(
            "--containerd",
            metavar="1|2",
            help="containerd's major version (config version 2 or 3). Default: as -o DIR's "
            "containerd/config.toml says, else 1.",
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
    node_root: Annotated[
        str | None,
        typer.Option(
            "--node-root",
            metavar="DIR",
            help="Write the tree laid out like / here (DIR/etc/..., DIR/var/lib/kubelet/).",
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
            sandbox_name=sandbox_name,  # type: ignore[arg-type]
            fallback=not no_fallback,
            creds=creds,  # the option's callback made it a Credential
            authfile=authfile,
            containerd=containerd,
            output=output,
            node_root=node_root,
        )
    for note in config.notes:
        typer.echo(f"imgmirror: note: {note}", err=True)
    written = output or node_root
    tree = config.tree(node_root=node_root is not None)
    if as_json:
        emit_json(
            {
                "output": written,
                "files": sorted(tree),
                "private": sorted(p for p in tree if config.is_private(p)),
                "containerd": config.containerd,
                "sandbox_image": config.sandbox_image,
                "snippets": list(config.snippets),
                "notes": list(config.notes),
            }
        )
        return
    if written:
        root = written.rstrip("/")
        for path in tree:
            typer.echo(f"wrote {root}/{path}")
    else:  # printed as the whole node would hold them
        for path, data in config.tree(node_root=True).items():
            if path.endswith(".key"):
                typer.echo(f"# /{path}: a copy of --client-key (not shown)\n")
            elif config.is_private(path):
                typer.echo(f"# /{path}: holds credentials (not shown; write it with -o DIR)\n")
            else:
                typer.echo(f"# /{path}\n{data.decode()}")
    typer.echo("\n" + "\n\n".join(config.snippets))
