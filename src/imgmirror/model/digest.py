"""Content digests: the [Digest][] value, and verification of streamed content.

A digest is ``<algorithm>:<hex>``; ``sha256`` (64 hex) and ``sha512`` (128 hex) are supported,
lowercase only (OCI image-spec ``descriptor.md``). [Verifier][] and [verify_stream][]
hash and count bytes as they pass, refuse a stream as soon as it exceeds its promised size,
and check size and digest at the end, so callers cannot forget to. This module does no I/O.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, TypeVar

import attrs

from imgmirror.errors import InvalidDigest, VerificationError

if TYPE_CHECKING:
    from hashlib import _Hash

__all__ = ["ALGORITHMS", "Digest", "Verifier", "verify_stream"]

#: Supported algorithms and the length of their hex encoding.
ALGORITHMS: dict[str, int] = {"sha256": 64, "sha512": 128}

_HEX = re.compile(r"[0-9a-f]+")
_Chunk = TypeVar("_Chunk", bound=bytes | bytearray | memoryview)


@attrs.frozen(order=True)
class Digest:
    """A content digest such as ``sha256:e3b0c4…``.

    Args:
        algorithm: ``"sha256"`` or ``"sha512"``.
        hex: The lowercase hex encoding of the hash, of the algorithm's length.

    Raises:
        InvalidDigest: If the algorithm is unsupported or the hex is malformed.
    """

    algorithm: str
    hex: str

    def __attrs_post_init__(self) -> None:
        length = ALGORITHMS.get(self.algorithm)
        if length is None:
            raise InvalidDigest(
                f"unsupported digest algorithm {self.algorithm!r}",
                hint=f"use one of: {', '.join(ALGORITHMS)}",
            )
        problem = None
        if not _HEX.fullmatch(self.hex.lower()):
            problem = "hex part must be hexadecimal"
        elif not _HEX.fullmatch(self.hex):
            problem = "hex part must be lowercase"
        elif len(self.hex) != length:
            problem = f"{self.algorithm} needs {length} hex characters, not {len(self.hex)}"
        if problem:
            raise InvalidDigest(f'invalid digest "{self.algorithm}:{self.hex}": {problem}')

    @classmethod
    def parse(cls, value: str) -> Digest:
        """Parse ``"<algorithm>:<hex>"``.

        Raises:
            InvalidDigest: If ``value`` is not a supported, well-formed digest.
        """
        algorithm, sep, hex_ = value.partition(":")
        if not sep or not algorithm or not hex_:
            raise InvalidDigest(f'invalid digest "{value}": expected "<algorithm>:<hex>"')
        try:
            return cls(algorithm, hex_)
        except InvalidDigest as exc:
            if exc.message.startswith("unsupported"):
                raise InvalidDigest(
                    f'invalid digest "{value}": {exc.message}', hint=exc.hint
                ) from None
            raise

    @classmethod
    def of(cls, data: bytes | bytearray | memoryview, algorithm: str = "sha256") -> Digest:
        """Hash ``data`` with ``algorithm``.

        Raises:
            InvalidDigest: If ``algorithm`` is unsupported.
        """
        hasher = _new_hasher(algorithm)
        hasher.update(data)
        return cls(algorithm, hasher.hexdigest())

    def hasher(self) -> _Hash:
        """Return a fresh hashlib object for this digest's algorithm."""
        return _new_hasher(self.algorithm)

    @property
    def short(self) -> str:
        """The first 12 hex characters, for logs and progress lines."""
        return self.hex[:12]

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


def _new_hasher(algorithm: str) -> _Hash:
    if algorithm not in ALGORITHMS:
        raise InvalidDigest(f"unsupported digest algorithm {algorithm!r}")
    return hashlib.new(algorithm)


class Verifier:
    """Hashes and counts a stream of chunks and checks them against a descriptor.

    Args:
        expected: The digest the content must have.
        size: The exact size the content must have, or ``None`` if unknown.
        what: Names the content in error messages, e.g. ``"blob sha256:ab…"``.
    """

    __slots__ = ("_finished", "_hasher", "count", "expected", "size", "what")

    def __init__(self, expected: Digest, size: int | None, what: str) -> None:
        self.expected = expected
        self.size = size
        self.what = what
        self.count = 0
        self._hasher = expected.hasher()
        self._finished: Digest | None = None

    def update(self, chunk: bytes | bytearray | memoryview) -> None:
        """Account for ``chunk``.

        Raises:
            VerificationError: As soon as more than ``size`` bytes have arrived.
        """
        n = chunk.nbytes if isinstance(chunk, memoryview) else len(chunk)
        if self.size is not None and self.count + n > self.size:
            self.count += n
            raise VerificationError(
                f"size of {self.what}",
                f"{self.size} bytes",
                f"at least {self.count} bytes",
            )
        self.count += n
        self._hasher.update(chunk)

    def finish(self) -> Digest:
        """Check the totals once the stream has ended.

        Returns:
            The digest of the content (equal to ``expected``).

        Raises:
            VerificationError: If fewer than ``size`` bytes arrived, or the digest differs.
        """
        if self._finished is not None:
            return self._finished
        if self.size is not None and self.count != self.size:
            raise VerificationError(
                f"size of {self.what}", f"{self.size} bytes", f"{self.count} bytes"
            )
        actual = Digest(self.expected.algorithm, self._hasher.hexdigest())
        if actual != self.expected:
            raise VerificationError(f"digest of {self.what}", self.expected, actual)
        self._finished = actual
        return actual


def verify_stream(
    chunks: Iterable[_Chunk], expected: Digest, size: int | None, what: str
) -> Iterator[_Chunk]:
    """Pass ``chunks`` through unchanged while verifying them.

    Each chunk is hashed once, before it is yielded. The size check fires before an oversized
    chunk is yielded; the digest and short-read checks fire after the last chunk.

    Args:
        chunks: The content, in any number of chunks.
        expected: The digest the content must have.
        size: The exact expected size, or ``None``.
        what: Names the content in error messages.

    Yields:
        The chunks of ``chunks``, unchanged.

    Raises:
        VerificationError: On size overflow, short stream or digest mismatch.
    """
    verifier = Verifier(expected, size, what)
    for chunk in chunks:
        verifier.update(chunk)
        yield chunk
    verifier.finish()
