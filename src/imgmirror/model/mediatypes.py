"""Media-type constants for manifests, configs and layers, and predicates over them.

Sources: distribution ``manifest-v2-2.md`` and ``deprecated-schema-v1.md``, OCI image-spec
``media-types.md``, containerd ``core/images/mediatypes.go``. Predicates ignore parameters
(``; charset=utf-8``) and case. This module does no I/O.
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "DOCKER_CONFIG",
    "DOCKER_FOREIGN_LAYER",
    "DOCKER_FOREIGN_LAYER_GZIP",
    "DOCKER_LAYER",
    "DOCKER_LAYER_GZIP",
    "DOCKER_LAYER_ZSTD",
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "DOCKER_PLUGIN_CONFIG",
    "IN_TOTO",
    "MANIFEST_ACCEPT",
    "OCI_CONFIG",
    "OCI_EMPTY",
    "OCI_INDEX",
    "OCI_LAYER",
    "OCI_LAYER_GZIP",
    "OCI_LAYER_ZSTD",
    "OCI_LAYOUT_HEADER",
    "OCI_MANIFEST",
    "OCI_NONDISTRIBUTABLE_LAYER",
    "OCI_NONDISTRIBUTABLE_LAYER_GZIP",
    "OCI_NONDISTRIBUTABLE_LAYER_ZSTD",
    "SCHEMA1_MANIFEST",
    "SCHEMA1_SIGNED_MANIFEST",
    "base_media_type",
    "is_config",
    "is_foreign_layer",
    "is_image_manifest",
    "is_index",
    "is_layer",
    "is_manifest",
    "is_schema1",
    "layer_compression",
]

# Docker (distribution schema 2).
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_PLUGIN_CONFIG = "application/vnd.docker.plugin.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_ZSTD = "application/vnd.docker.image.rootfs.diff.tar.zstd"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar"
DOCKER_FOREIGN_LAYER_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

# Docker schema 1: refused (see manifest.py), never put in Accept.
SCHEMA1_MANIFEST = "application/vnd.docker.distribution.manifest.v1+json"
SCHEMA1_SIGNED_MANIFEST = "application/vnd.docker.distribution.manifest.v1+prettyjws"

# OCI image-spec.
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
# Deprecated in the image-spec; treated like Docker foreign layers.
OCI_NONDISTRIBUTABLE_LAYER = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_NONDISTRIBUTABLE_LAYER_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_NONDISTRIBUTABLE_LAYER_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
#: The empty descriptor's blob is ``{}`` (2 bytes).
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
#: Media type of the ``oci-layout`` file.
OCI_LAYOUT_HEADER = "application/vnd.oci.layout.header.v1+json"
#: Layer type inside buildkit attestation manifests.
IN_TOTO = "application/vnd.in-toto+json"

#: The ``Accept`` list for manifest requests: index types first, never schema 1.
MANIFEST_ACCEPT: tuple[str, ...] = (OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST)

_INDEXES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
_IMAGE_MANIFESTS = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
_SCHEMA1 = frozenset({SCHEMA1_MANIFEST, SCHEMA1_SIGNED_MANIFEST})
_CONFIGS = frozenset({OCI_CONFIG, DOCKER_CONFIG})
_FOREIGN = frozenset(
    {
        DOCKER_FOREIGN_LAYER,
        DOCKER_FOREIGN_LAYER_GZIP,
        OCI_NONDISTRIBUTABLE_LAYER,
        OCI_NONDISTRIBUTABLE_LAYER_GZIP,
        OCI_NONDISTRIBUTABLE_LAYER_ZSTD,
    }
)
_GZIP = frozenset(
    {DOCKER_LAYER_GZIP, DOCKER_FOREIGN_LAYER_GZIP, OCI_LAYER_GZIP, OCI_NONDISTRIBUTABLE_LAYER_GZIP}
)
_ZSTD = frozenset({DOCKER_LAYER_ZSTD, OCI_LAYER_ZSTD, OCI_NONDISTRIBUTABLE_LAYER_ZSTD})
_UNCOMPRESSED = frozenset(
    {DOCKER_LAYER, DOCKER_FOREIGN_LAYER, OCI_LAYER, OCI_NONDISTRIBUTABLE_LAYER}
)
_LAYERS = _GZIP | _ZSTD | _UNCOMPRESSED


def base_media_type(value: str) -> str:
    """``value`` without parameters, stripped and lowercased (``"A/B; charset=x"`` → ``"a/b"``)."""
    return value.split(";", 1)[0].strip().lower()


def is_index(media_type: str) -> bool:
    """Whether ``media_type`` is an OCI index or a Docker manifest list."""
    return base_media_type(media_type) in _INDEXES


def is_image_manifest(media_type: str) -> bool:
    """Whether ``media_type`` is an OCI or Docker schema 2 image manifest."""
    return base_media_type(media_type) in _IMAGE_MANIFESTS


def is_manifest(media_type: str) -> bool:
    """Whether ``media_type`` is any supported manifest type (index or image)."""
    return is_index(media_type) or is_image_manifest(media_type)


def is_schema1(media_type: str) -> bool:
    """Whether ``media_type`` is a deprecated Docker schema 1 manifest (signed or not)."""
    return base_media_type(media_type) in _SCHEMA1


def is_config(media_type: str) -> bool:
    """Whether ``media_type`` is an OCI or Docker image config."""
    return base_media_type(media_type) in _CONFIGS


def is_layer(media_type: str) -> bool:
    """Whether ``media_type`` is a known image layer type (any compression, foreign or not)."""
    return base_media_type(media_type) in _LAYERS


def is_foreign_layer(media_type: str) -> bool:
    """Whether ``media_type`` is a Docker foreign or OCI non-distributable layer.

    Such layers are fetched from their descriptor's ``urls`` and are not pushed to registries.
    """
    return base_media_type(media_type) in _FOREIGN


def layer_compression(media_type: str) -> Literal["gzip", "zstd"] | None:
    """The compression a layer media type declares: ``"gzip"``, ``"zstd"`` or ``None``.

    ``None`` means uncompressed, or not a layer type this module knows.
    """
    base = base_media_type(media_type)
    if base in _GZIP:
        return "gzip"
    if base in _ZSTD:
        return "zstd"
    return None
