"""Deterministic test images, built in memory (pure Python; no registry, no docker).

Everything returned holds the raw bytes and digests of every blob and manifest, so tests can
seed registries and compare results byte for byte:

* :func:`make_layer` -> :class:`Layer` (gzip / uncompressed / zstd; Docker or OCI media type)
* :func:`make_image` -> :class:`Image` (Docker v2s2 or OCI manifest + config + layers)
* :func:`make_index` -> :class:`Index` (Docker manifest list or OCI index)
* :func:`multiarch_docker_list` (linux/amd64, linux/arm64, linux/arm/v7, linux/ppc64le)
* :func:`oci_index_with_attestations` (buildkit-style, attestation manifests unknown/unknown)
* :func:`build_pause_binary` / :func:`pause_image` (a real static binary that blocks)
* :func:`docker_archive` (a ``docker load``-able tar built by hand, independent of imgmirror)

Same inputs give the same bytes: tar mtimes/uids are fixed, gzip has mtime 0, JSON is compact
with sorted keys.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import platform as _platform
import shutil
import subprocess
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import zstandard

__all__ = [
    "ATTESTATION_TYPE",
    "DOCKER_CONFIG",
    "DOCKER_LAYER_GZIP",
    "DOCKER_LAYER_TAR",
    "DOCKER_LAYER_ZSTD",
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "IN_TOTO",
    "MULTIARCH_PLATFORMS",
    "OCI_CONFIG",
    "OCI_INDEX",
    "OCI_LAYER_GZIP",
    "OCI_LAYER_TAR",
    "OCI_LAYER_ZSTD",
    "OCI_MANIFEST",
    "Blob",
    "Compression",
    "Entry",
    "Image",
    "Index",
    "Layer",
    "ManifestFormat",
    "Platform",
    "build_pause_binary",
    "digest_of",
    "docker_archive",
    "host_platform",
    "layer_tar",
    "make_config",
    "make_image",
    "make_index",
    "make_layer",
    "multiarch_docker_list",
    "oci_index_with_attestations",
    "pause_image",
]

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_ZSTD = "application/vnd.docker.image.rootfs.diff.tar.zstd"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
IN_TOTO = "application/vnd.in-toto+json"
ATTESTATION_TYPE = "attestation-manifest"

Compression = Literal["gzip", "none", "zstd"]
ManifestFormat = Literal["docker", "oci"]

FIXED_MTIME = 1_700_000_000  # 2023-11-14T22:13:20Z
CREATED = "2024-01-01T00:00:00Z"

_LAYER_TYPES: dict[tuple[ManifestFormat, Compression], str] = {
    ("docker", "gzip"): DOCKER_LAYER_GZIP,
    ("docker", "none"): DOCKER_LAYER_TAR,
    ("docker", "zstd"): DOCKER_LAYER_ZSTD,
    ("oci", "gzip"): OCI_LAYER_GZIP,
    ("oci", "none"): OCI_LAYER_TAR,
    ("oci", "zstd"): OCI_LAYER_ZSTD,
}


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Platform:
    os: str = "linux"
    architecture: str = "amd64"
    variant: str | None = None

    def as_dict(self) -> dict[str, str]:
        d = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            d["variant"] = self.variant
        return d

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.split("/")
        return cls(parts[0], parts[1], parts[2] if len(parts) > 2 else None)


MULTIARCH_PLATFORMS = (
    Platform("linux", "amd64"),
    Platform("linux", "arm64"),
    Platform("linux", "arm", "v7"),
    Platform("linux", "ppc64le"),
)


def host_platform() -> Platform:
    machine = _platform.machine().lower()
    mapping = {
        "x86_64": Platform("linux", "amd64"),
        "amd64": Platform("linux", "amd64"),
        "aarch64": Platform("linux", "arm64"),
        "arm64": Platform("linux", "arm64"),
        "armv7l": Platform("linux", "arm", "v7"),
        "ppc64le": Platform("linux", "ppc64le"),
        "s390x": Platform("linux", "s390x"),
        "riscv64": Platform("linux", "riscv64"),
    }
    return mapping.get(machine, Platform("linux", machine))


@dataclass(frozen=True)
class Blob:
    """Raw bytes plus how a manifest refers to them."""

    data: bytes
    media_type: str
    digest: str = ""
    annotations: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        if not self.digest:
            object.__setattr__(self, "digest", digest_of(self.data))

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def hex(self) -> str:
        return self.digest.split(":", 1)[1]

    def descriptor(self) -> dict[str, Any]:
        d: dict[str, Any] = {"mediaType": self.media_type, "size": self.size, "digest": self.digest}
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        return d


@dataclass(frozen=True)
class Layer(Blob):
    """A layer blob; ``uncompressed`` is the tar, ``diff_id`` its digest."""

    uncompressed: bytes = b""
    compression: Compression = "gzip"

    @property
    def diff_id(self) -> str:
        return digest_of(self.uncompressed)


@dataclass(frozen=True)
class Image:
    """One image manifest with its config and layers."""

    manifest: bytes
    media_type: str
    config: Blob
    layers: tuple[Blob, ...]
    platform: Platform | None
    annotations: Mapping[str, str] | None = None
    """Annotations for the descriptor that points at this manifest (in an index)."""
    digest: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "digest", digest_of(self.manifest))

    @property
    def size(self) -> int:
        return len(self.manifest)

    @property
    def blobs(self) -> tuple[Blob, ...]:
        """Config first, then layers."""
        return (self.config, *self.layers)

    @property
    def manifest_json(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.manifest)
        return value

    @property
    def config_json(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.config.data)
        return value

    @property
    def diff_ids(self) -> list[str]:
        return list(self.config_json.get("rootfs", {}).get("diff_ids", []))

    def descriptor(self, *, with_platform: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {
            "mediaType": self.media_type,
            "size": self.size,
            "digest": self.digest,
        }
        if with_platform and self.platform is not None:
            d["platform"] = self.platform.as_dict()
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        return d


@dataclass(frozen=True)
class Index:
    """A manifest list / OCI index and every child image."""

    manifest: bytes
    media_type: str
    images: tuple[Image, ...]
    digest: str = field(default="")

    def __post_init__(self) -> None:
        object.__setattr__(self, "digest", digest_of(self.manifest))

    @property
    def size(self) -> int:
        return len(self.manifest)

    @property
    def manifest_json(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.manifest)
        return value

    @property
    def blobs(self) -> tuple[Blob, ...]:
        """All distinct blobs of all children (configs and layers)."""
        seen: dict[str, Blob] = {}
        for image in self.images:
            for blob in image.blobs:
                seen.setdefault(blob.digest, blob)
        return tuple(seen.values())

    @property
    def platform_images(self) -> tuple[Image, ...]:
        """Children that are runnable images (attestation manifests excluded)."""
        return tuple(
            i
            for i in self.images
            if (i.annotations or {}).get("vnd.docker.reference.type") != ATTESTATION_TYPE
        )

    @property
    def attestations(self) -> tuple[Image, ...]:
        return tuple(i for i in self.images if i not in self.platform_images)

    def image_for(self, platform: Platform | str) -> Image:
        wanted = Platform.parse(platform) if isinstance(platform, str) else platform
        for image in self.platform_images:
            if image.platform == wanted:
                return image
        raise KeyError(str(wanted))


# -- layers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """A tar member. ``kind`` is ``file``, ``dir`` or ``symlink`` (``data`` is the target)."""

    data: bytes = b""
    mode: int = 0o644
    kind: Literal["file", "dir", "symlink"] = "file"


def layer_tar(entries: Mapping[str, bytes | Entry]) -> bytes:
    """An uncompressed, deterministic tar. Parent directories are added automatically.

    Paths are relative (a leading ``/`` is stripped); members are sorted; owner 0:0; mtime
    fixed.
    """
    normalized: dict[str, Entry] = {}
    for raw_path, value in entries.items():
        path = raw_path.strip("/")
        entry = value if isinstance(value, Entry) else Entry(value)
        parts = path.split("/")
        for i in range(1, len(parts)):
            normalized.setdefault("/".join(parts[:i]), Entry(mode=0o755, kind="dir"))
        normalized[path] = entry
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(normalized):
            entry = normalized[path]
            info = tarfile.TarInfo(path)
            info.mtime = FIXED_MTIME
            info.mode = entry.mode
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if entry.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif entry.kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = entry.data.decode()
                tar.addfile(info)
            else:
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
    return buf.getvalue()


def compress(data: bytes, compression: Compression) -> bytes:
    if compression == "gzip":
        return gzip.compress(data, compresslevel=6, mtime=0)
    if compression == "zstd":
        return zstandard.ZstdCompressor(level=3, write_content_size=True).compress(data)
    return data


def make_layer(
    entries: Mapping[str, bytes | Entry],
    *,
    compression: Compression = "gzip",
    fmt: ManifestFormat = "docker",
    media_type: str | None = None,
    annotations: Mapping[str, str] | None = None,
) -> Layer:
    """A layer from ``{path: bytes | Entry}``."""
    tar = layer_tar(entries)
    return Layer(
        data=compress(tar, compression),
        media_type=media_type or _LAYER_TYPES[(fmt, compression)],
        annotations=annotations,
        uncompressed=tar,
        compression=compression,
    )


# -- configs and manifests -------------------------------------------------------------------


def make_config(
    layers: Sequence[Layer],
    *,
    platform: Platform = Platform(),
    entrypoint: Sequence[str] | None = None,
    cmd: Sequence[str] | None = None,
    env: Sequence[str] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",),
    labels: Mapping[str, str] | None = None,
    created: str = CREATED,
) -> bytes:
    """Image config JSON (same shape for Docker and OCI)."""
    container_config: dict[str, Any] = {"Env": list(env)}
    if entrypoint is not None:
        container_config["Entrypoint"] = list(entrypoint)
    if cmd is not None:
        container_config["Cmd"] = list(cmd)
    if labels:
        container_config["Labels"] = dict(labels)
    config: dict[str, Any] = {
        "architecture": platform.architecture,
        "os": platform.os,
        "created": created,
        "config": container_config,
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [
            {"created": created, "created_by": f"imgmirror-tests layer {i}"}
            for i in range(len(layers))
        ],
    }
    if platform.variant:
        config["variant"] = platform.variant
    return _json(config)


def image_from_parts(
    config: Blob,
    layers: Sequence[Blob],
    *,
    fmt: ManifestFormat = "docker",
    platform: Platform | None = None,
    manifest_annotations: Mapping[str, str] | None = None,
    descriptor_annotations: Mapping[str, str] | None = None,
    artifact_type: str | None = None,
    subject: Mapping[str, Any] | None = None,
) -> Image:
    """Assemble a manifest around existing blobs."""
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST if fmt == "docker" else OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [layer.descriptor() for layer in layers],
    }
    if fmt == "oci":
        if manifest_annotations:
            manifest["annotations"] = dict(manifest_annotations)
        if artifact_type:
            manifest["artifactType"] = artifact_type
        if subject:
            manifest["subject"] = dict(subject)
    return Image(
        manifest=_json(manifest),
        media_type=manifest["mediaType"],
        config=config,
        layers=tuple(layers),
        platform=platform,
        annotations=descriptor_annotations,
    )


def make_image(
    layers: Sequence[Layer] | None = None,
    *,
    fmt: ManifestFormat = "docker",
    platform: Platform | str = "linux/amd64",
    marker: str = "",
    compression: Compression = "gzip",
    entrypoint: Sequence[str] | None = None,
    cmd: Sequence[str] | None = ("/bin/sh",),
    labels: Mapping[str, str] | None = None,
    manifest_annotations: Mapping[str, str] | None = None,
    descriptor_annotations: Mapping[str, str] | None = None,
) -> Image:
    """A single-platform image.

    Without ``layers`` it gets two small layers whose content mentions ``marker`` and the
    platform, so images with different markers/platforms never share blobs.
    """
    plat = Platform.parse(platform) if isinstance(platform, str) else platform
    if layers is None:
        layers = [
            make_layer(
                {"etc/imgmirror-test/base": f"base layer {plat} {marker}\n".encode()},
                compression=compression,
                fmt=fmt,
            ),
            make_layer(
                {
                    "etc/imgmirror-test/app": Entry(f"app {plat} {marker}\n".encode(), 0o755),
                    "etc/imgmirror-test/link": Entry(b"app", kind="symlink"),
                },
                compression=compression,
                fmt=fmt,
            ),
        ]
    labels = dict(labels or {})
    if marker:
        labels.setdefault("org.imgmirror.test.marker", marker)
    config = Blob(
        make_config(layers, platform=plat, entrypoint=entrypoint, cmd=cmd, labels=labels),
        DOCKER_CONFIG if fmt == "docker" else OCI_CONFIG,
    )
    return image_from_parts(
        config,
        layers,
        fmt=fmt,
        platform=plat,
        manifest_annotations=manifest_annotations,
        descriptor_annotations=descriptor_annotations,
    )


def make_index(
    images: Sequence[Image],
    *,
    fmt: ManifestFormat = "docker",
    annotations: Mapping[str, str] | None = None,
) -> Index:
    """A Docker manifest list or an OCI index over ``images`` (in the given order)."""
    index: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST_LIST if fmt == "docker" else OCI_INDEX,
        "manifests": [image.descriptor() for image in images],
    }
    if fmt == "oci" and annotations:
        index["annotations"] = dict(annotations)
    return Index(manifest=_json(index), media_type=index["mediaType"], images=tuple(images))


def multiarch_docker_list(
    marker: str = "", platforms: Iterable[Platform] = MULTIARCH_PLATFORMS
) -> Index:
    """A Docker manifest list for linux/amd64, linux/arm64, linux/arm/v7, linux/ppc64le."""
    return make_index([make_image(platform=p, marker=marker) for p in platforms])


def attestation_for(image: Image, *, marker: str = "") -> Image:
    """A buildkit-style attestation manifest (SPDX in-toto statement) for ``image``."""
    statement = _json(
        {
            "_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": "https://spdx.dev/Document",
            "subject": [
                {"name": "pkg:docker/imgmirror-test", "digest": {"sha256": image.digest[7:]}}
            ],
            "predicate": {"spdxVersion": "SPDX-2.3", "name": f"sbom {marker}".strip()},
        }
    )
    layer = Layer(
        data=statement,
        media_type=IN_TOTO,
        annotations={"in-toto.io/predicate-type": "https://spdx.dev/Document"},
        uncompressed=statement,
        compression="none",
    )
    config = Blob(
        _json(
            {
                "architecture": "unknown",
                "os": "unknown",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
            }
        ),
        OCI_CONFIG,
    )
    return image_from_parts(
        config,
        [layer],
        fmt="oci",
        platform=Platform("unknown", "unknown"),
        descriptor_annotations={
            "vnd.docker.reference.digest": image.digest,
            "vnd.docker.reference.type": ATTESTATION_TYPE,
        },
    )


def oci_index_with_attestations(
    marker: str = "",
    platforms: Iterable[Platform] = (Platform("linux", "amd64"), Platform("linux", "arm64")),
) -> Index:
    """An OCI index like ``docker buildx build --sbom`` pushes: one OCI image per platform,
    then one attestation manifest (platform unknown/unknown) per image."""
    images = [make_image(platform=p, marker=marker, fmt="oci") for p in platforms]
    attestations = [attestation_for(i, marker=marker) for i in images]
    return make_index([*images, *attestations], fmt="oci")


# -- pause image -----------------------------------------------------------------------------

PAUSE_C = r"""
#include <signal.h>
#include <unistd.h>

