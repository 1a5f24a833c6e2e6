"""Progress events of long transfers, and the listener protocol operations report them to.

Operations call a :class:`ProgressListener` as blobs start, advance and finish; the library
default ignores them. The CLI's terminal renderer lives in :mod:`imgmirror.terminal`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from .digest import Digest
from .errors import TransferCancelled

if TYPE_CHECKING:
    from .manifest import Descriptor

__all__ = ["NullProgress", "ProgressListener", "counted"]


class ProgressListener:
    """Receives transfer events; every method does nothing here, so a listener subclasses this
    and overrides what it needs. Called from worker threads: implementations must be safe.

    Order: :meth:`planned` once, before the first byte moves, with every blob the operation
    may transfer (so totals are known up front); then per blob ``blob_started`` /
    ``blob_advanced`` ... / ``blob_finished``. Outcomes are the operation's own verbs:
    ``copied``, ``saved``, ``pushed``, ``skipped``, ``mounted``, ``failed``, ``interrupted``.
    """

    def planned(self, blobs: Sequence[Descriptor], verb: str) -> None:
        """The operation will make these blobs present; ``verb`` is ``copy``/``save``/``push``."""

    def blob_started(self, digest: Digest, size: int) -> None:
        """A blob transfer began; ``size`` bytes are expected."""

    def blob_advanced(self, digest: Digest, nbytes: int) -> None:
        """``nbytes`` more bytes of the blob went through."""

    def blob_finished(self, digest: Digest, outcome: str) -> None:
        """The blob is done: ``copied``/``saved``/``pushed``, ``skipped``, ``mounted``,
        ``failed`` or ``interrupted``."""


class NullProgress(ProgressListener):
    """A listener that ignores everything (the library default)."""


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
