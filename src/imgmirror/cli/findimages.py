"""``imgmirror find-images``: which images manifests, charts, kubeadm or a cluster need.

stdout: one image per line, sorted, exactly as written (what ``sync --images -`` reads);
``--why`` adds ``# from …`` lines under each, which that reader skips. stderr: hints, notes,
errors (``file:line: …``) and the pause check. ``--json``: one object (docs/find-images.md).
Exit 0 when an image was found, 1 when none was (or a file could not be written), 2 for
usage errors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from imgmirror.cli.common import (
    AuthfileOpt,
    CaFileOpt,
    CertsDirOpt,
    InsecureOpt,
    JsonOpt,
    app,
    make_options,
    reported_errors,
)
from imgmirror.findimages.found import FindReport

__all__ = ["find_images_command"]

FIND_HELP = """List the images a cluster needs, before it needs them.

PATH: manifests (files, directories, - for stdin; multi-document YAML, JSON, List kinds), \
a kustomization directory (kubectl kustomize), a Helm chart directory or .tgz (helm \
template; without helm, its values.yaml). --cluster reads the live cluster's workloads and \
the digest each container runs. --kubeadm reads `kubeadm config images list` output.

Found: every container, init and ephemeral container image, and the images operators pull \
later: *_IMAGE / RELATED_IMAGE_* env values, --*image*= flags, image-like ConfigMap values \
and custom resource image fields. Indirect ones must name a registry; unsure ones are \
printed as hints on stderr, never listed.

\b
  helm template my-release ./chart | imgmirror find-images -
  imgmirror find-images ./manifests --sync-file mirror.yaml --to registry.corp/mirror
  imgmirror find-images --cluster --lock images.lock
