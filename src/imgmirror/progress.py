"""Progress events of long transfers, and the listener protocol operations report them to.

Operations call a :class:`ProgressListener` as blobs start, advance and finish; the library
default ignores them. The CLI's terminal renderer lives in :mod:`imgmirror.terminal`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Protocol

from .digest import Digest
from .errors import TransferCancelled

__all__ = ["NullProgress", "ProgressListener", "counted"]


class ProgressListener(Protocol):
    """Receives transfer events. Called from worker threads: implementations must be safe."""

    def blob_started(self, digest: Digest, size: int) -> None:
        """A blob transfer began; ``size`` bytes are expected."""

    def blob_advanced(self, digest: Digest, nbytes: int) -> None:
        """``nbytes`` more bytes of the blob went through."""

    def blob_finished(self, digest: Digest, outcome: str) -> None:
        """The blob is done: ``copied``, ``skipped``, ``mounted`` or ``failed``."""


class NullProgress:
    """A listener that ignores everything (the library default)."""

    def blob_started(self, digest: Digest, size: int) -> None:
        """Ignore."""

    def blob_advanced(self, digest: Digest, nbytes: int) -> None:
        """Ignore."""

    def blob_finished(self, digest: Digest, outcome: str) -> None:
        """Ignore."""


def counted(
    chunks: Iterable[bytes],
    digest: Digest,
    listener: ProgressListener,
    cancel: threading.Event | None = None,
) -> Iterator[bytes]:
    """Pass chunks through, reporting their sizes to ``listener``.

    Raises:
        TransferCancelled: ``cancel`` was set (another transfer failed, or Ctrl-C).
    """
    for chunk in chunks:
        if cancel is not None and cancel.is_set():
            raise TransferCancelled(f"transfer of {digest} stopped: the operation was cancelled")
        listener.blob_advanced(digest, len(chunk))
        yield chunk
