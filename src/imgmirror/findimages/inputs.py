"""Reading the inputs: files, directories, stdin, kustomizations, Helm charts, kubeadm's list.

A directory with a ``kustomization.yaml`` (``.yml``, ``Kustomization``) is built with
``kubectl kustomize``; one with a ``Chart.yaml``, or a chart ``.tgz``, is rendered with
``helm template`` (hooks included), or, when helm is not on PATH, its ``values.yaml`` is
walked and a note says so. Any other directory is read file by file (``*.yaml``, ``*.yml``,
``*.json``, hidden folders skipped, a chart inside it read as a chart). An input that fails
is an [InputError][imgmirror.findimages.found.InputError]; the others are still read.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import TextIO

import attrs

from imgmirror.findimages.documents import load_documents
from imgmirror.findimages.extract import Candidate, candidates
from imgmirror.findimages.found import Hint, InputError, Source
from imgmirror.findimages.helmvalues import values_candidates

__all__ = ["NO_HELM", "Gathered", "read_input", "read_kubeadm", "read_text_input"]

_KUSTOMIZATIONS = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_SUFFIXES = (".yaml", ".yml", ".json")
_MAX_FILE = 64 * 1024 * 1024
_MAX_FILES = 100_000
_TOOL_TIMEOUT = 300.0
#: The note for a chart read without helm.
NO_HELM = (
    "helm is not on PATH, so only values.yaml was read; templates can add images values do "
    "not name (install helm for exact results, or pipe `helm template` into find-images -)"
)
_RELEASE = "release-name"  # what helm template calls a release when given no name


@attrs.define
class Gathered:
    """What the inputs gave so far."""

    found: list[Candidate] = attrs.Factory(list)
    hints: list[Hint] = attrs.Factory(list)
    errors: list[InputError] = attrs.Factory(list)
    notes: list[str] = attrs.Factory(list)


def read_text_input(text: str, origin: str, into: Gathered) -> None:
    """Manifests (multi-document YAML or JSON) into candidates."""
    documents, errors = load_documents(text, origin)
    into.errors.extend(errors)
    for document in documents:
        try:
            into.found.extend(candidates(document))
        except ValueError as exc:
            into.errors.append(InputError(f"{origin}:{document.line}", str(exc)))


def _read_file(path: Path, into: Gathered) -> str | None:
    try:
        if path.stat().st_size > _MAX_FILE:
            into.errors.append(InputError(str(path), f"larger than {_MAX_FILE} bytes; not read"))
            return None
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        into.errors.append(InputError(str(path), f"cannot read: {reason}"))
        return None


def _run(command: list[str], origin: str, into: Gathered) -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=_TOOL_TIMEOUT,
                              check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        into.errors.append(InputError(origin, f"{command[0]} failed: {exc}"))
        return None
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines() or ["no message"]
        into.errors.append(InputError(origin, f"{' '.join(command[:2])} failed: {lines[-1][:300]}"))
        return None
    return done.stdout


def _kustomization(directory: Path, into: Gathered) -> None:
    origin = f"{directory} (kubectl kustomize)"
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        problem = "a kustomization, and kubectl is not on PATH"
        fix = "install kubectl, or pipe `kustomize build DIR` into find-images -"
        into.errors.append(InputError(str(directory), f"{problem}: {fix}"))
        return
    text = _run([kubectl, "kustomize", str(directory)], origin, into)
    if text is not None:
        read_text_input(text, origin, into)


def _chart_files(chart: Path) -> tuple[str | None, str | None]:
    """(Chart.yaml, values.yaml) of a chart folder or ``.tgz``."""
    if chart.is_dir():
        read = [(chart / name) for name in ("Chart.yaml", "values.yaml")]
        return tuple(p.read_text(encoding="utf-8") if p.is_file() else None for p in read)  # type: ignore[return-value]
    found: dict[str, str] = {}
    with tarfile.open(chart, "r:*") as archive:
        for member in archive:
            parts = member.name.split("/")
            if len(parts) == 2 and parts[1] in ("Chart.yaml", "values.yaml") and member.isfile():
                handle = archive.extractfile(member)
                if handle is not None and member.size <= _MAX_FILE:
                    found.setdefault(parts[1], handle.read().decode("utf-8"))
    return found.get("Chart.yaml"), found.get("values.yaml")


def _app_version(chart_text: str | None) -> str | None:
    documents, _ = load_documents(chart_text or "", "Chart.yaml")
    data = documents[0].data if documents else None
    value = data.get("appVersion") if isinstance(data, dict) else None
    return str(value) if value is not None else None


def _chart(chart: Path, into: Gathered) -> None:
    helm = shutil.which("helm")
    if helm is not None:
        origin = f"{chart} (helm template)"
        text = _run([helm, "template", _RELEASE, str(chart)], origin, into)
        if text is not None:
            read_text_input(text, origin, into)
        return
    try:
        chart_text, values_text = _chart_files(chart)
    except (OSError, UnicodeDecodeError, tarfile.TarError) as exc:
        into.errors.append(InputError(str(chart), f"cannot read the chart: {exc}"))
        return
    origin = f"{chart}/values.yaml" if chart.is_dir() else f"{chart}:values.yaml"
    into.notes.append(f"{chart}: {NO_HELM}")
    documents, errors = load_documents(values_text or "", origin)
    into.errors.extend(errors)
    for document in documents:
        found, hints = values_candidates(document.data, origin, _app_version(chart_text))
        into.found.extend(found)
        into.hints.extend(hints)


def _is_chart_archive(path: Path) -> bool:
    if not path.name.endswith((".tgz", ".tar.gz")):
        return False
    try:
        with tarfile.open(path, "r:*") as archive:
            return any(m.name.count("/") == 1 and m.name.endswith("/Chart.yaml") for m in archive)
    except (OSError, tarfile.TarError):
        return False


def _directory(directory: Path, into: Gathered, top: bool) -> None:
    if top and any((directory / name).is_file() for name in _KUSTOMIZATIONS):
        _kustomization(directory, into)
        return
    if (directory / "Chart.yaml").is_file():
        _chart(directory, into)
        return
    try:
        children = sorted(directory.iterdir())
    except OSError as exc:
        into.errors.append(InputError(str(directory), f"cannot list: {exc.strerror}"))
        return
    for child in children[:_MAX_FILES]:
        if child.name.startswith("."):
            continue
        if child.is_dir():
            _directory(child, into, top=False)
        elif child.name.endswith(_SUFFIXES) and child.name not in _KUSTOMIZATIONS:
            text = _read_file(child, into)
            if text is not None:
                read_text_input(text, str(child), into)
        elif _is_chart_archive(child):
            _chart(child, into)


def read_input(path: str, into: Gathered, stdin: TextIO | None = None) -> None:
    """One input named on the command line (``-``: ``stdin``)."""
    if path == "-":
        assert stdin is not None
        read_text_input(stdin.read(), "<stdin>", into)
        return
    target = Path(path)
    if target.is_dir():
        _directory(target, into, top=True)
    elif _is_chart_archive(target):
        _chart(target, into)
    elif target.exists():
        text = _read_file(target, into)
        if text is not None:
            read_text_input(text, path, into)
    else:
        into.errors.append(InputError(path, "no such file or directory"))


def read_kubeadm(text: str, origin: str, into: Gathered) -> list[str]:
    """``kubeadm config images list`` output: one image per line (``#`` comments); returns
    the images, in order."""
    images = []
    for number, line in enumerate(io.StringIO(text), start=1):
        content = line.split("#", 1)[0].strip()
        if not content:
            continue
        source = Source(origin, number, "kubeadm", "", "config images list")
        into.found.append(Candidate(content, source))
        images.append(content)
    return images
