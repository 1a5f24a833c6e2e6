"""Build a registry image from a Docker archive entry, which stores no manifest.

Each layer file is read once to *measure* it: its uncompressed content must hash to the
config's ``diff_id``; a gzip or zstd file is pushed as it is, while an uncompressed (or xz or
bzip2) one is gzipped on the fly (level 1, as crane does) and the digest of that gzip stream is
what the manifest names. The gzip output is deterministic, so the upload pass produces the same
bytes again, and is verified against the measured digest before the registry commits it.

The manifest is Docker schema 2 (``application/vnd.docker.image.rootfs.diff.tar.gzip``
layers, which every Docker, containerd and skopeo version pulls), or OCI when a layer is
zstd. The config is kept byte for byte, so the image ID does not change.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import attrs

from imgmirror.archive.contents import DockerImage, DockerLayer
from imgmirror.errors import VerificationError
from imgmirror.model import mediatypes
from imgmirror.model.compression import Compression, compress, decompress, detect
from imgmirror.model.digest import Digest, Verifier
from imgmirror.model.manifest import Descriptor, ImageManifest, parse_manifest

__all__ = ["GZIP_LEVEL", "BlobSource", "build_manifest", "measure_layer"]

#: Compression level of layers gzipped on the fly (crane's default, ``gzip.BestSpeed``).
GZIP_LEVEL = 1


@attrs.frozen
class BlobSource:
    """Where a blob's bytes come from: an archive member (maybe gzipped on the way), or memory.

    Attributes:
        descriptor: the blob as the registry will store it.
        member: the archive member holding it, or None when ``data`` holds it.
        regzip: the member is decompressed (from ``source_compression``; None = a plain
            tar) and gzipped on the fly.
    """

    descriptor: Descriptor
    member: str | None = None
    data: bytes | None = attrs.field(default=None, repr=False)
    regzip: bool = False
    source_compression: Compression | None = None

    def produce(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """The blob's bytes, given the member's bytes."""
        if not self.regzip:
            return iter(chunks)
        return compress(decompress(chunks, self.source_compression), "gzip", GZIP_LEVEL)


def _hashing(chunks: Iterable[bytes], hasher: Any, counter: list[int]) -> Iterator[bytes]:
    for chunk in chunks:
        hasher.update(chunk)
        counter[0] += len(chunk)
        yield chunk


def measure_layer(chunks: Iterable[bytes], layer: DockerLayer) -> BlobSource:
    """Read a layer file once: check its ``diff_id`` and decide what to upload.

    Args:
        chunks: the layer file's bytes.
        layer: what ``manifest.json`` and the config say about it.

    Raises:
        VerificationError: the content does not unpack to the ``diff_id``, or does not hash to
            the digest its file name promises.
        ArchiveError: a compressed layer is corrupt.
    """
    it = iter(chunks)
    first = next(it, b"")
    kind = detect(first)
    raw_hash, raw_count = hashlib.sha256(), [0]
    raw = _hashing(itertools.chain([first], it), raw_hash, raw_count)
    diff = Verifier(layer.diff_id, None, f"uncompressed content (diff_id) of layer {layer.member}")

    def plain() -> Iterator[bytes]:
        for piece in decompress(raw, kind):
            diff.update(piece)
            yield piece

    if kind in ("gzip", "zstd"):
        for _ in plain():
            pass
        digest, size = Digest("sha256", raw_hash.hexdigest()), raw_count[0]
    else:
        out_hash, out_count = hashlib.sha256(), [0]
        for _ in _hashing(compress(plain(), "gzip", GZIP_LEVEL), out_hash, out_count):
            pass
        digest, size = Digest("sha256", out_hash.hexdigest()), out_count[0]
    diff.finish()
    file_digest = Digest("sha256", raw_hash.hexdigest())
    if layer.file_digest is not None and layer.file_digest != file_digest:
        raise VerificationError(
            f"digest of layer file {layer.member}", layer.file_digest, file_digest
        )
    media_type = mediatypes.OCI_LAYER_ZSTD if kind == "zstd" else mediatypes.DOCKER_LAYER_GZIP
    regzip = kind not in ("gzip", "zstd")
    return BlobSource(
        Descriptor(media_type, digest, size),
        layer.member,
        regzip=regzip,
        source_compression=kind if regzip else None,
    )


def build_manifest(image: DockerImage, layers: Sequence[Descriptor]) -> ImageManifest:
    """The manifest for ``image`` whose layers are ``layers`` (in order, foreign ones too).

    Docker schema 2, unless a layer is zstd: then OCI, with OCI layer media types.
    """
    oci = any(d.media_type == mediatypes.OCI_LAYER_ZSTD for d in layers)
    if oci:
        layers = [
            attrs.evolve(d, media_type=mediatypes.OCI_LAYER_GZIP)
            if d.media_type == mediatypes.DOCKER_LAYER_GZIP
            else d
            for d in layers
        ]
    config = Descriptor(
        mediatypes.OCI_CONFIG if oci else mediatypes.DOCKER_CONFIG,
        image.config_digest,
        len(image.config),
    )
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": mediatypes.OCI_MANIFEST if oci else mediatypes.DOCKER_MANIFEST,
        "config": config.to_json(),
        "layers": [d.to_json() for d in layers],
    }
    manifest = parse_manifest(json.dumps(doc, indent=3).encode())
    assert isinstance(manifest, ImageManifest)
    return manifest
