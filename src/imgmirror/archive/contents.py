"""What images an archive holds, checked for consistency before anything is pushed.

[read_contents][] recognises the two families of image tarballs (and, through
[imgmirror.archive.dirlayout][imgmirror.archive.dirlayout], skopeo's ``dir:`` layout):

* **OCI layout** (``oci-layout`` + ``index.json``; skopeo ``oci-archive``, containerd and
  Docker 25+ ``docker save``, imgmirror's own archives): the manifests are kept byte for
  byte, so pushing them preserves their digests. An index whose children are not all in the
  archive (one platform saved out of a multi-arch image) is replaced by the platform
  manifest(s) that are, and a note says so.
* **Docker archive** (``manifest.json`` only; ``docker save`` of Docker 1.10-24, skopeo
  ``docker-archive``, crane tarballs): no manifest is stored; the image is its config and
  its layer files, from which [imgmirror.archive.convert][imgmirror.archive.convert] builds one.

Any ``manifest.json`` is validated in both cases: its paths must exist, its configs parse,
and its layer counts equal the configs' ``rootfs.diff_ids``.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from imgmirror.archive.dirlayout import dir_contents, is_dir_layout
from imgmirror.archive.images import (
    ArchiveContents,
    DockerImage,
    DockerLayer,
    Manifest,
    OciImage,
    blob_path,
    digest_from_name,
    expand_image,
    load_manifest,
    read_json,
)
from imgmirror.archive.reader import Archive, safe_name
from imgmirror.archive.referrers import is_referrer_entry
from imgmirror.errors import ArchiveError, ImgmirrorError, InvalidReference
from imgmirror.model import mediatypes
from imgmirror.model.digest import Digest
from imgmirror.model.manifest import Descriptor, ImageIndex, parse_config, parse_manifest
from imgmirror.model.reference import Reference

__all__ = [
    "ArchiveContents",
    "DockerImage",
    "DockerLayer",
    "Manifest",
    "OciImage",
    "blob_path",
    "digest_from_name",
    "read_contents",
]

NAME_ANNOTATION = "io.containerd.image.name"
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def read_contents(archive: Archive) -> ArchiveContents:
    """Recognise the layout and list the images, checking every reference in the archive.

    Raises:
        ArchiveError: missing files, malformed JSON, a ``manifest.json`` that does not match
            its configs, or a stored manifest that does not hash to its name.
    """
    if is_dir_layout(archive):
        return dir_contents(archive)
    has_docker = archive.has_file("manifest.json")
    docker = docker_images(archive) if has_docker else ()
    if archive.has_file("oci-layout"):
        images, notes, referrers = oci_images(archive)
        return ArchiveContents("oci", images, notes, referrers)
    if not has_docker:
        raise ArchiveError(
            f"{archive.path} is not an image archive: it has neither manifest.json nor "
            "oci-layout and index.json (nor a dir: layout's version)"
        )
    return ArchiveContents("docker", docker)


# -- Docker archives (manifest.json) --------------------------------------------------------


def _path(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ArchiveError(f"manifest.json: {what} must be a non-empty string, not {value!r}")
    return safe_name(value)


def _repo_tags(entry: dict[str, Any], i: int) -> list[Reference]:
    tags = entry.get("RepoTags") or []
    if not isinstance(tags, list):
        raise ArchiveError(f"manifest.json entry {i}: RepoTags must be a list")
    names = []
    for tag in tags:
        try:
            ref = Reference.parse(tag) if isinstance(tag, str) else None
        except InvalidReference as exc:
            raise ArchiveError(f"manifest.json entry {i}: {exc.message}") from None
        if ref is None or ref.digest is not None:
            raise ArchiveError(f"manifest.json entry {i}: RepoTags entry {tag!r} is not name:tag")
        names.append(ref)
    return names


def _repositories(archive: Archive) -> dict[str, list[Reference]]:
    """The legacy ``repositories`` file: layer id -> names."""
    if not archive.has_file("repositories"):
        return {}
    doc = read_json(archive, "repositories")
    out: dict[str, list[Reference]] = {}
    if not isinstance(doc, dict):
        return out
    for name, tags in doc.items():
        if not isinstance(tags, dict):
            continue
        for tag, layer_id in tags.items():
            try:
                out.setdefault(str(layer_id), []).append(Reference.parse(f"{name}:{tag}"))
            except InvalidReference:
                continue
    return out


def docker_images(archive: Archive) -> tuple[DockerImage, ...]:
    """Validate ``manifest.json`` and describe each of its entries."""
    doc = read_json(archive, "manifest.json")
    if not isinstance(doc, list):
        raise ArchiveError("manifest.json must be a JSON array of images")
    legacy_names = _repositories(archive)
    images = []
    for i, entry in enumerate(doc):
        if not isinstance(entry, dict):
            raise ArchiveError(f"manifest.json entry {i} is not an object")
        config_name = _path(entry.get("Config"), f"entry {i} Config")
        layer_names = entry.get("Layers")
        if not isinstance(layer_names, list):
            raise ArchiveError(f"manifest.json entry {i}: Layers must be a list")
        paths = [_path(n, f"entry {i} Layers[{j}]") for j, n in enumerate(layer_names)]
        if not archive.has_file(config_name):
            raise ArchiveError(f"manifest.json entry {i}: config {config_name!r} is missing")
        config_raw = archive.read(config_name)
        try:
            config = parse_config(config_raw)
        except ImgmirrorError as exc:
            raise ArchiveError(f"manifest.json entry {i}: config {config_name}: {exc}") from None
        claimed = digest_from_name(config_name)
        if claimed is not None and claimed != config.digest:
            raise ArchiveError(
                f"manifest.json entry {i}: config {config_name!r} hashes to {config.digest}"
            )
        if len(paths) != len(config.diff_ids):
            raise ArchiveError(
                f"manifest.json entry {i} is not what it claims: it lists {len(paths)} "
                f"layers but its config has {len(config.diff_ids)} diff_ids"
            )
        sources = entry.get("LayerSources") or {}
        layers = []
        for path, diff_id in zip(paths, config.diff_ids, strict=True):
            foreign = _foreign_source(sources, diff_id)
            if foreign is None and not archive.has_file(path):
                raise ArchiveError(f"manifest.json entry {i}: layer {path!r} is missing")
            layers.append(DockerLayer(path, diff_id, digest_from_name(path), foreign))
        names = _repo_tags(entry, i)
        if not names and paths:
            names = legacy_names.get(paths[-1].split("/")[0], []) or legacy_names.get(
                config.diff_ids[-1].hex, []
            )
        images.append(DockerImage(tuple(names), config_raw, tuple(layers)))
    return tuple(images)


def _foreign_source(sources: object, diff_id: Digest) -> Descriptor | None:
    if not isinstance(sources, dict) or str(diff_id) not in sources:
        return None
    try:
        descriptor = Descriptor.from_json(sources[str(diff_id)], f"LayerSources[{diff_id}]")
    except ImgmirrorError as exc:
        raise ArchiveError(f"manifest.json: {exc.message}") from None
    return descriptor if mediatypes.is_foreign_layer(descriptor.media_type) else None


# -- OCI layouts -----------------------------------------------------------------------------


def _names(descriptors: list[Descriptor]) -> tuple[tuple[Reference, ...], tuple[str, ...]]:
    """Full names (``io.containerd.image.name``, or a full ``ref.name``), and bare tags: the
    ``ref.name`` skopeo, podman and containerd write (``3.19``) names no repository."""
    names: list[Reference] = []
    tags: list[str] = []
    for d in descriptors:
        text = d.annotations.get(NAME_ANNOTATION) or d.annotations.get(REF_NAME_ANNOTATION, "")
        if "/" not in text and ":" not in text:
            if _TAG.fullmatch(text) and text not in tags:
                tags.append(text)
            continue
        try:
            ref = Reference.parse(text)
        except InvalidReference as exc:
            raise ArchiveError(f"index.json: {exc.message}") from None
        if ref.tag is not None and ref not in names:
            names.append(attrs.evolve(ref, digest=None))
    return tuple(names), () if names else tuple(tags)


def oci_images(
    archive: Archive,
) -> tuple[tuple[OciImage, ...], tuple[str, ...], tuple[Descriptor, ...]]:
    """The images listed in ``index.json`` (entries for the same digest merged), notes, and
    the entries of stored referrers (set aside, not images)."""
    layout = read_json(archive, "oci-layout")
    if not isinstance(layout, dict) or layout.get("imageLayoutVersion") != "1.0.0":
        raise ArchiveError('oci-layout must say {"imageLayoutVersion": "1.0.0"}')
    if not archive.has_file("index.json"):
        raise ArchiveError("the archive has oci-layout but no index.json")
    try:
        index = parse_manifest(archive.read("index.json"))
    except ImgmirrorError as exc:
        raise ArchiveError(f"index.json: {exc}") from None
    if not isinstance(index, ImageIndex):
        raise ArchiveError("index.json is not an image index")
    by_digest: dict[Digest, list[Descriptor]] = {}
    referrers = tuple(d for d in index.manifests if is_referrer_entry(d))
    for descriptor in index.manifests:
        if not is_referrer_entry(descriptor):
            by_digest.setdefault(descriptor.digest, []).append(descriptor)
    notes: list[str] = []
    images = []
    for descriptors in by_digest.values():
        top = load_manifest(archive, descriptors[0])
        if top is None:
            raise ArchiveError(f"index.json lists {descriptors[0].digest}, which is missing")
        image = expand_image(archive, top, notes)
        names, tags = _names(descriptors)
        images.append(attrs.evolve(image, names=names, tags=tags))
    if not images:
        raise ArchiveError("index.json lists no images")
    return tuple(images), tuple(notes), referrers
