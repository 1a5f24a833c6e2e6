"""What find-images reports: each image with every place it came from, hints and errors.

Pure values; [FindReport.to_json][] is the documented ``--json`` shape (docs/find-images.md).
"""

from __future__ import annotations

from typing import Any

import attrs

from imgmirror.model.pause import PauseCheck

__all__ = ["FindReport", "FoundImage", "Hint", "InputError", "Source", "collect"]


@attrs.frozen(order=True)
class Source:
    """One place an image was named.

    Attributes:
        file: the input (a path, ``<stdin>``, ``DIR (kubectl kustomize)``, ``cluster CONTEXT``).
        line: 1-based line in that input (0: unknown, e.g. the cluster).
        kind: the object's kind (``Deployment``), ``values.yaml`` or ``kubeadm``.
        name: the object's ``metadata.name`` (with ``namespace/`` when it has one).
        path: where in the object (``spec.template.spec.containers[app].image``).
        direct: a container's own image (True), or one a program pulls later: an env
            value, a flag, a ConfigMap value, a custom resource field (False).
        digest: the digest a running container has (``--cluster``: from
            ``status.containerStatuses[].imageID``), else None.
    """

    file: str
    line: int
    kind: str
    name: str
    path: str
    direct: bool = True
    digest: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        what = f"{self.kind}/{self.name}" if self.name else self.kind
        runs = f" (runs {self.digest})" if self.digest else ""
        return f"{where} {what} {self.path}{runs}"

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "kind": self.kind,
            "name": self.name,
            "path": self.path,
            "direct": self.direct,
            "digest": self.digest,
        }


@attrs.frozen
class FoundImage:
    """An image, exactly as written (tag, digest or both), and every place it came from."""

    image: str
    sources: tuple[Source, ...]

    @property
    def direct(self) -> bool:
        """Whether some container names it itself (not only an env value, flag or field)."""
        return any(source.direct for source in self.sources)

    @property
    def digests(self) -> tuple[str, ...]:
        """The digests running containers of this image have (``--cluster`` only)."""
        return tuple(sorted({s.digest for s in self.sources if s.digest}))

    def to_json(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "direct": self.direct,
            "digests": list(self.digests),
            "sources": [source.to_json() for source in self.sources],
        }


@attrs.frozen(order=True)
class Hint:
    """Text that may be an image but is not listed: what it is, where, and why not."""

    text: str
    source: Source
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.text!r}: {self.reason}"

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "reason": self.reason, "source": self.source.to_json()}


@attrs.frozen(order=True)
class InputError:
    """An input, or one document of it, that could not be read: where and what."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {"where": self.where, "message": self.message}


@attrs.frozen
class FindReport:
    """Everything one scan found: images (sorted by text), hints, errors and notes, and with
    ``kubeadm`` and a node's runtime configuration, the pause image check."""

    images: tuple[FoundImage, ...] = ()
    hints: tuple[Hint, ...] = ()
    errors: tuple[InputError, ...] = ()
    notes: tuple[str, ...] = ()
    pause: PauseCheck | None = None

    def to_json(self) -> dict[str, Any]:
        pause = self.pause
        return {
            "images": [image.to_json() for image in self.images],
            "hints": [hint.to_json() for hint in self.hints],
            "errors": [error.to_json() for error in self.errors],
            "notes": list(self.notes),
            "pause": None
            if pause is None
            else {
                "status": pause.status,
                "expected": pause.expected,
                "configured": pause.configured,
                "message": pause.message,
            },
        }


def collect(
    found: list[tuple[str, Source]], hints: list[Hint], errors: list[InputError], notes: list[str]
) -> FindReport:
    """Group ``(image, source)`` pairs by image text: sorted, de-duplicated, sources in order;
    a hint whose text was also found as an image is dropped."""
    by_image: dict[str, list[Source]] = {}
    for image, source in found:
        sources = by_image.setdefault(image, [])
        if source not in sources:
            sources.append(source)
    images = tuple(FoundImage(image, tuple(by_image[image])) for image in sorted(by_image))
    kept = sorted({hint for hint in hints if hint.text.strip() not in by_image})
    return FindReport(images, tuple(kept), tuple(errors), tuple(dict.fromkeys(notes)))
