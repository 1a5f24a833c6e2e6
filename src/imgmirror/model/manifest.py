"""Manifests, indexes and image configs: parse raw bytes into frozen values that keep the bytes.

The raw bytes are kept exactly as received and the digest is computed from them; nothing is
ever re-serialised to get a digest. Docker schema 1 is refused (Docker 28.2, distribution v3 and
containerd 2.1 dropped it). Platform selection skips buildkit attestation manifests
(``unknown/unknown``, ``vnd.docker.reference.type: attestation-manifest``) and returns the first
matching entry (OCI image-spec ``image-index.md``). This module does no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from imgmirror.errors import (
    InvalidDigest,
    InvalidManifest,
    InvalidPlatform,
    PlatformNotFound,
    UnsupportedMediaType,
)
from imgmirror.model import mediatypes
from imgmirror.model.digest import Digest
from imgmirror.model.documents import load_json
from imgmirror.model.platform import Platform

__all__ = [
    "Descriptor",
    "ImageConfig",
    "ImageIndex",
    "ImageManifest",
    "parse_config",
    "parse_manifest",
]

_REFERENCE_TYPE = "vnd.docker.reference.type"
_KIND_NAMES = {str: "a string", int: "an integer", list: "a list", dict: "an object"}
_SCHEMA1_HINT = "re-push the image with a modern client (docker 1.10+, buildah, skopeo)"


def _freeze(value: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType(dict(value or {}))


def _strings(value: Iterable[str]) -> tuple[str, ...]:
    # A Python function, not the builtin ``tuple``: attrs reads a converter's signature, and
    # for a builtin that compiles the tokenizer (about 8 ms of every start-up).
    return tuple(value)


def _load_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        doc = load_json(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidManifest(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidManifest(f"{what} must be a JSON object, not {type(doc).__name__}")
    return doc


def _require(obj: Mapping[str, Any], key: str, kind: type, what: str) -> Any:
    if key not in obj:
        raise InvalidManifest(f"{what} has no {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        expected = _KIND_NAMES.get(kind, kind.__name__)
        raise InvalidManifest(f"{what}: {key!r} must be {expected}, not {value!r}")
    return value


def _parse_digest(value: str, what: str) -> Digest:
    try:
        return Digest.parse(value)
    except InvalidDigest as exc:
        raise InvalidManifest(f"{what}: {exc.message}") from None


@attrs.frozen
class Descriptor:
    """A pointer to content: media type, digest and size, plus optional metadata.

    Attributes:
        media_type: What the content is.
        digest: Its digest.
        size: Its exact size in bytes.
        platform: For index entries, the platform of the image.
        annotations: Read-only string mapping (not part of the hash).
        urls: Where foreign layers can be fetched.
    """

    media_type: str
    digest: Digest
    size: int
    platform: Platform | None = None
    annotations: Mapping[str, str] = attrs.field(factory=dict, converter=_freeze, hash=False)
    urls: tuple[str, ...] = attrs.field(default=(), converter=_strings)

    @classmethod
    def from_json(cls, obj: object, what: str = "descriptor") -> Descriptor:
        """Build from an OCI/Docker descriptor object.

        Raises:
            InvalidManifest: If a required field is missing or has the wrong type.
        """
        if not isinstance(obj, dict):
            raise InvalidManifest(f"{what} must be a JSON object, not {obj!r}")
        media_type = _require(obj, "mediaType", str, what)
        digest = _parse_digest(_require(obj, "digest", str, what), what)
        size = _require(obj, "size", int, what)
        if size < 0:
            raise InvalidManifest(f"{what}: 'size' must not be negative")
        platform = None
        if obj.get("platform") is not None:
            if not isinstance(obj["platform"], dict):
                raise InvalidManifest(f"{what}: 'platform' must be an object")
            try:
                platform = Platform.from_json(obj["platform"])
            except InvalidPlatform as exc:
                raise InvalidManifest(f"{what}: {exc.message}") from None
        annotations = obj.get("annotations") or {}
        if not isinstance(annotations, dict) or not all(
            isinstance(v, str) for v in annotations.values()
        ):
            raise InvalidManifest(f"{what}: 'annotations' must map strings to strings")
        urls = obj.get("urls") or []
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise InvalidManifest(f"{what}: 'urls' must be a list of strings")
        return cls(media_type, digest, size, platform, annotations, tuple(urls))

    def to_json(self) -> dict[str, Any]:
        """The descriptor object, keys in OCI order, empty optional fields omitted."""
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": str(self.digest),
            "size": self.size,
        }
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        return out


@attrs.frozen
class ImageManifest:
    """An OCI or Docker schema 2 image manifest, with its raw bytes."""

    raw: bytes = attrs.field(repr=False)
    media_type: str
    digest: Digest
    config: Descriptor
    layers: tuple[Descriptor, ...]

    @property
    def blobs(self) -> tuple[Descriptor, ...]:
        """The config descriptor, then the layer descriptors."""
        return (self.config, *self.layers)


@attrs.frozen
class ImageIndex:
    """An OCI index or Docker manifest list, with its raw bytes."""

    raw: bytes = attrs.field(repr=False)
    media_type: str
    digest: Digest
    manifests: tuple[Descriptor, ...]

    def images(self) -> tuple[Descriptor, ...]:
        """The entries that are images, skipping buildkit attestation manifests."""
        return tuple(d for d in self.manifests if not _is_attestation(d))

    def select(self, platform: Platform) -> Descriptor:
        """The first image entry whose platform matches ``platform``.

        Raises:
            PlatformNotFound: If no entry matches; it lists the available platforms.
        """
        images = self.images()
        for entry in images:
            if entry.platform is not None and entry.platform.matches(platform):
                return entry
        available = tuple(dict.fromkeys(str(d.platform) for d in images if d.platform))
        raise PlatformNotFound(f"no {platform} image in {self.digest}", available)


def _is_attestation(descriptor: Descriptor) -> bool:
    if descriptor.annotations.get(_REFERENCE_TYPE) == "attestation-manifest":
        return True
    p = descriptor.platform
    return p is not None and p.os == "unknown" and p.architecture == "unknown"


def _media_type(doc: Mapping[str, Any], content_type: str | None) -> str:
    declared = doc.get("mediaType")
    if isinstance(declared, str) and declared:
        return mediatypes.base_media_type(declared)
    if content_type:
        base = mediatypes.base_media_type(content_type)
        if mediatypes.is_manifest(base) or mediatypes.is_schema1(base):
            return base
    if "manifests" in doc:
        return mediatypes.OCI_INDEX
    if "config" in doc and "layers" in doc:
        return mediatypes.OCI_MANIFEST
    if doc.get("schemaVersion") == 1 or "fsLayers" in doc:
        return mediatypes.SCHEMA1_MANIFEST
    raise InvalidManifest(
        "cannot tell the manifest type: no 'mediaType', and neither 'manifests' nor "
        "'config' and 'layers'"
    )


def parse_manifest(raw: bytes, content_type: str | None = None) -> ImageManifest | ImageIndex:
    """Parse an image manifest or index from the exact bytes a registry served.

    The media type comes from the body's ``mediaType``, else ``content_type`` (parameters
    stripped), else is inferred from the fields present.

    Args:
        raw: The manifest bytes.
        content_type: The ``Content-Type`` it was served with, if known.

    Raises:
        UnsupportedMediaType: For schema 1 and for media types that are not manifests.
        InvalidManifest: For malformed JSON or missing or mistyped fields.
    """
    doc = _load_object(raw, "manifest")
    media_type = _media_type(doc, content_type)
    if doc.get("schemaVersion") == 1 or mediatypes.is_schema1(media_type):
        raise UnsupportedMediaType(
            "Docker schema 1 manifests are not supported", hint=_SCHEMA1_HINT
        )
    version = doc.get("schemaVersion")
    if version is not None and version != 2:
        raise UnsupportedMediaType(f"unsupported manifest schemaVersion {version!r}")
    digest = Digest.of(raw)
    if mediatypes.is_index(media_type):
        entries = _require(doc, "manifests", list, "index")
        manifests = tuple(
            Descriptor.from_json(e, f"index entry {i}") for i, e in enumerate(entries)
        )
        return ImageIndex(bytes(raw), media_type, digest, manifests)
    if mediatypes.is_image_manifest(media_type):
        config = Descriptor.from_json(_require(doc, "config", dict, "manifest"), "config")
        layers = tuple(
            Descriptor.from_json(e, f"layer {i}")
            for i, e in enumerate(_require(doc, "layers", list, "manifest"))
        )
        return ImageManifest(bytes(raw), media_type, digest, config, layers)
    raise UnsupportedMediaType(f"unsupported manifest media type {media_type!r}")


@attrs.frozen
class ImageConfig:
    """The parts of an image config imgmirror needs, with its raw bytes."""

    raw: bytes = attrs.field(repr=False)
    digest: Digest
    os: str
    architecture: str
    variant: str | None
    diff_ids: tuple[Digest, ...]

    @property
    def platform(self) -> Platform:
        """The normalised platform the config declares.

        Raises:
            InvalidPlatform: If the declared os or architecture is malformed.
        """
        return Platform(self.os, self.architecture, self.variant)


def parse_config(raw: bytes) -> ImageConfig:
    """Parse an OCI/Docker image config.

    Raises:
        InvalidManifest: For malformed JSON, a missing ``os``/``architecture`` or bad
            ``rootfs.diff_ids``.
    """
    doc = _load_object(raw, "image config")
    os_name = _require(doc, "os", str, "image config")
    arch = _require(doc, "architecture", str, "image config")
    variant = doc.get("variant")
    if variant is not None and not isinstance(variant, str):
        raise InvalidManifest(f"image config: 'variant' must be a string, not {variant!r}")
    rootfs = _require(doc, "rootfs", dict, "image config")
    ids = _require(rootfs, "diff_ids", list, "image config rootfs")
    diff_ids: list[Digest] = []
    for i, value in enumerate(ids):
        if not isinstance(value, str):
            raise InvalidManifest(f"image config: diff_ids[{i}] must be a string, not {value!r}")
        diff_ids.append(_parse_digest(value, f"image config diff_ids[{i}]"))
    return ImageConfig(bytes(raw), Digest.of(raw), os_name, arch, variant or None, tuple(diff_ids))