"""


def _print_text(report: FindReport, why: bool) -> None:
    for image in report.images:
        typer.echo(image.image)
        if why:
            for source in image.sources:
                typer.echo(f"  # from {source}")


def _print_stderr(report: FindReport, as_json: bool) -> None:
    for error in report.errors:
        typer.echo(f"imgmirror: error: {error}", err=True)
    if as_json:
        return
    for hint in report.hints:
        typer.echo(f"imgmirror: hint: {hint}", err=True)
    for note in report.notes:
        typer.echo(f"imgmirror: note: {note}", err=True)
    if report.pause is not None:
        level = "ok" if report.pause.ok else "warning"
        typer.echo(f"imgmirror: pause image {level}: {report.pause.message}", err=True)


def _write_sync_file(report: FindReport, path: str, to: str | None, prune: bool) -> dict[str, Any]:
    from imgmirror.errors import InvalidSyncFile  # noqa: PLC0415
    from imgmirror.findimages.output import write_atomic  # noqa: PLC0415
    from imgmirror.findimages.syncfile import merge_sync_file  # noqa: PLC0415

    if prune and report.errors:
        problem = "not pruned: some inputs could not be read, and their images would go"
        raise InvalidSyncFile(f"{path}: {problem}", hint="fix the errors above first")
    target = Path(path)
    existing = target.read_text(encoding="utf-8") if target.exists() else None
    images = [image.image for image in report.images]
    merged = merge_sync_file(existing, images, to=to, prune=prune, origin=path)
    write_atomic(target, merged.text)
    return {"path": path, "added": list(merged.added), "removed": list(merged.removed)}


def _write_lock(report: FindReport, path: str, options: dict[str, Any]) -> dict[str, Any]:
    from imgmirror.errors import ImgmirrorError  # noqa: PLC0415
    from imgmirror.findimages.output import write_atomic  # noqa: PLC0415
    from imgmirror.findimages.scan import lock_images  # noqa: PLC0415
    from imgmirror.session import Session  # noqa: PLC0415

    with Session(options.pop("client_options"), **options) as session:
        text, failed = lock_images(session, report.images, jobs=session.jobs)
    for failure in failed:
        typer.echo(f"imgmirror: error: {failure.image}: {failure.error}", err=True)
    if failed:
        raise ImgmirrorError(f"{path} not written: {len(failed)} image(s) could not be resolved")
    write_atomic(path, text)
    return {"path": path, "images": len(report.images)}


@app.command("find-images", help=FIND_HELP)
def find_images_command(
    paths: Annotated[
        list[str] | None, typer.Argument(metavar="[PATH|-]...", help="Manifests, dirs, charts.")
    ] = None,
    cluster: Annotated[bool, typer.Option("--cluster", help="Read the live cluster.")] = False,
    kubeconfig: Annotated[
        str | None, typer.Option("--kubeconfig", metavar="FILE", help="Default: $KUBECONFIG.")
    ] = None,
    context: Annotated[
        str | None, typer.Option("--context", metavar="NAME", help="Kubeconfig context.")
    ] = None,
    namespace: Annotated[
        list[str] | None,
        typer.Option("--namespace", "-n", metavar="NS", help="Only this namespace (repeatable)."),
    ] = None,
    kubeadm: Annotated[
        str | None,
        typer.Option("--kubeadm", metavar="FILE|-", help="`kubeadm config images list` output."),
    ] = None,
    node_config: Annotated[
        str | None,
        typer.Option(
            "--node-config",
            metavar="FILE",
            help="With --kubeadm: containerd config.toml or crio.conf to check the "
            "pause image against.",
        ),
    ] = None,
    why: Annotated[bool, typer.Option("--why", help="Say where each image came from.")] = False,
    as_json: JsonOpt = False,
    sync_file: Annotated[
        str | None,
        typer.Option("--sync-file", metavar="FILE", help="Write or merge into this sync file."),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option("--to", metavar="PREFIX", help="With --sync-file: defaults.to."),
    ] = None,
    prune: Annotated[
        bool, typer.Option("--prune", help="With --sync-file: remove images not found.")
    ] = False,
    lock: Annotated[
        str | None,
        typer.Option("--lock", metavar="FILE", help="Resolve each tag and write a lock."),
    ] = None,
    authfile: AuthfileOpt = None,
    ca_file: CaFileOpt = None,
    certs_dir: CertsDirOpt = None,
    insecure_registry: InsecureOpt = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, max=64, help="HEADs at once.")] = 8,
) -> None:
    from imgmirror.findimages.scan import scan  # noqa: PLC0415

    if not (paths or cluster or kubeadm):
        raise typer.BadParameter("give a PATH (or -), --cluster or --kubeadm")
    if (to or prune) and sync_file is None:
        raise typer.BadParameter("--to and --prune go with --sync-file")
    if node_config and not kubeadm:
        raise typer.BadParameter("--node-config goes with --kubeadm", param_hint="--node-config")
    if (kubeconfig or context or namespace) and not cluster:
        raise typer.BadParameter("--kubeconfig, --context and -n go with --cluster")
    written: dict[str, Any] = {}
    with reported_errors():
        report = scan(
            paths or (),
            cluster=cluster,
            kubeconfig=kubeconfig,
            context=context,
            namespaces=namespace or (),
            kubeadm=kubeadm,
            node_config=node_config,
        )
        _print_stderr(report, as_json)
        if report.images and sync_file is not None:
            written["sync_file"] = _write_sync_file(report, sync_file, to, prune)
        if report.images and lock is not None:
            connect = make_options(ca_file, certs_dir, insecure_registry)
            options = {"authfile": authfile, "jobs": jobs, "client_options": connect}
            written["lock"] = _write_lock(report, lock, options)
    if as_json:
        typer.echo(json.dumps({**report.to_json(), "written": written}, sort_keys=True))
    else:
        _print_text(report, why)
        for what, facts in written.items():
            typer.echo(f"imgmirror: wrote {what.replace('_', ' ')} {facts['path']}", err=True)
    if not report.images:
        typer.echo("imgmirror: error: no image found", err=True)
        raise typer.Exit(1)
