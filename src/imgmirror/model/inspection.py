"""What ``inspect`` shows about a manifest and its config, read from their exact bytes.

[describe][] turns manifest bytes into an [ImageInfo][] (media type, digest, size,
the platforms of an index with their digests, the layers with their sizes);
[with_config][] adds what the image config says (platform, created, entrypoint, cmd).
Neither raises on content it cannot parse: a schema 1 manifest, an unknown media type or a
malformed config yields what could be read, and ``problems`` says what could not. This module
does no I/O.
"""

from __future__ import annotations

from typing import Any

import attrs

from imgmirror.errors import ManifestError
from imgmirror.model import mediatypes
from imgmirror.model.digest import Digest
from imgmirror.model.documents import load_json
from imgmirror.model.manifest import Descriptor, ImageIndex, parse_manifest

__all__ = ["Entry", "ImageInfo", "describe", "with_config"]


@attrs.frozen
class Entry:
    """A descriptor as shown: a platform (index entries) or a layer."""

    digest: str
    size: int
    media_type: str
    platform: str | None = None

    @classmethod
    def of(cls, descriptor: Descriptor) -> Entry:
        platform = str(descriptor.platform) if descriptor.platform else None
        return cls(str(descriptor.digest), descriptor.size, descriptor.media_type, platform)


@attrs.frozen
class ImageInfo:
    """What is known about one manifest (and, with [with_config][], its config)."""

    name: str
    digest: str
    size: int
    media_type: str
    manifests: tuple[Entry, ...] = ()
    config: Entry | None = None
    layers: tuple[Entry, ...] = ()
    platform: str | None = None
    created: str | None = None
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    problems: tuple[str, ...] = ()

    @property
    def is_index(self) -> bool:
        return mediatypes.is_index(self.media_type)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``--json`` output); absent facts are left out."""
        out = attrs.asdict(self, filter=lambda _a, v: v is not None and v != ())
        out.setdefault("problems", [])
        return out


def _declared_type(doc: object, content_type: str | None) -> str:
    if isinstance(doc, dict) and isinstance(doc.get("mediaType"), str):
        return str(doc["mediaType"])
    if content_type:
        return mediatypes.base_media_type(content_type)
    if isinstance(doc, dict) and doc.get("schemaVersion") == 1:
        return mediatypes.SCHEMA1_MANIFEST
    return "unknown"


def _best_effort(name: str, raw: bytes, content_type: str | None, problem: str) -> ImageInfo:
    """An unparsable manifest: the facts that do not depend on understanding it."""
    try:
        doc: object = load_json(raw)
    except (ValueError, UnicodeDecodeError):
        doc = None
    layers: tuple[Entry, ...] = ()
    platform = None
    if isinstance(doc, dict) and isinstance(doc.get("fsLayers"), list):  # schema 1
        sums = [x.get("blobSum") for x in doc["fsLayers"] if isinstance(x, dict)]
        layers = tuple(Entry(str(s), -1, "") for s in reversed(sums) if isinstance(s, str))
        if isinstance(doc.get("architecture"), str):
            platform = f"linux/{doc['architecture']}"
    return ImageInfo(
        name=name,
        digest=str(Digest.of(raw)),
        size=len(raw),
        media_type=_declared_type(doc, content_type),
        layers=layers,
        platform=platform,
        problems=(problem,),
    )


def describe(name: str, raw: bytes, content_type: str | None = None) -> ImageInfo:
    """Describe manifest bytes as served (``content_type`` from the registry, if any)."""
    try:
        manifest = parse_manifest(raw, content_type)
    except ManifestError as exc:
        return _best_effort(name, raw, content_type, f"could not parse the manifest: {exc}")
    base = ImageInfo(
        name=name, digest=str(manifest.digest), size=len(raw), media_type=manifest.media_type
    )
    if isinstance(manifest, ImageIndex):
        return attrs.evolve(base, manifests=tuple(Entry.of(d) for d in manifest.manifests))
    return attrs.evolve(
        base,
        config=Entry.of(manifest.config),
        layers=tuple(Entry.of(d) for d in manifest.layers),
    )


def _strings(value: object) -> tuple[str, ...] | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def with_config(info: ImageInfo, raw: bytes) -> ImageInfo:
    """``info`` plus the platform, creation time, entrypoint and cmd of its image config."""
    try:
        doc = load_json(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return attrs.evolve(
            info, problems=(*info.problems, f"could not parse the image config: {exc}")
        )
    if not isinstance(doc, dict):
        return attrs.evolve(
            info, problems=(*info.problems, "the image config is not a JSON object")
        )
    run: dict[str, Any] = doc["config"] if isinstance(doc.get("config"), dict) else {}
    parts = [doc.get("os"), doc.get("architecture"), doc.get("variant")]
    platform = "/".join(p for p in parts if isinstance(p, str) and p) or None
    created = doc.get("created")
    return attrs.evolve(
        info,
        platform=platform,
        created=created if isinstance(created, str) else None,
        entrypoint=_strings(run.get("Entrypoint")),
        cmd=_strings(run.get("Cmd")),
    )
