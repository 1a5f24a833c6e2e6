"""Generate large benchmark images on disk and seed them into a registry, streaming.

Each layer is a real tar (one incompressible file of random bytes and one compressible log-like
file, half the layer each), gzip-compressed at the default level as ``docker build`` does, and
written block by block to a file while both digests are computed: nothing the size of a layer
is ever held in memory. Built images are cached under the work directory, keyed by
:data:`GENERATOR_VERSION`, so a second run reuses them.
"""

from __future__ import annotations

import hashlib
import json
import random
import tarfile
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = ["BenchImage", "BlobFile", "build_image", "upload_image"]

GENERATOR_VERSION = "1"
MIB = 1024 * 1024
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
_BLOCK = MIB


@dataclass(frozen=True)
class BlobFile:
    """A blob stored in a file, with its descriptor fields."""

    path: Path
    digest: str
    size: int
    media_type: str

    def descriptor(self) -> dict[str, object]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class BenchImage:
    """A generated image: config and layer files plus the manifest bytes."""

    name: str
    config: BlobFile
    layers: tuple[BlobFile, ...]
    manifest: bytes
    uncompressed: int

    @property
    def blobs(self) -> tuple[BlobFile, ...]:
        return (self.config, *self.layers)

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.manifest).hexdigest()

    @property
    def compressed(self) -> int:
        return sum(layer.size for layer in self.layers)

    def describe(self) -> str:
        count = len(self.layers)
        return (
            f"{count} gzip layer{'s' * (count != 1)}, {self.uncompressed / MIB:.0f} MiB "
            f"uncompressed, {self.compressed / MIB:.0f} MiB compressed"
        )


def _log_lines(rng: random.Random) -> list[bytes]:
    letters = "abcdefghijklmnopqrstuvwxyz/._-"
    lines = []
    for _ in range(200):
        text = "".join(rng.choice(letters) for _ in range(rng.randint(20, 90)))
        level = rng.choice(["INFO", "WARN", "DEBUG", "ERROR"])
        lines.append(
            f"2024-05-{rng.randint(1, 28):02d} {level} {text} id={rng.getrandbits(32):x}\n"
        )
    return [line.encode() for line in lines]


def _random_blocks(rng: random.Random, size: int) -> Iterator[bytes]:
    left = size
    while left:
        n = min(_BLOCK, left)
        yield rng.randbytes(n)
        left -= n


