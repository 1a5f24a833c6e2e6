"""Tests for imgmirror.model.digest: the Digest value and streaming verification."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from imgmirror.errors import InvalidDigest, VerificationError
from imgmirror.model.digest import Digest, Verifier, verify_stream

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
DATA = b"hello, registry"
DATA_DIGEST = Digest.of(DATA)


def test_of_sha256_and_sha512() -> None:
    assert str(Digest.of(b"")) == f"sha256:{EMPTY_SHA256}"
    assert Digest.of(b"x", "sha512").hex == hashlib.sha512(b"x").hexdigest()
    assert Digest.of(bytearray(b"abc")) == Digest.of(memoryview(b"abc")) == Digest.of(b"abc")


@pytest.mark.parametrize(
    "text",
    [f"sha256:{EMPTY_SHA256}", "sha512:" + hashlib.sha512(b"").hexdigest()],
)
def test_parse_round_trip(text: str) -> None:
    digest = Digest.parse(text)
    assert str(digest) == text
    algorithm, _, hex_ = text.partition(":")
    assert digest.algorithm == algorithm
    assert digest.short == hex_[:12]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", 'expected "<algorithm>:<hex>"'),
        ("sha256", 'expected "<algorithm>:<hex>"'),
        (EMPTY_SHA256, 'expected "<algorithm>:<hex>"'),
        ("sha256:", 'expected "<algorithm>:<hex>"'),
        (":abc", 'expected "<algorithm>:<hex>"'),
        ("md5:d41d8cd98f00b204e9800998ecf8427e", "unsupported digest algorithm 'md5'"),
        ("SHA256:" + EMPTY_SHA256, "unsupported digest algorithm 'SHA256'"),
        ("sha256:" + EMPTY_SHA256.upper(), "must be lowercase"),
        ("sha256:" + EMPTY_SHA256[:-1], "needs 64 hex characters, not 63"),
        ("sha256:" + EMPTY_SHA256 + "0", "needs 64 hex characters, not 65"),
        ("sha256:" + "g" * 64, "must be hexadecimal"),
        ("sha512:" + EMPTY_SHA256, "needs 128 hex characters, not 64"),
    ],
)
def test_parse_rejects(text: str, problem: str) -> None:
    with pytest.raises(InvalidDigest, match=r"invalid digest|unsupported") as info:
        Digest.parse(text)
    assert problem in str(info.value)
    assert isinstance(info.value, ValueError)


def test_constructor_validates() -> None:
    with pytest.raises(InvalidDigest):
        Digest("sha256", "abc")
    with pytest.raises(InvalidDigest):
        Digest.of(b"", "md5")


def test_hasher_is_fresh_and_matching() -> None:
    h = DATA_DIGEST.hasher()
    h.update(DATA)
    assert h.hexdigest() == DATA_DIGEST.hex
    assert Digest.parse("sha512:" + "0" * 128).hasher().name == "sha512"


def test_value_semantics() -> None:
    a, b = Digest.parse(f"sha256:{EMPTY_SHA256}"), Digest.of(b"")
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1
    assert sorted([Digest.of(b"2"), Digest.of(b"1")])[0] == min(Digest.of(b"1"), Digest.of(b"2"))


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("chunk_size", [1, 3, 100])
def test_verify_stream_passes_chunks_through(chunk_size: int) -> None:
    chunks = chunked(DATA, chunk_size)
    assert list(verify_stream(chunks, DATA_DIGEST, len(DATA), "blob")) == chunks
    assert list(verify_stream(chunks, DATA_DIGEST, None, "blob")) == chunks


def test_verify_stream_accepts_buffers() -> None:
    chunks: list[bytes | bytearray | memoryview] = [
        b"hello",
        bytearray(b", "),
        memoryview(b"registry"),
    ]
    assert b"".join(verify_stream(chunks, DATA_DIGEST, len(DATA), "blob")) == DATA


def test_memoryview_counts_bytes_not_items() -> None:
    view = memoryview(DATA[:8]).cast("I")  # 2 items of 4 bytes
    verifier = Verifier(Digest.of(DATA[:8]), 8, "blob")
    verifier.update(view)
    assert verifier.count == 8
    assert verifier.finish() == Digest.of(DATA[:8])


def test_overflow_raises_before_yielding_extra_bytes() -> None:
    stream = verify_stream([b"abc", b"defg", b"never"], Digest.of(b"abcdefg"), 5, "blob x")
    assert next(stream) == b"abc"
    with pytest.raises(VerificationError) as info:
        next(stream)
    assert str(info.value) == "size of blob x: expected 5 bytes, got at least 7 bytes"


def test_short_stream_raises_at_end() -> None:
    with pytest.raises(VerificationError, match="size of blob: expected 15 bytes, got 5 bytes"):
        list(verify_stream([DATA[:5]], DATA_DIGEST, len(DATA), "blob"))


def test_digest_mismatch_raises_at_end() -> None:
    wrong = DATA[:-1] + b"X"
    with pytest.raises(VerificationError) as info:
        list(verify_stream([wrong], DATA_DIGEST, len(DATA), "blob y"))
    assert info.value.expected == DATA_DIGEST
    assert info.value.actual == Digest.of(wrong)
    assert str(info.value).startswith(f"digest of blob y: expected {DATA_DIGEST}, got sha256:")


def test_empty_blob() -> None:
    assert list(verify_stream([], Digest.of(b""), 0, "empty")) == []
    assert list(verify_stream([b"", b""], Digest.of(b""), 0, "empty")) == [b"", b""]


def test_each_byte_hashed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    fed: list[int] = []

    class CountingHash:
        def __init__(self) -> None:
            self._inner = hashlib.sha256()

        def update(self, data: bytes) -> None:
            fed.append(len(data))
            self._inner.update(data)

        def hexdigest(self) -> str:
            return self._inner.hexdigest()

    monkeypatch.setattr(Digest, "hasher", lambda self: CountingHash())
    list(verify_stream(chunked(DATA, 4), DATA_DIGEST, len(DATA), "blob"))
    assert sum(fed) == len(DATA)


def test_verify_stream_is_lazy() -> None:
    pulled: list[int] = []

    def source() -> Iterator[bytes]:
        for i, chunk in enumerate(chunked(DATA, 5)):
            pulled.append(i)
            yield chunk

    stream = verify_stream(source(), DATA_DIGEST, len(DATA), "blob")
    assert pulled == []
    next(stream)
    assert pulled == [0]


def test_verifier_finish_is_idempotent() -> None:
    verifier = Verifier(DATA_DIGEST, len(DATA), "blob")
    verifier.update(DATA)
    assert verifier.finish() == DATA_DIGEST
    assert verifier.finish() == DATA_DIGEST
    assert verifier.count == len(DATA)
