"""Make a blob present in a destination repository: the one path copy, push and sync share.

[BlobEngine.ensure][] does, for one blob: nothing when this session has already made
it present in the destination repository (``skipped``); a cross-repository mount from another
repository of the same registry known to hold it (this run's uploads, or hints such as the
source repository on the same registry: ``mounted``); else ``HEAD`` at the destination
(``skipped``); else the upload itself, streamed from the caller's opener (``copied``/``pushed``),
into the session a refused mount opened or one opened while the source stream is being opened.
A transfer that breaks off is started again after a backoff from
[RetryPolicy][imgmirror.transport.retry.RetryPolicy] (its attempts count; one that moved
``ClientOptions.progress_bytes`` before failing does not eat into the time budget); a digest
mismatch or a stall ([TransferStalled][imgmirror.errors.TransferStalled]) never is.

Nothing is written into a repository this session has seen holding the blob: distribution
rewrites a repository's link to a blob on every mount and upload into it, even when the link
is there (2.8's filesystem driver truncates the file and writes it again), and a manifest
``PUT`` that reads the link meanwhile is refused (``MANIFEST_BLOB_UNKNOWN``). So a mount is
asked only from another repository, never from the destination repository into itself.

One engine lives per [Session][imgmirror.session.Session]: its concurrency budget (``jobs``
transfers at once) is shared by every image copied through the session, and a blob that two
images send to the same registry at once is sent once: the second waits, then mounts or finds
it with ``HEAD``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import copy_context
from typing import Literal

import attrs

from imgmirror.errors import ImgmirrorError, TransferCancelled
from imgmirror.model.digest import Digest
from imgmirror.model.manifest import Descriptor
from imgmirror.progress import Outcome, ProgressListener, counted
from imgmirror.transport.client import RegistryClient
from imgmirror.transport.retry import RetryPolicy

__all__ = ["BlobEngine", "BlobJob", "BlobTally", "Opener", "once"]

log = logging.getLogger("imgmirror")

#: A fresh stream of the blob's bytes, verified against its digest, per call.
Opener = Callable[[], contextlib.AbstractContextManager[Iterable[bytes]]]

#: What the engine reports for a blob it moved: the operation's verb.
Moved = Literal["copied", "pushed"]

#: Repositories tried for a mount before uploading.
_MOUNT_TRIES = 3


def once(chunks: Iterable[bytes]) -> Opener:
    """An opener for a stream that can be read only once (a compressed archive pass)."""
    return lambda: contextlib.nullcontext(chunks)


@attrs.frozen
class BlobJob:
    """One blob to make present in ``repository`` of ``destination``.

    Attributes:
        opener: gives the bytes; called again for each restart when ``restartable``.
        mount_hints: other repositories of the destination registry that may hold the blob.
    """

    destination: RegistryClient
    repository: str
    descriptor: Descriptor
    opener: Opener
    restartable: bool = True
    mount_hints: tuple[str, ...] = ()


@attrs.define
class BlobTally:
    """Counted outcomes of an operation (updated from worker threads)."""

    sent: int = 0
    skipped: int = 0
    mounted: int = 0
    bytes: int = 0
    lock: threading.Lock = attrs.field(factory=threading.Lock, repr=False)

    def add(self, outcome: Outcome, size: int) -> None:
        with self.lock:
            if outcome == "skipped":
                self.skipped += 1
            elif outcome == "mounted":
                self.mounted += 1
            else:
                self.sent += 1
                self.bytes += size


class BlobEngine:
    """Session-wide blob state: the budget, who holds what, and what is in flight.

    Args:
        jobs: blob transfers at once across every operation using this engine.
        retry: when and how long to wait before a broken transfer starts again.
    """

    def __init__(self, jobs: int, retry: RetryPolicy) -> None:
        self.jobs = max(1, jobs)
        self.retry = retry
        self._budget = threading.BoundedSemaphore(self.jobs)
        self._side = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="upload")
        self._lock = threading.Lock()
        self._holders: dict[tuple[str, Digest], list[str]] = {}
        self._inflight: dict[tuple[str, Digest], threading.Event] = {}

    def close(self) -> None:
        self._side.shutdown(wait=True)

    def note_holder(self, registry: str, repository: str, digest: Digest) -> None:
        """Remember that ``repository`` of ``registry`` holds ``digest`` (a mount source)."""
        with self._lock:
            holders = self._holders.setdefault((registry, digest), [])
            if repository not in holders:
                holders.append(repository)

    def ensure(
        self,
        job: BlobJob,
        *,
        verb: Moved,
        progress: ProgressListener,
        cancel: threading.Event | None = None,
    ) -> Outcome:
        """Make the blob present; returns ``skipped``, ``mounted`` or ``verb`` (it moved).

        Raises:
            VerificationError: the bytes do not match the digest (never retried).
            TransferCancelled: ``cancel`` was set.
            ImgmirrorError: the transfer failed for good (retries exhausted, or not transient).
        """
        digest = job.descriptor.digest
        sending = False  # once sending, _send reports how the blob ended
        try:
            with self._budget, self._claim((job.destination.registry, digest), cancel):
                found, location = self._present(job)
                if found is None:
                    sending = True
                    outcome: Outcome = self._send(job, verb, progress, cancel, location)
                else:
                    outcome = found
                    progress.blob_finished(digest, outcome)
                # known before the next claim: it then neither waits nor writes (_present)
                self.note_holder(job.destination.registry, job.repository, digest)
        except ImgmirrorError as exc:
            if not sending:
                progress.blob_finished(digest, _failure(exc, cancel))
            raise
        return outcome

    @contextlib.contextmanager
    def _claim(self, key: tuple[str, Digest], cancel: threading.Event | None) -> Iterator[None]:
        """Be the only transfer of this blob to this registry; wait while another runs."""
        while True:
            with self._lock:
                running = self._inflight.get(key)
                if running is None:
                    mine = self._inflight[key] = threading.Event()
                    break
            while not running.wait(0.2):
                if cancel is not None and cancel.is_set():
                    raise TransferCancelled(f"transfer of {key[1]} stopped: cancelled")
        try:
            yield
        finally:
            with self._lock:
                del self._inflight[key]
            mine.set()

    def _present(self, job: BlobJob) -> tuple[Outcome | None, str | None]:
        """``(skipped`` or ``mounted, None)``, or ``(None, location)``: the blob must be sent,
        into the upload session a refused mount opened if there is one.

        A repository this session has seen holding the blob is answered from memory: a mount
        or upload into it would rewrite the link a manifest ``PUT`` of another image may be
        reading (see the module docstring). Otherwise, with another repository known to hold
        the blob, the mount is asked first: a registry that mounts answers in one request
        what ``HEAD`` and the mount would answer in two. No other image of this session can
        be pushing a manifest that needs the blob here yet (it would have made the blob
        present first, under the same claim), so that mount races with nothing.
        """
        client, repo, digest = job.destination, job.repository, job.descriptor.digest
        with self._lock:
            known = list(self._holders.get((client.registry, digest), ()))
        if repo in known:
            return "skipped", None
        candidates = [r for r in dict.fromkeys((*known, *job.mount_hints)) if r != repo]
        location = None
        for other in candidates[:_MOUNT_TRIES]:
            mount = client.mount_blob(repo, digest, other)
            if mount.mounted:
                return "mounted", None
            location = mount.location or location
        if client.blob_exists(repo, digest, scopes=[f"repository:{repo}:pull,push"]):
            return "skipped", None
        return None, location

    def _send(
        self,
        job: BlobJob,
        verb: Moved,
        progress: ProgressListener,
        cancel: threading.Event | None,
        location: str | None = None,
    ) -> Moved:
        """Upload (into ``location`` if a session is open), starting again after a backoff
        while the policy allows."""
        blob = job.descriptor
        attempts = self.retry.start()
        enough = job.destination.options.progress_bytes
        while True:
            progress.blob_started(blob.digest, blob.size)
            moved = [0]
            try:
                self._upload_once(job, progress, cancel, location, moved)
            except ImgmirrorError as exc:
                again = job.restartable and not _cancelled(cancel)
                delay = attempts.after(exc, progress=moved[0] >= enough) if again else None
                if delay is None or _pause(delay, cancel):
                    progress.blob_finished(blob.digest, _failure(exc, cancel))
                    raise
                log.info("blob %s: %s; starting it again in %.1fs", blob.digest, exc, delay)
                location = None
                continue
            progress.blob_finished(blob.digest, verb)
            return verb

    def _upload_once(
        self,
        job: BlobJob,
        progress: ProgressListener,
        cancel: threading.Event | None,
        location: str | None,
        moved: list[int],
    ) -> None:
        """One try at sending the blob; ``moved[0]`` counts the bytes it took from the source."""
        client, blob = job.destination, job.descriptor
        session: Future[str] = Future()
        if location is None:
            session = self._side.submit(copy_context().run, client.start_upload, job.repository)
        else:
            session.set_result(location)
        try:
            with job.opener() as chunks:
                location = session.result()
                body = _tallied(counted(chunks, blob.digest, progress, cancel), moved)
                client.upload_blob(job.repository, blob, body, location=location)
        finally:
            session.cancel()


def _failure(exc: BaseException, cancel: threading.Event | None) -> Outcome:
    """The progress outcome of a blob that ended with ``exc``."""
    return "interrupted" if isinstance(exc, TransferCancelled) or _cancelled(cancel) else "failed"


def _tallied(chunks: Iterable[bytes], moved: list[int]) -> Iterator[bytes]:
    for chunk in chunks:
        moved[0] += len(chunk)
        yield chunk


def _cancelled(cancel: threading.Event | None) -> bool:
    return cancel is not None and cancel.is_set()


def _pause(delay: float, cancel: threading.Event | None) -> bool:
    """Sleep ``delay`` seconds; True when cancelled meanwhile."""
    if cancel is None:
        threading.Event().wait(delay)
        return False
    return cancel.wait(delay)