def _text_blocks(rng: random.Random, size: int) -> Iterator[bytes]:
    lines = _log_lines(rng)
    left = size
    while left:
        block = b"".join(rng.choices(lines, k=_BLOCK // 60))[: min(_BLOCK, left)]
        yield block
        left -= len(block)


class _LayerWriter:
    """Tar bytes in; gzip bytes out to a file; digests of both sides."""

    def __init__(self, path: Path) -> None:
        self.file = path.open("wb")
        self.diff_id = hashlib.sha256()
        self.digest = hashlib.sha256()
        self.gzip = zlib.compressobj(6, zlib.DEFLATED, 31)
        self.tar_size = 0
        self.size = 0

    def _out(self, data: bytes) -> None:
        self.digest.update(data)
        self.file.write(data)
        self.size += len(data)

    def write(self, data: bytes) -> None:
        self.diff_id.update(data)
        self.tar_size += len(data)
        self._out(self.gzip.compress(data))

    def close(self) -> None:
        self._out(self.gzip.flush())
        self.file.close()


def _make_layer(path_str: str, size: int, seed: int) -> tuple[str, int, str, int]:
    """Write one layer file; returns (digest, size, diff_id, uncompressed size)."""
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    writer = _LayerWriter(Path(path_str))
    half = size // 2
    for name, length in (("opt/app/blob.bin", half), ("var/log/app.log", size - half)):
        info = tarfile.TarInfo(name)
        info.size = length
        info.mode = 0o644
        info.mtime = 0
        writer.write(info.tobuf(tarfile.PAX_FORMAT))
        blocks = _random_blocks(rng, length) if name.endswith(".bin") else _text_blocks(rng, length)
        for block in blocks:
            writer.write(block)
        if length % tarfile.BLOCKSIZE:
            writer.write(b"\0" * (tarfile.BLOCKSIZE - length % tarfile.BLOCKSIZE))
    writer.write(b"\0" * (2 * tarfile.BLOCKSIZE))
    writer.close()
    return (
        "sha256:" + writer.digest.hexdigest(),
        writer.size,
        "sha256:" + writer.diff_id.hexdigest(),
        writer.tar_size,
    )


def _load_cached(directory: Path, key: dict[str, object]) -> BenchImage | None:
    meta_path = directory / "image.json"
    if not meta_path.exists():
        return None
    meta = json.loads(meta_path.read_text())
    if meta.get("key") != key:
        return None
    config = BlobFile(directory / "config.json", **meta["config"])
    layers = tuple(
        BlobFile(directory / f"layer{i}.tar.gz", **m) for i, m in enumerate(meta["layers"])
    )
    if not all(b.path.exists() and b.path.stat().st_size == b.size for b in (config, *layers)):
        return None
    manifest = (directory / "manifest.json").read_bytes()
    return BenchImage(directory.name, config, layers, manifest, int(meta["uncompressed"]))


def build_image(work: Path, name: str, layer_sizes: Sequence[int], jobs: int = 2) -> BenchImage:
    """Generate (or reuse) image ``name`` with one layer per entry of ``layer_sizes``."""
    directory = work / "images" / name
    key: dict[str, object] = {"version": GENERATOR_VERSION, "layers": list(layer_sizes)}
    cached = _load_cached(directory, key)
    if cached is not None:
        return cached
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"layer{i}.tar.gz" for i in range(len(layer_sizes))]
    seeds = [zlib.crc32(f"{name}/{i}".encode()) for i in range(len(layer_sizes))]
    with ProcessPoolExecutor(max_workers=max(1, min(jobs, len(paths)))) as pool:
        results = list(pool.map(_make_layer, [str(p) for p in paths], list(layer_sizes), seeds))
    config_doc = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/bin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [r[2] for r in results]},
        "history": [{"created_by": f"imgmirror benchmark layer {i}"} for i in range(len(paths))],
    }
    config_raw = json.dumps(config_doc, sort_keys=True, separators=(",", ":")).encode()
    (directory / "config.json").write_bytes(config_raw)
    config = BlobFile(
        directory / "config.json",
        "sha256:" + hashlib.sha256(config_raw).hexdigest(),
        len(config_raw),
        DOCKER_CONFIG,
    )
    layers = tuple(
        BlobFile(path, digest, size, DOCKER_LAYER_GZIP)
        for path, (digest, size, _, _) in zip(paths, results, strict=True)
    )
    manifest_doc = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": config.descriptor(),
        "layers": [layer.descriptor() for layer in layers],
    }
    manifest = json.dumps(manifest_doc, indent=3).encode()
    (directory / "manifest.json").write_bytes(manifest)
    uncompressed = sum(r[3] for r in results)
    meta = {
        "key": key,
        "config": {"digest": config.digest, "size": config.size, "media_type": config.media_type},
        "layers": [
            {"digest": b.digest, "size": b.size, "media_type": b.media_type} for b in layers
        ],
        "uncompressed": uncompressed,
    }
    (directory / "image.json").write_text(json.dumps(meta, indent=1))
    return BenchImage(name, config, layers, manifest, uncompressed)


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(_BLOCK):
            yield chunk


def upload_image(registry_url: str, repo: str, tag: str, image: BenchImage) -> None:
    """Push ``image`` to ``registry_url/repo:tag`` (anonymous registry), streaming each blob."""
    with httpx.Client(base_url=registry_url, timeout=120.0, trust_env=False) as http:
        for blob in image.blobs:
            if http.head(f"/v2/{repo}/blobs/{blob.digest}").status_code == 200:
                continue
            start = http.post(f"/v2/{repo}/blobs/uploads/", headers={"Content-Length": "0"})
            start.raise_for_status()
            location = start.request.url.join(start.headers["location"])
            url = location.copy_merge_params({"digest": blob.digest})
            response = http.put(
                url,
                content=_file_chunks(blob.path),
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Length": str(blob.size),
                },
            )
            response.raise_for_status()
        response = http.put(
            f"/v2/{repo}/manifests/{tag}",
            content=image.manifest,
            headers={"Content-Type": DOCKER_MANIFEST},
        )
        response.raise_for_status()