static void on_signal(int sig) { (void)sig; _exit(0); }

int main(void) {
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    for (;;) pause();
    return 0;
}
"""


def build_pause_binary(tmpdir: Path) -> Path:
    """Compile a static ``pause`` binary (blocks; exits 0 on SIGTERM/SIGINT) into tmpdir."""
    gcc = shutil.which("gcc")
    if gcc is None:
        raise FileNotFoundError("gcc not found on PATH")
    tmpdir.mkdir(parents=True, exist_ok=True)
    src = tmpdir / "pause.c"
    out = tmpdir / "pause"
    src.write_text(PAUSE_C)
    subprocess.run(
        [gcc, "-static", "-Os", "-s", "-o", str(out), str(src)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return out


def pause_image(
    binary: bytes | Path,
    *,
    fmt: ManifestFormat = "docker",
    platform: Platform | None = None,
    marker: str = "",
    compression: Compression = "gzip",
) -> Image:
    """Single-layer image with the binary at ``/pause``, Entrypoint ``["/pause"]``.

    ``platform`` defaults to the host (linux/amd64 here); ``marker`` adds a file so the
    layer digest differs per marker.
    """
    data = binary.read_bytes() if isinstance(binary, Path) else binary
    entries: dict[str, bytes | Entry] = {"pause": Entry(data, 0o755)}
    if marker:
        entries["etc/imgmirror-test-marker"] = marker.encode()
    layer = make_layer(entries, compression=compression, fmt=fmt)
    plat = platform or host_platform()
    config = Blob(
        make_config([layer], platform=plat, entrypoint=["/pause"], cmd=None, env=()),
        DOCKER_CONFIG if fmt == "docker" else OCI_CONFIG,
    )
    return image_from_parts(config, [layer], fmt=fmt, platform=plat)


# -- hand-made docker-archive ----------------------------------------------------------------


def docker_archive(items: Sequence[tuple[Image, Sequence[str]]]) -> bytes:
    """A ``docker save``-style tar (``manifest.json``, config, layers) for ``docker load`` and
    ``ctr images import``. ``items`` = ``[(image, ["repo:tag", ...]), ...]``.

    Layers are stored as they are in the registry (compressed); docker and containerd both
    decompress on load. Written independently of imgmirror's own archive writer.
    """
    files: dict[str, bytes] = {}
    manifest: list[dict[str, Any]] = []
    for image, tags in items:
        config_name = f"{image.config.hex}.json"
        files[config_name] = image.config.data
        layer_names = []
        for layer in image.layers:
            name = f"{layer.hex}/layer.tar"
            files[name] = layer.data
            layer_names.append(name)
        manifest.append({"Config": config_name, "RepoTags": list(tags), "Layers": layer_names})
    files["manifest.json"] = json.dumps(manifest).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({n.rsplit("/", 1)[0] for n in files if "/" in n})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            info.mtime = FIXED_MTIME
            tar.addfile(info)
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mode = 0o644
            info.mtime = FIXED_MTIME
            tar.addfile(info, io.BytesIO(files[name]))
    return buf.getvalue()
