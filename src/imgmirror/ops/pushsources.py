"""An archive's images ready to push: each as an OCI image, and the source of every blob.

OCI-layout images are taken as they are. A Docker-archive image's layers are measured (read
once, compressed size and digest learnt, ``diff_id`` checked), its config kept, and its
manifest built; [narrowed][] keeps only the platforms asked for of an index.
"""

from __future__ import annotations

import attrs

from imgmirror.archive.contents import DockerImage, DockerLayer, OciImage
from imgmirror.archive.convert import BlobSource, build_manifest, measure_layer
from imgmirror.archive.reader import Archive
from imgmirror.model.digest import Digest
from imgmirror.model.imagetree import narrow_tree
from imgmirror.model.manifest import ImageManifest
from imgmirror.model.platform import Platform
from imgmirror.model.reference import Reference
from imgmirror.registry.parallel import run_parallel

__all__ = ["narrowed", "plan_images"]


def _measure(archive: Archive, images: list[DockerImage], jobs: int) -> dict[str, BlobSource]:
    """Measure every distinct layer file of Docker-archive images."""
    layers: dict[str, DockerLayer] = {}
    for image in images:
        for layer in image.layers:
            if layer.foreign is None:
                layers.setdefault(layer.member, layer)
    if archive.seekable:
        found = run_parallel(
            lambda lay: measure_layer(archive.open(lay.member), lay), layers.values(), jobs
        )
        return {s.member or "": s for s in found}
    out = {}
    resolved = {archive.resolve(m).name: layer for m, layer in layers.items()}
    for name, chunks in archive.stream(resolved):
        source = measure_layer(chunks, resolved[name])
        out[resolved[name].member] = source
    return out


def plan_images(
    archive: Archive, images: tuple[OciImage | DockerImage, ...], jobs: int
) -> tuple[list[tuple[tuple[Reference, ...], OciImage]], dict[Digest, BlobSource]]:
    """Every image as an OCI image (its names beside it), and where each blob comes from."""
    sources: dict[Digest, BlobSource] = {}
    docker = [i for i in images if isinstance(i, DockerImage)]
    measured = _measure(archive, docker, jobs) if docker else {}
    planned = []
    for image in images:
        if isinstance(image, OciImage):
            for blob in image.blobs:
                sources.setdefault(blob.digest, BlobSource(blob, image.locate(blob.digest)))
            planned.append((image.names, image))
            continue
        descriptors = []
        for layer in image.layers:
            if layer.foreign is not None:
                descriptors.append(layer.foreign)
                continue
            source = measured[layer.member]
            sources.setdefault(source.descriptor.digest, source)
            descriptors.append(source.descriptor)
        manifest = build_manifest(image, descriptors)
        sources.setdefault(manifest.config.digest, BlobSource(manifest.config, data=image.config))
        blobs = tuple(d for d in manifest.blobs if d.digest in sources)
        planned.append((image.names, OciImage(image.names, manifest, (), blobs)))
    return planned, sources


def narrowed(image: OciImage, platforms: list[Platform]) -> OciImage:
    """Of an index, only the platforms asked for (see [narrow_tree][]) and their blobs."""
    top, children = narrow_tree(image.top, image.children, platforms)
    if top is image.top:
        return image
    needed = {b.digest for m in (top, *children) if isinstance(m, ImageManifest) for b in m.blobs}
    blobs = tuple(b for b in image.blobs if b.digest in needed)
    return attrs.evolve(image, top=top, children=children, blobs=blobs)
