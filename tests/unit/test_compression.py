"""Tests for imgmirror.model.compression: detection and streaming (de)compression."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import zlib
from collections.abc import Iterator
from typing import Literal

import pytest
import zstandard

from imgmirror.errors import ArchiveError
from imgmirror.model.compression import compress, decompress, detect

DATA = os.urandom(70_000) + b"layer data " * 50_000


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


@pytest.mark.parametrize(
    ("prefix", "kind"),
    [
        (gzip.compress(b"x")[:6], "gzip"),
        (b"\x1f\x8b", "gzip"),
        (zstd(b"x")[:6], "zstd"),
        (b"\x50\x2a\x4d\x18\x00\x00", "zstd"),
        (b"\x5f\x2a\x4d\x18", "zstd"),
        (lzma.compress(b"x")[:6], "xz"),
        (bz2.compress(b"x")[:6], "bzip2"),
        (b"ustar\x00", None),
        (b"", None),
        (b"\x1f", None),
        (b"\x60\x2a\x4d\x18", None),
        (b"\x00" * 512, None),
    ],
)
def test_detect(prefix: bytes, kind: str | None) -> None:
    assert detect(prefix) == kind


STREAMS = {
    "gzip": gzip.compress(DATA[:1000]) + gzip.compress(DATA[1000:]),
    "zstd": zstd(DATA[:1000]) + zstd(b"") + zstd(DATA[1000:]),
    "xz": lzma.compress(DATA[:1000]) + lzma.compress(DATA[1000:]),
    "bzip2": bz2.compress(DATA[:1000]) + bz2.compress(DATA[1000:]),
}


@pytest.mark.parametrize("kind", sorted(STREAMS))
@pytest.mark.parametrize("chunk_size", [97, 1000, 65536, 10**9])
def test_decompress_multi_member(
    kind: Literal["gzip", "zstd", "xz", "bzip2"], chunk_size: int
) -> None:
    assert b"".join(decompress(chunked(STREAMS[kind], chunk_size), kind)) == DATA


SMALL = {
    "gzip": gzip.compress(b"a") + gzip.compress(b"bc"),
    "zstd": zstd(b"a") + zstd(b"bc"),
}


@pytest.mark.parametrize("kind", sorted(SMALL))
def test_decompress_single_byte_chunks(kind: Literal["gzip", "zstd"]) -> None:
    assert b"".join(decompress(chunked(SMALL[kind], 1), kind)) == b"abc"


def test_decompress_accepts_buffers() -> None:
    data = gzip.compress(DATA)
    chunks: list[bytes | bytearray | memoryview] = [bytearray(data[:10]), memoryview(data[10:])]
    assert b"".join(decompress(chunks, "gzip")) == DATA
    z = zstd(DATA)
    assert b"".join(decompress([memoryview(z)], "zstd")) == DATA


def test_zstd_skippable_frame() -> None:
    skippable = b"\x50\x2a\x4d\x18" + (3).to_bytes(4, "little") + b"abc"
    assert b"".join(decompress([skippable + zstd(b"hi")], "zstd")) == b"hi"


def test_gzip_trailing_zero_padding() -> None:
    data = gzip.compress(DATA)
    assert b"".join(decompress([data + b"\0" * 10, b"\0" * 512], "gzip")) == DATA


def test_passthrough() -> None:
    assert list(decompress([b"a", bytearray(b"b")], None)) == [b"a", b"b"]


@pytest.mark.parametrize(
    ("kind", "data", "problem"),
    [
        ("gzip", gzip.compress(DATA)[:-10], "truncated gzip stream"),
        ("gzip", gzip.compress(DATA)[:5000], "truncated gzip stream"),
        ("gzip", b"not gzip at all", "corrupt gzip stream"),
        ("gzip", gzip.compress(b"x") + b"trailing garbage", "corrupt gzip stream"),
        ("gzip", b"", "empty gzip stream"),
        ("zstd", zstd(DATA)[:-5], "truncated zstd stream"),
        ("zstd", b"not zstd at all", "corrupt zstd stream"),
        ("zstd", b"", "empty zstd stream"),
        ("xz", lzma.compress(DATA)[:-5], "truncated xz stream"),
        ("xz", b"garbage!", "corrupt xz stream"),
        ("bzip2", bz2.compress(DATA)[:-5], "truncated bzip2 stream"),
        ("bzip2", b"garbage!", "corrupt bzip2 stream"),
    ],
)
def test_decompress_rejects(
    kind: Literal["gzip", "zstd", "xz", "bzip2"], data: bytes, problem: str
) -> None:
    with pytest.raises(ArchiveError, match=problem):
        b"".join(decompress(chunked(data, 4096), kind))


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_decompress_output_is_bounded(kind: Literal["gzip", "zstd"]) -> None:
    size = 256 << 20  # 256 MiB of zeros compresses to a few hundred KiB
    bomb = b"".join(compress(iter([b"\0" * (1 << 20)] * 256), kind))
    assert len(bomb) < 2 << 20
    total = 0
    largest = 0
    for piece in decompress([bomb], kind):
        total += len(piece)
        largest = max(largest, len(piece))
    assert total == size
    assert largest <= 64 << 20


def test_decompress_is_lazy() -> None:
    pulled: list[int] = []

    def source() -> Iterator[bytes]:
        for i, chunk in enumerate(chunked(gzip.compress(DATA), 1000)):
            pulled.append(i)
            yield chunk

    stream = decompress(source(), "gzip")
    assert pulled == []
    next(stream)
    assert len(pulled) < 5


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
@pytest.mark.parametrize("level", [None, 1, 9])
def test_compress_round_trip(kind: Literal["gzip", "zstd"], level: int | None) -> None:
    out = b"".join(compress(chunked(DATA, 30_000), kind, level))
    assert detect(out[:6]) == kind
    assert b"".join(decompress([out], kind)) == DATA


def test_gzip_output_is_standard_and_reproducible() -> None:
    first = b"".join(compress([DATA], "gzip"))
    second = b"".join(compress(chunked(DATA, 777), "gzip"))
    assert first == second
    assert gzip.decompress(first) == DATA
    assert zlib.decompress(first, wbits=31) == DATA


def test_zstd_output_is_standard() -> None:
    out = b"".join(compress(chunked(DATA, 4096), "zstd"))
    assert zstandard.ZstdDecompressor().decompressobj().decompress(out) == DATA


def test_compress_empty_and_lazy() -> None:
    assert gzip.decompress(b"".join(compress([], "gzip"))) == b""
    assert b"".join(decompress(compress([], "zstd"), "zstd")) == b""


def test_compress_rejects_other_kinds() -> None:
    with pytest.raises(ValueError, match="cannot compress with 'xz'"):
        list(compress([b"x"], "xz"))  # type: ignore[arg-type]
