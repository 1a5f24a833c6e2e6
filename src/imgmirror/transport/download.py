"""A blob download that resumes where it broke off, verified as one continuous stream.

[BlobDownload][] streams one blob through a single [Verifier][imgmirror.model.digest.Verifier].
When the connection breaks, stalls or ends short, it asks again with ``Range: bytes=N-`` from
the last byte that passed the verifier, so the hash state carries on and the consumer sees one
stream. A registry (or object store) that ignores ``Range`` answers 200 with the whole blob:
the first N bytes of that body are skipped, not passed on twice. How often and how long it
tries again is the client's [RetryPolicy][imgmirror.transport.retry.RetryPolicy]: a resume that
moved at least
``ClientOptions.progress_bytes`` since the last one is progress and starts a fresh budget, a
smaller gain counts as a failed attempt. All requests of one download share one stall window
(``.stall``), so a peer that drips on every connection is cut off within
``timeout`` of
waiting, however often the download resumes; a stall is never resumed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import httpx

from imgmirror.errors import NetworkError, is_transient
from imgmirror.model.digest import Verifier
from imgmirror.model.manifest import Descriptor

if TYPE_CHECKING:
    from imgmirror.transport.connection import Connection

__all__ = ["BlobDownload", "coalesced"]

log = logging.getLogger("imgmirror")

_CHUNK = 1024 * 1024
_CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(\d+|\*)")


def coalesced(pieces: Iterable[bytes], size: int = _CHUNK) -> Iterator[bytes]:
    """Join the pieces a socket read gives (64 KiB) into chunks of at least ``size`` bytes.

    One copy per byte, where ``iter_raw(size)`` makes two or three; fewer, larger chunks mean
    fewer hash updates and writes downstream.
    """
    parts: list[bytes] = []
    held = 0
    for piece in pieces:
        parts.append(piece)
        held += len(piece)
        if held >= size:
            yield b"".join(parts)
            parts, held = [], 0
    if parts:
        yield b"".join(parts)


class _EndedShort(NetworkError):
    """The body ended before the blob's size: worth a resume, a size mismatch in the end."""


class BlobDownload:
    """One blob, streamed and verified, resumed with ``Range`` after a break.

    Args:
        client: the connection to the registry.
        repo: the repository holding the blob.
        descriptor: digest and size the bytes must match.
        url: where the registry serves the blob (``/v2/<repo>/blobs/<digest>``).
    """

    def __init__(self, client: Connection, repo: str, descriptor: Descriptor, url: str) -> None:
        self.client = client
        self.repo = repo
        self.url = url
        self.descriptor = descriptor
        self.verifier = Verifier(descriptor.digest, descriptor.size, f"blob {descriptor.digest}")
        self.resumes = 0
        self.watch = client.stall_watch()
        self._response: httpx.Response | None = None
        self._url = ""
        self._skip = 0

    def open(self) -> None:
        """Send the first request (errors such as NotFound surface here, before any byte)."""
        self._request(0)

    def close(self) -> None:
        """Release the connection of the request under way."""
        if self._response is not None:
            self._response.close()
            self._response = None

    def _request(self, offset: int) -> None:
        """GET the blob from ``offset``, following redirects (without credentials elsewhere)."""
        client = self.client
        self.close()
        url = self.url
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        scopes = [f"repository:{self.repo}:pull"]
        watch = self.watch
        response = client.request(
            "GET", url, scopes=scopes, headers=headers, stream=True, watch=watch
        )
        for _ in range(10):
            if not response.is_redirect:
                break
            location = response.headers.get("location", "")
            response.close()
            url = client.location(url, location, response)
            response = client.request(
                "GET", url, scopes=scopes, headers=headers, stream=True, watch=watch
            )
        self._response, self._url = response, url
        client.expect(response, "GET", url, ok=(200, 206) if offset else (200,))
        self._skip = offset if response.status_code == 200 else 0
        if response.status_code == 206:
            match = _CONTENT_RANGE.fullmatch(response.headers.get("content-range", "").strip())
            if match is None or int(match.group(1)) != offset:
                raise NetworkError(
                    f"{client.host} answered a resumed download of blob "
                    f"{self.descriptor.digest.short} at the wrong offset",
                    hint="retry",
                )

    def _body(self) -> Iterator[bytes]:
        """The new bytes of the response under way (a 200 after a break skips what we have)."""
        assert self._response is not None
        for chunk in self.client.body_chunks(self._response, self._url):
            skip = self._skip
            if not skip:
                yield chunk
            elif len(chunk) <= skip:
                self._skip -= len(chunk)
            else:
                self._skip = 0
                yield chunk[skip:]

    def chunks(self) -> Iterator[bytes]:
        """The blob's bytes in chunks of about 1 MiB, verified; resumed after breaks."""
        return coalesced(self._verified())

    def _verified(self) -> Iterator[bytes]:
        """The blob's bytes as they arrive, each verified before it is yielded.

        Coalescing happens after this, so every byte held for the next chunk is already
        counted: a resume starts right after it.

        Raises:
            VerificationError: wrong size or digest (never resumed: the content is wrong).
            NetworkError: the retry policy gave up (TransferStalled: the download stalled).
        """
        client = self.client
        verifier = self.verifier
        size = self.descriptor.size
        attempts = client.options.retry.start(clock=client.clock)
        broke = False
        since = 0  # where the attempt under way started
        while True:
            try:
                if broke:
                    since = verifier.count
                    self._request(since)
                    self.resumes += 1
                    broke = False
                for chunk in self._body():
                    verifier.update(chunk)
                    yield chunk
                if size is None or verifier.count >= size:
                    break
                raise _EndedShort(f"blob {self.descriptor.digest.short} ended short")
            except NetworkError as exc:
                gained = verifier.count - since
                delay = None
                if is_transient(exc):
                    delay = attempts.resumed(gained, client.options.progress_bytes)
                if delay is None:
                    if isinstance(exc, _EndedShort):
                        verifier.finish()  # a VerificationError: the size is wrong
                    raise
                log.debug(
                    "blob %s broke off at %d (%s); resuming",
                    self.descriptor.digest.short,
                    verifier.count,
                    exc,
                )
                client.sleep(delay)
                broke = True
        verifier.finish()
