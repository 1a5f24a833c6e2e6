"""One transfer per blob per destination registry across the images of a run.

When several images in flight need the same blob at the same destination registry (a shared
base layer), the first to ask transfers it with :func:`~imgmirror.copier.transfer_blob`; the
others wait for it and then mount it from the repository that received it (or find it there
with a ``HEAD``). A failed first transfer lets the next one try on its own.
"""

from __future__ import annotations

import threading

import attrs

from .copier import transfer_blob
from .digest import Digest
from .manifest import Descriptor
from .progress import ProgressListener
from .transport.client import RegistryClient

__all__ = ["SharedBlobs"]


@attrs.define
class _Delivery:
    repository: str
    done: threading.Event = attrs.field(factory=threading.Event)
    ok: bool = False


@attrs.define
class SharedBlobs:
    """The blobs delivered (or being delivered) during one run, per destination registry."""

    _deliveries: dict[tuple[str, Digest], _Delivery] = attrs.field(factory=dict)
    _lock: threading.Lock = attrs.field(factory=threading.Lock)

    def transfer(
        self,
        src: RegistryClient,
        src_repo: str,
        dst: RegistryClient,
        dst_repo: str,
        blob: Descriptor,
        *,
        mount_from: str | None,
        progress: ProgressListener,
        cancel: threading.Event,
    ) -> str:
        """Make ``blob`` present in ``dst_repo``; returns the outcome as transfer_blob does."""
        key = (dst.host, blob.digest)
        with self._lock:
            earlier = self._deliveries.get(key)
            if earlier is None or (earlier.done.is_set() and not earlier.ok):
                mine = self._deliveries[key] = _Delivery(dst_repo)
                earlier = None
        if earlier is not None:
            earlier.done.wait()
            if earlier.ok and earlier.repository != dst_repo:
                mount_from = earlier.repository
        else:
            try:
                outcome = transfer_blob(
                    src, src_repo, dst, dst_repo, blob,
                    mount_from=mount_from, progress=progress, cancel=cancel,
                )  # fmt: skip
                mine.ok = True
                return outcome
            finally:
                mine.done.set()
        return transfer_blob(
            src, src_repo, dst, dst_repo, blob,
            mount_from=mount_from, progress=progress, cancel=cancel,
        )  # fmt: skip
