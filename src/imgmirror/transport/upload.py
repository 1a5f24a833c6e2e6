"""Blob uploads: monolithic for small blobs, a streamed PATCH that resumes for the rest.

A blob up to ``ClientOptions.monolithic_bytes`` is read into memory and sent with the closing
``PUT ...?digest=`` (one round trip fewer); a registry that refuses that gets the chunked path
on a fresh session. Larger blobs stream as one ``PATCH`` and a closing ``PUT``, as docker does.
When the ``PATCH`` breaks off, [ChunkedUpload][] asks the registry how much it stored
(``GET`` on the upload URL; ``Range: 0-N`` in the 204) and sends again from there, out of a
bounded [ReplayBuffer][] of what was sent but maybe not stored, then the rest of the
source. If the registry keeps no offset, or it lies before what the buffer holds, the error is
raised as it was (a transient [NetworkError][imgmirror.errors.NetworkError]) and the caller starts
the blob again. As for downloads ([.download][imgmirror.transport.download]), the ``PATCH`` requests
of one upload share
one stall window, a stall is never resumed, and a resume that gained less than
``ClientOptions.progress_bytes`` counts as a failed attempt.
"""

from __future__ import annotations

import collections
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from imgmirror.errors import NetworkError, RegistryError, is_transient
from imgmirror.model.manifest import Descriptor
from imgmirror.transport.urls import with_query

if TYPE_CHECKING:
    from imgmirror.transport.connection import Connection

__all__ = ["ChunkedUpload", "ReplayBuffer"]

log = logging.getLogger("imgmirror")

_RANGE = re.compile(r"(?:bytes=)?0-(\d+)")


class ReplayBuffer:
    """The last ``limit`` bytes handed to the socket, by offset, to send again after a break."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.end = 0
        self._held = 0
        self._chunks: collections.deque[tuple[int, bytes]] = collections.deque()

    def record(self, chunk: bytes) -> None:
        """``chunk`` follows everything recorded so far."""
        self._chunks.append((self.end, chunk))
        self.end += len(chunk)
        self._held += len(chunk)
        while self._chunks and self._held - len(self._chunks[0][1]) >= self.limit:
            self._held -= len(self._chunks.popleft()[1])

    def since(self, offset: int) -> list[bytes] | None:
        """The bytes from ``offset`` to the end, or None if they are no longer (or never) held."""
        if offset > self.end:
            return None
        if offset == self.end:
            return []
        if not self._chunks or offset < self._chunks[0][0]:
            return None
        out: list[bytes] = []
        for start, chunk in self._chunks:
            if start + len(chunk) <= offset:
                continue
            out.append(chunk[max(0, offset - start) :])
        return out


class ChunkedUpload:
    """One blob sent as a streamed ``PATCH`` (resumed after breaks) and a closing ``PUT``.

    Args:
        client: the connection to the registry.
        repo: the repository receiving the blob.
        descriptor: digest and size of the blob.
        location: the upload session (from ``start_upload`` or a refused mount).
        is_stored: asks the registry whether the blob is there (a ``HEAD``): a closing
            ``PUT`` sent again after its reply was lost finds the session gone, and the blob
            committed.
    """

    def __init__(
        self,
        client: Connection,
        repo: str,
        descriptor: Descriptor,
        location: str,
        is_stored: Callable[[], bool],
    ) -> None:
        self.client = client
        self.is_stored = is_stored
        self.repo = repo
        self.descriptor = descriptor
        self.location = location
        self.resumes = 0
        self._scopes = [f"repository:{repo}:pull,push"]
        self._source_error: BaseException | None = None
        self._watch = client.stall_watch()

    def send(self, chunks: Iterable[bytes]) -> None:
        """Send the blob (``chunks`` is consumed once) and close the session."""
        client = self.client
        size = self.descriptor.size
        source = iter(chunks)
        replay = ReplayBuffer(client.options.replay_bytes)
        attempts = client.options.retry.start(clock=client.clock)
        start, pending = 0, list[bytes]()
        while size:
            try:
                self._patch(start, pending, source, replay)
                break
            except NetworkError as exc:
                if self._source_error or not is_transient(exc):
                    raise
                stored = self.stored()  # how far this attempt got
                delay = None
                if stored is not None:
                    delay = attempts.resumed(stored - start, client.options.progress_bytes)
                if delay is None:
                    raise
                client.sleep(delay)
                stored = self.stored()  # again: the registry may have stored more meanwhile
                again = replay.since(stored) if stored is not None else None
                if stored is None or again is None:
                    log.debug("upload of %s cannot resume; starting over", self.descriptor.digest)
                    raise
                log.debug("upload of %s resumes at %d", self.descriptor.digest, stored)
                start, pending = stored, again
                self.resumes += 1
        self._put()

    def _patch(
        self, start: int, pending: list[bytes], source: Iterator[bytes], replay: ReplayBuffer
    ) -> None:
        size = self.descriptor.size

        def body() -> Iterator[bytes]:
            yield from pending
            while True:
                try:
                    chunk = next(source)
                except StopIteration:
                    return
                except BaseException as exc:
                    self._source_error = exc  # the source broke, not the upload
                    raise
                replay.record(chunk)
                yield chunk

        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Length": str(size - start),
        }
        if start:
            headers["Content-Range"] = f"{start}-{size - 1}"
        client = self.client
        response = client.request(
            "PATCH",
            self.location,
            scopes=self._scopes,
            headers=headers,
            content=body(),
            watch=self._watch,
        )
        client.expect(response, "PATCH", self.location)
        self.location = client.location(
            self.location, response.headers.get("location") or self.location, response
        )

    def stored(self) -> int | None:
        """How many bytes the registry holds for this session, or None if it will not say."""
        client = self.client
        try:
            response = client.request("GET", self.location, scopes=self._scopes)
        except NetworkError:
            return None
        match = _RANGE.fullmatch(response.headers.get("range", "").strip())
        if response.status_code != 204 or match is None:
            return None
        if "location" in response.headers:
            self.location = client.location(self.location, response.headers["location"], response)
        end = int(match.group(1))
        # "0-0" means nothing or one byte; distribution means nothing (it sends 0-0 when empty).
        return 0 if end == 0 else end + 1

    def _put(self) -> None:
        client = self.client
        url = with_query(self.location, {"digest": str(self.descriptor.digest)})
        response = client.request(
            "PUT", url, scopes=self._scopes, headers={"Content-Length": "0"}, content=b""
        )
        if response.status_code == 404 and self.is_stored():
            # A PUT sent again after its reply was lost: the first one committed the blob and
            # closed the session, so the session is unknown now, but the blob is there.
            response.close()
            return
        client.expect(response, "PUT", url)


def refused_monolithic(error: RegistryError) -> bool:
    """Whether a monolithic ``PUT`` failed in a way the chunked path may not (not a 4xx about
    the content: DIGEST_INVALID, SIZE_INVALID and auth errors fail the chunked path too)."""
    return error.code not in ("DIGEST_INVALID", "SIZE_INVALID") and error.status not in (401, 403)
