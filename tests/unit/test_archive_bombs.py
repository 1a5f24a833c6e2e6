"""Archives built to exhaust memory are refused before they can: huge GNU long-name and PAX
headers, sparse maps and millions of entries. The bombs are generated as streams (a gzip of
zeros is tiny); nothing of their claimed size is ever materialised."""

from __future__ import annotations

import gzip
import struct
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from imgmirror.archive.open import open_archive
from imgmirror.archive.reader import MAX_ENTRIES, MAX_EXTENDED_HEADER, MAX_NAME
from imgmirror.errors import ArchiveError

GIB = 1 << 30
_ZEROS = bytes(1 << 20)


def _header(name: str, kind: bytes, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    return info.tobuf(tarfile.USTAR_FORMAT)


def _bomb(kind: bytes, size: int) -> Iterator[bytes]:
    """A header of ``kind`` announcing ``size`` bytes, then that many zeros, then a file."""
    yield _header("././@LongLink" if kind == tarfile.GNUTYPE_LONGNAME else "pax", kind, size)
    assert size % len(_ZEROS) == 0
    for _ in range(size // len(_ZEROS)):
        yield _ZEROS
    yield _header("manifest.json", tarfile.REGTYPE, 0)
    yield bytes(1024)


def _write_gzip(path: Path, pieces: Iterator[bytes]) -> None:
    """Gzip ``pieces`` into ``path``. Each 1 MiB of zeros is one precompressed segment (after
    a full flush, deflate blocks need nothing before them), so a GiB costs one compression."""
    zeros_packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = zeros_packer.compress(_ZEROS) + zeros_packer.flush(zlib.Z_FULL_FLUSH)
    packer = zlib.compressobj(1, zlib.DEFLATED, -15)
    crc, size = 0, 0
    with path.open("wb") as out:
        out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")
        for piece in pieces:
            if piece is _ZEROS:
                out.write(packer.flush(zlib.Z_FULL_FLUSH) + zeros)
            else:
                out.write(packer.compress(piece))
            crc, size = zlib.crc32(piece, crc), size + len(piece)
        out.write(packer.flush(zlib.Z_FINISH) + struct.pack("<II", crc, size & 0xFFFFFFFF))


def _write_sparse_plain(path: Path, kind: bytes, size: int) -> None:
    """A plain tar whose header announces ``size`` bytes; the data is a hole on disk."""
    with path.open("wb") as out:
        out.write(_header("././@LongLink", kind, size))
        out.truncate(512 + size)
        out.seek(512 + size)
        out.write(_header("manifest.json", tarfile.REGTYPE, 0) + bytes(1024))


@pytest.fixture(scope="module")
def long_name_gz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bombs") / "longname.tar.gz"
    _write_gzip(path, _bomb(tarfile.GNUTYPE_LONGNAME, GIB))
    assert path.stat().st_size < 4 << 20  # a 1 GiB name in a few MB
    return path


def test_gnu_long_name_of_a_gibibyte_is_refused(long_name_gz: Path) -> None:
    with pytest.raises(
        ArchiveError, match=f"long-name header; entry names are limited to {MAX_NAME}"
    ):
        open_archive(long_name_gz)


@pytest.mark.parametrize(
    "kind", [tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE]
)
def test_huge_headers_in_a_plain_tar_are_refused(tmp_path: Path, kind: bytes) -> None:
    path = tmp_path / "bomb.tar"
    _write_sparse_plain(path, kind, GIB)
    with pytest.raises(ArchiveError, match="header"):
        open_archive(path)


@pytest.mark.parametrize("kind", [tarfile.XHDTYPE, tarfile.XGLTYPE])
def test_pax_header_of_a_gibibyte_is_refused(tmp_path: Path, kind: bytes) -> None:
    path = tmp_path / "pax.tar.gz"
    _write_gzip(path, _bomb(kind, GIB // 4))
    with pytest.raises(ArchiveError, match=f"PAX header; at most {MAX_EXTENDED_HEADER} bytes"):
        open_archive(path)


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_names_and_pax_records_within_bounds_are_read(tmp_path: Path, fmt: int) -> None:
    path = tmp_path / "ok.tar.gz"
    long_name = "d/" + "n" * 3000
    with gzip.open(path, "wb") as raw, tarfile.open(fileobj=raw, mode="w", format=fmt) as tar:
        info = tarfile.TarInfo(long_name)
        info.pax_headers = {"comment": "c" * 4000}
        tar.addfile(info)
    assert long_name in open_archive(path).members


def _many_entries(count: int) -> Iterator[bytes]:
    """``count`` empty files ``f/0000000``...: one header patched per entry (fast)."""
    base = _header("f/0000000", tarfile.REGTYPE, 0)
    checksum = int(base[148:154], 8)
    head, middle, tail = base[:2], base[9:148], base[156:]
    for start in range(0, count, 1000):
        batch = []
        for i in range(start, min(start + 1000, count)):
            name = f"{i:07d}".encode()
            chk = f"{checksum + sum(name) - 7 * ord('0'):06o}\0 ".encode()
            batch.append(head + name + middle + chk + tail)
        yield b"".join(batch)
    yield bytes(1024)


def test_ten_times_too_many_entries_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "many.tar.gz"
    _write_gzip(path, _many_entries(200_000))
    with pytest.raises(ArchiveError, match=f"more than {MAX_ENTRIES} entries"):
        open_archive(path)


def test_sparse_entries_are_refused_before_their_map_is_read(tmp_path: Path) -> None:
    header = bytearray(_header("sparse", tarfile.GNUTYPE_SPARSE, 0))
    header[482] = 1  # "isextended": a chain of sparse-map blocks follows
    header[148:156] = b"        "
    header[148:155] = f"{sum(header):06o}\0".encode()
    path = tmp_path / "sparse.tar.gz"
    _write_gzip(path, iter([bytes(header), bytes(512) * 4, bytes(1024)]))
    with pytest.raises(ArchiveError, match="sparse"):
        open_archive(path)
