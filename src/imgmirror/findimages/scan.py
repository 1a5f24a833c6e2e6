"""find-images as one call: every input read, judged and grouped into a report.

[scan][] returns the whole [FindReport][imgmirror.findimages.found.FindReport] (images,
hints, errors, notes, the pause check); [find_images][] (``imgmirror.find_images``)
only the images. [lock_images][] resolves them for ``--lock`` through a session.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from imgmirror.errors import ImgmirrorError, KubernetesError
from imgmirror.findimages.cluster import cluster_candidates
from imgmirror.findimages.extract import findings
from imgmirror.findimages.found import FindReport, FoundImage, InputError, collect
from imgmirror.findimages.inputs import Gathered, read_input, read_kubeadm
from imgmirror.findimages.lock import format_lock
from imgmirror.findimages.resolve import ClientSource, Resolved, resolve_digests
from imgmirror.model.pause import PauseCheck, compare_pause, pause_image, sandbox_setting
from imgmirror.transport.kubeapi import KubeClient, load_kubeconfig

__all__ = ["find_images", "lock_images", "scan"]

PathArg = str | os.PathLike[str]


def _text(path: PathArg, stdin: TextIO, what: str) -> str:
    if os.fspath(path) == "-":
        return stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ImgmirrorError(f"cannot read {what} {os.fspath(path)}: {exc}") from None


def _pause(images: list[str], node_config: PathArg, stdin: TextIO) -> PauseCheck | None:
    expected = pause_image(images)
    if expected is None:
        return None
    try:
        setting = sandbox_setting(_text(node_config, stdin, "the node's runtime configuration"))
    except ValueError as exc:
        fix = "give containerd's config.toml or CRI-O's crio.conf"
        raise ImgmirrorError(f"{os.fspath(node_config)}: {exc}", hint=fix) from None
    return compare_pause(expected, setting)


def _cluster(into: Gathered, kubeconfig: PathArg | None, context: str | None,
             namespaces: Sequence[str], timeout: float) -> None:  # fmt: skip
    target = load_kubeconfig(kubeconfig, context)
    try:
        with KubeClient(target, timeout=timeout) as client:
            found, errors = cluster_candidates(client, namespaces)
    except KubernetesError as exc:
        into.errors.append(InputError(f"cluster {target.context}", str(exc)))
        return
    into.found.extend(found)
    into.errors.extend(errors)


def scan(
    paths: Sequence[PathArg] = (),
    *,
    cluster: bool = False,
    kubeconfig: PathArg | None = None,
    context: str | None = None,
    namespaces: Sequence[str] = (),
    kubeadm: PathArg | None = None,
    node_config: PathArg | None = None,
    stdin: TextIO | None = None,
    timeout: float = 30.0,
) -> FindReport:
    """Read every input and report the images, hints and errors.

    ``paths``: files, directories, chart ``.tgz`` files, ``-`` (``stdin``, default
    ``sys.stdin``). ``cluster``: also the live cluster of ``kubeconfig``/``context``
    (``namespaces``: only those). ``kubeadm``: ``kubeadm config images list`` output (a path
    or ``-``); with ``node_config`` (containerd ``config.toml`` or CRI-O ``crio.conf``), the
    pause image it names is checked against the runtime's.

    Raises:
        KubernetesError: the kubeconfig cannot be used (an unreachable or refusing server is
            an error in the report instead).
        ImgmirrorError: ``-`` given twice, or the kubeadm list or node configuration
            cannot be read.
    """
    named = [os.fspath(p) for p in paths]
    if named.count("-") + (kubeadm is not None and os.fspath(kubeadm) == "-") > 1:
        raise ImgmirrorError("stdin (-) can be read only once", hint="give files for the others")
    stdin = stdin or sys.stdin
    into = Gathered()
    for path in named:
        read_input(path, into, stdin)
    pause = None
    if kubeadm is not None:
        origin = "<stdin>" if os.fspath(kubeadm) == "-" else os.fspath(kubeadm)
        listed = read_kubeadm(_text(kubeadm, stdin, "the kubeadm image list"), origin, into)
        if node_config is not None:
            pause = _pause(listed, node_config, stdin)
    if cluster:
        _cluster(into, kubeconfig, context, namespaces, timeout)
    images, hints = findings(into.found)
    report = collect(images, [*into.hints, *hints], into.errors, into.notes)
    return FindReport(report.images, report.hints, report.errors, report.notes, pause)


def find_images(
    paths: Sequence[PathArg] = (),
    *,
    cluster: bool = False,
    kubeconfig: PathArg | None = None,
    context: str | None = None,
    namespaces: Sequence[str] = (),
    kubeadm: PathArg | None = None,
    stdin: TextIO | None = None,
    timeout: float = 30.0,
) -> list[FoundImage]:
    """The images a set of manifests, charts, kustomizations or a live cluster needs, sorted,
    each with the places it came from (what ``imgmirror find-images`` prints).

    The arguments are [scan][imgmirror.findimages.scan.scan]'s; inputs that fail are left out
    (use ``scan`` to see their errors, the hints and the pause-image check).

    Raises:
        KubernetesError: the kubeconfig cannot be used.
        ImgmirrorError: ``-`` given twice, or the kubeadm list cannot be read.
    """
    report = scan(
        paths, cluster=cluster, kubeconfig=kubeconfig, context=context,
        namespaces=namespaces, kubeadm=kubeadm, stdin=stdin, timeout=timeout,
    )  # fmt: skip
    return list(report.images)


def lock_images(
    session: ClientSource, images: Sequence[str | FoundImage], *, jobs: int = 8
) -> tuple[str, list[Resolved]]:
    """The lock text for ``images`` (one ``HEAD`` per tag through ``session``, e.g. an
    [imgmirror.Session][imgmirror.Session]), and the images that could not be resolved (left
    out)."""
    texts = [i.image if isinstance(i, FoundImage) else i for i in images]
    resolved = resolve_digests(session, texts, jobs=jobs)
    pinned = {r.image: r.digest for r in resolved if r.digest is not None}
    return format_lock(pinned), [r for r in resolved if r.digest is None]
