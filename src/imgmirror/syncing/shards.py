"""Split a sync file's entries across N machines, the same way on every machine.

An entry belongs to shard ``int(sha256(entry.key)) mod N``: the split depends only on what
the entry says, never on its position in the file, so N runs with ``--shard 0/N`` ...
``--shard N-1/N`` (or N pods of a Kubernetes Indexed Job, which number themselves through
``JOB_COMPLETION_INDEX``) together cover every entry exactly once. Shards count from 0, as
Kubernetes does. This module does no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import attrs

from imgmirror.errors import ShardError

__all__ = ["Shard", "ShardError"]


@attrs.frozen
class Shard:
    """Shard ``index`` of ``count`` (``0 <= index < count``)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"I/N"``, e.g. ``"0/3"``.

        Raises:
            ShardError: not two whole numbers with 0 <= I < N.
        """
        index, slash, count = text.strip().partition("/")
        if not slash or not index.isdigit() or not count.isdigit():
            raise ShardError(f"shard {text!r} must be I/N, e.g. 0/3 (shards count from 0)")
        return cls.checked(int(index), int(count))

    @classmethod
    def checked(cls, index: int, count: int) -> Shard:
        """A shard, or [ShardError][] when ``index`` is outside ``0..count-1``."""
        if count < 1 or not 0 <= index < count:
            raise ShardError(f"shard {index}/{count}: the index must be 0 to {count - 1}")
        return cls(index, count)

    @classmethod
    def from_environment(cls, count: int, env: Mapping[str, str]) -> Shard:
        """Shard ``$JOB_COMPLETION_INDEX`` of ``count`` (a Kubernetes Indexed Job's pod).

        Raises:
            ShardError: the variable is missing or not a number in range.
        """
        value = env.get("JOB_COMPLETION_INDEX")
        if value is None or not value.strip().isdigit():
            raise ShardError(
                f"{count} shards need JOB_COMPLETION_INDEX (set by a Kubernetes Indexed Job)"
                f" or a shard given as I/{count}"
            )
        return cls.checked(int(value), count)

    def owns(self, key: str) -> bool:
        """Whether the entry named ``key`` belongs to this shard."""
        number = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
        return number % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"
