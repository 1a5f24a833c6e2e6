"""Plan the files of an image archive in pure code: which entries, in which order, with what bytes.

Given the images to save (each a selected [ImageTree][imgmirror.model.imagetree.ImageTree], the name
it
gets and the raw configs of its images), [plan_archive][] returns an [ArchivePlan][]:
a deterministic list of tar entries. Blobs are named by digest and stored once however many
images share them. Three formats:

``docker`` (default)
    An OCI image layout (``oci-layout``, ``index.json`` with ``io.containerd.image.name``,
    ``blobs/sha256/``) holding the registry's manifests and compressed layers unchanged, plus
    a ``manifest.json`` over the same blobs for ``docker load``. zstd layers, which Docker
    before 23 cannot read, get an uncompressed copy (named by its diff_id) that only
    ``manifest.json`` uses; ``index.json`` keeps the registry's manifest and digest.
``legacy``
    ``docker save`` as Docker 1.10 to 24 wrote it: ``<config hex>.json``, one directory per
    layer with ``VERSION``, ``json`` and an uncompressed ``layer.tar``, ``manifest.json`` and
    ``repositories``.
``oci``
    An OCI image layout only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs

from imgmirror.archive.referrers import SavedReferrer, index_entry
from imgmirror.errors import ArchiveError
from imgmirror.model import mediatypes
from imgmirror.model.digest import Digest
from imgmirror.model.imagetree import ImageTree
from imgmirror.model.manifest import Descriptor, ImageIndex, ImageManifest, parse_config
from imgmirror.model.platform import Platform
from imgmirror.model.reference import Reference

__all__ = [
    "ArchiveFormat",
    "ArchivePlan",
    "BlobEntry",
    "DirEntry",
    "Entry",
    "FileEntry",
    "LayerTarEntry",
    "LinkEntry",
    "Origin",
    "SaveItem",
    "plan_archive",
    "primary_image",
]

ArchiveFormat = Literal["docker", "legacy", "oci"]

NAME_ANNOTATION = "io.containerd.image.name"
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
OCI_LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'
_EPOCH = "1970-01-01T00:00:00Z"
# What Go marshals for an empty container config in legacy per-layer json.
_EMPTY_CONTAINER_CONFIG: dict[str, Any] = {
    "Hostname": "",
    "Domainname": "",
    "User": "",
    "AttachStdin": False,
    "AttachStdout": False,
    "AttachStderr": False,
    "Tty": False,
    "OpenStdin": False,
    "StdinOnce": False,
    "Env": None,
    "Cmd": None,
    "Image": "",
    "Volumes": None,
    "WorkingDir": "",
    "Entrypoint": None,
    "OnBuild": None,
    "Labels": None,
}
_V1_FIELDS = ("created", "container", "docker_version", "author", "config", "architecture")


@attrs.frozen
class Origin:
    """Where a blob can be fetched: a registry and a repository in it."""

    registry: str
    repository: str


@attrs.frozen
class SaveItem:
    """One image to put in an archive.

    Attributes:
        name: the name loaders give it; has a tag, no digest.
        origin: where its blobs are.
        tree: the manifests selected for it (one image, or an index with its children).
        configs: raw bytes of image configs by digest (at least the primary image's for the
            docker and legacy formats).
        platform: for an index, the platform whose image ``manifest.json`` names (the
            machine's, for ``docker load``); None: the index's first image.
        referrers: what refers to it, stored beside it (OCI layouts only; their blobs
            are at ``origin`` too).
    """

    name: Reference
    origin: Origin
    tree: ImageTree
    configs: Mapping[Digest, bytes] = attrs.field(factory=dict)
    referrers: tuple[SavedReferrer, ...] = ()
    platform: Platform | None = None


@attrs.frozen
class DirEntry:
    """A directory."""

    path: str


@attrs.frozen
class FileEntry:
    """A regular file whose bytes are already known (metadata, manifests, configs)."""

    path: str
    data: bytes = attrs.field(repr=False)


@attrs.frozen
class BlobEntry:
    """A regular file holding a blob exactly as the registry serves it."""

    path: str
    blob: Descriptor
    origin: Origin


@attrs.frozen
class LayerTarEntry:
    """A regular file holding a layer decompressed: content digest ``diff_id``, size unknown."""

    path: str
    blob: Descriptor
    diff_id: Digest
    origin: Origin


@attrs.frozen
class LinkEntry:
    """A symbolic link (legacy format: a layer shared by two layer directories)."""

    path: str
    target: str


Entry = DirEntry | FileEntry | BlobEntry | LayerTarEntry | LinkEntry


@attrs.frozen
class ArchivePlan:
    """The entries of an archive, in the order they are written."""

    format: ArchiveFormat
    entries: tuple[Entry, ...]

    @property
    def blob_count(self) -> int:
        """Entries whose content comes from the registry."""
        return sum(isinstance(e, BlobEntry | LayerTarEntry) for e in self.entries)


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _blob_path(digest: Digest) -> str:
    return f"blobs/{digest.algorithm}/{digest.hex}"


def primary_image(tree: ImageTree, platform: Platform | None = None) -> ImageManifest:
    """The image ``manifest.json`` lists: the tree's image; of an index, ``platform``'s image
    when it has one, else its first child image."""
    if isinstance(tree.top, ImageManifest):
        return tree.top
    listed = {d.digest: d for d in tree.top.images()}
    images = [c for c in tree.children if isinstance(c, ImageManifest) and c.digest in listed]
    if platform is not None:
        for image in images:
            declared = listed[image.digest].platform
            if declared is not None and declared.matches(platform):
                return image
    if images:
        return images[0]
    raise ArchiveError(f"index {tree.top.digest} holds no image this archive can name")


def _config(item: SaveItem, image: ImageManifest) -> bytes:
    raw = item.configs.get(image.config.digest)
    if raw is None:
        raise ArchiveError(f"config {image.config.digest} of {item.name} was not fetched")
    return raw


def _diff_ids(item: SaveItem, image: ImageManifest) -> tuple[Digest, ...]:
    diff_ids = parse_config(_config(item, image)).diff_ids
    if len(diff_ids) != len(image.layers):
        raise ArchiveError(
            f"{item.name}: the manifest has {len(image.layers)} layers but the config lists "
            f"{len(diff_ids)} diff_ids"
        )
    return diff_ids


class _Entries:
    """Entries in order, each path once."""

    def __init__(self) -> None:
        self.by_path: dict[str, Entry] = {}

    def add(self, entry: Entry) -> str:
        self.by_path.setdefault(entry.path, entry)
        return entry.path

    def blob(self, item: SaveItem, blob: Descriptor) -> str:
        raw = item.configs.get(blob.digest)
        if raw is not None:
            return self.add(FileEntry(_blob_path(blob.digest), raw))
        return self.add(BlobEntry(_blob_path(blob.digest), blob, item.origin))

    def tree(self, item: SaveItem) -> None:
        """Every manifest, config and layer of ``item``'s tree, then of its referrers' trees,
        under ``blobs/``."""
        for tree in (item.tree, *(saved.tree for saved in item.referrers)):
            for manifest in (*tree.children, tree.top):
                self.add(FileEntry(_blob_path(manifest.digest), manifest.raw))
            for image in tree.images():
                for blob in image.blobs:
                    self.blob(item, blob)

    def values(self) -> list[Entry]:
        return list(self.by_path.values())


def _index_entries(item: SaveItem) -> tuple[dict[str, Any], dict[str, Any]]:
    """The image under its tag, and under ``repo@<registry digest>``: containerd's CRI finds a
    digest-pinned image (``registry.k8s.io/pause@sha256:…``) only by an image of that name, which
    a pull records and ``ctr images import`` creates from this entry. The registry digest is
    what the reference resolved to (an index narrowed to the saved platforms keeps its
    digest here, as a CRI pull records it), and the entry names the manifest saved."""
    top: ImageManifest | ImageIndex = item.tree.top
    descriptor = {"mediaType": top.media_type, "digest": str(top.digest), "size": len(top.raw)}
    tagged = {
        **descriptor,
        "annotations": {
            NAME_ANNOTATION: str(item.name),
            REF_NAME_ANNOTATION: item.name.tag or "latest",
        },
    }
    registry_digest = item.tree.source_digest or top.digest
    pinned = attrs.evolve(item.name, tag=None).with_digest(registry_digest)
    return tagged, {**descriptor, "annotations": {NAME_ANNOTATION: str(pinned)}}


def _index_json(items: Sequence[SaveItem], *, pin: bool) -> bytes:
    """The images, then (with ``pin``) their digest names, then the referrers (unnamed, see
    [imgmirror.archive.referrers][imgmirror.archive.referrers]). An OCI-only archive lists one entry
    per image, as
    skopeo's ``oci-archive:FILE`` without a name requires."""
    referrers = {s.referrer.digest: s.referrer for item in items for s in item.referrers}
    entries = [_index_entries(item) for item in items]
    pinned = {json.dumps(p, sort_keys=True): p for _, p in entries} if pin else {}
    return _json(
        {
            "schemaVersion": 2,
            "mediaType": mediatypes.OCI_INDEX,
            "manifests": [
                *(tagged for tagged, _ in entries),
                *pinned.values(),
                *(index_entry(referrer) for referrer in referrers.values()),
            ],
        }
    )


def _plan_layout(items: Sequence[SaveItem], *, docker: bool) -> ArchivePlan:
    blobs = _Entries()
    manifest_json: list[dict[str, Any]] = []
    for item in items:
        blobs.tree(item)
        if not docker:
            continue
        image = primary_image(item.tree, item.platform)
        config = blobs.blob(item, image.config)
        layers: list[str] = []
        diff_ids = _diff_ids(item, image)
        for layer, diff_id in zip(image.layers, diff_ids, strict=True):
            if mediatypes.layer_compression(layer.media_type) == "zstd":
                tar = LayerTarEntry(_blob_path(diff_id), layer, diff_id, item.origin)
                layers.append(blobs.add(tar))
            else:
                layers.append(_blob_path(layer.digest))
        manifest_json.append({"Config": config, "RepoTags": [item.name.familiar], "Layers": layers})
    entries: list[Entry] = [
        FileEntry("oci-layout", OCI_LAYOUT),
        DirEntry("blobs"),
        DirEntry("blobs/sha256"),
        *blobs.values(),
        FileEntry("index.json", _index_json(items, pin=docker)),
    ]
    if docker:
        entries.append(FileEntry("manifest.json", _json(manifest_json)))
    return ArchivePlan("docker" if docker else "oci", tuple(entries))


def _chain_ids(diff_ids: Sequence[Digest]) -> list[str]:
    chain: list[str] = []
    for diff_id in diff_ids:
        if not chain:
            chain.append(str(diff_id))
        else:
            text = f"{chain[-1]} {diff_id}"
            chain.append("sha256:" + hashlib.sha256(text.encode()).hexdigest())
    return chain


def legacy_layer_json(config: bytes, diff_ids: Sequence[Digest]) -> list[tuple[str, bytes]]:
    """The v1 id and per-layer ``json`` of each layer, base first (Docker <= 24 style).

    Lower layers get a stub (``created`` at the epoch); the top layer carries the image's own
    v1 fields. Each id is the sha256 of the layer's json without ``id``, plus its ChainID and
    parent, so equal stacks get equal ids. Loaders do not read these ids.
    """
    document = json.loads(config)
    out: list[tuple[str, bytes]] = []
    parent: str | None = None
    for i, chain_id in enumerate(_chain_ids(diff_ids)):
        fields: dict[str, Any] = {"created": _EPOCH, "container_config": _EMPTY_CONTAINER_CONFIG}
        if i == len(diff_ids) - 1:
            fields.update({k: document[k] for k in _V1_FIELDS if k in document})
            fields["container_config"] = document.get("container_config", _EMPTY_CONTAINER_CONFIG)
            if document.get("variant"):
                fields["variant"] = document["variant"]
        fields["os"] = document.get("os", "linux")
        if parent is not None:
            fields["parent"] = parent
        keyed = dict(fields, layer_id=chain_id)
        if parent is not None:
            keyed["parent"] = f"sha256:{parent}"
        v1id = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()
        out.append((v1id, json.dumps({"id": v1id, **fields}, sort_keys=True).encode()))
        parent = v1id
    return out


def _plan_legacy(items: Sequence[SaveItem]) -> ArchivePlan:
    entries = _Entries()
    stored: dict[Digest, str] = {}  # diff_id -> path of its layer.tar
    manifest_json: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    for item in items:
        image = primary_image(item.tree, item.platform)
        config = _config(item, image)
        diff_ids = _diff_ids(item, image)
        layer_paths: list[str] = []
        v1ids = legacy_layer_json(config, diff_ids)
        for (v1id, layer_json), layer, diff_id in zip(v1ids, image.layers, diff_ids, strict=True):
            entries.add(DirEntry(v1id))
            entries.add(FileEntry(f"{v1id}/VERSION", b"1.0"))
            entries.add(FileEntry(f"{v1id}/json", layer_json))
            path = f"{v1id}/layer.tar"
            first = stored.setdefault(diff_id, path)
            if first != path:
                entries.add(LinkEntry(path, f"../{first}"))
            elif layer.digest == diff_id:  # stored uncompressed at the registry
                entries.add(BlobEntry(path, layer, item.origin))
            else:
                entries.add(LayerTarEntry(path, layer, diff_id, item.origin))
            layer_paths.append(first)
        config_path = entries.add(FileEntry(f"{image.config.digest.hex}.json", config))
        manifest_json.append(
            {"Config": config_path, "RepoTags": [item.name.familiar], "Layers": layer_paths}
        )
        if v1ids:
            repo = attrs.evolve(item.name, tag=None, digest=None).familiar
            repositories.setdefault(repo, {})[item.name.tag or "latest"] = v1ids[-1][0]
    plan = [
        *entries.values(),
        FileEntry("manifest.json", _json(manifest_json)),
        FileEntry("repositories", _json(repositories)),
    ]
    return ArchivePlan("legacy", tuple(plan))


def plan_archive(items: Sequence[SaveItem], format: ArchiveFormat = "docker") -> ArchivePlan:
    """The entries of an archive holding ``items``, in write order.

    Raises:
        ArchiveError: an image's config is missing from its item, or its layer count does
            not match the config's diff_ids.
        ValueError: ``format`` is unknown.
    """
    if not items:
        raise ArchiveError("nothing to save")
    if format == "docker":
        return _plan_layout(items, docker=True)
    if format == "oci":
        return _plan_layout(items, docker=False)
    if format == "legacy":
        return _plan_legacy(items)
    raise ValueError(f"unknown archive format {format!r}; use docker, legacy or oci")
