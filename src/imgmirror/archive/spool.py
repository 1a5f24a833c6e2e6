"""Make an archive given as a stream (``-``, ``/dev/stdin``, a FIFO) readable more than once.

Pushing reads an archive at least twice (an index pass, then the blobs), so a pipe is first
copied, as it arrives (compressed or not), to a temporary file in ``$TMPDIR`` of at most
[SPOOL_LIMIT][] bytes, removed when the push ends. A regular file or a directory is used
in place. ``FILE:REF`` names one image of the archive: [split_selector][] separates them.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from imgmirror.errors import ArchiveError

__all__ = ["SPOOL_LIMIT", "STDIN", "readable", "split_selector"]

STDIN = "-"
#: Largest archive read from a pipe (it is spooled to a temporary file first).
SPOOL_LIMIT = 64 * 1024**3
_CHUNK = 1024 * 1024


def _exists(text: str) -> bool:
    return text == STDIN or os.path.lexists(text)


def split_selector(text: str) -> tuple[str, str | None]:
    """``FILE`` or ``FILE:REF`` -> (file, REF or None). A name that exists as given is a file.

    ``REF`` may itself contain ``:`` (``a.tar:alpine:3.19``): the shortest prefix that exists
    is the file.
    """
    if _exists(text) or ":" not in text:
        return text, None
    at = text.find(":")
    while at != -1:
        if _exists(text[:at]) and text[at + 1 :]:
            return text[:at], text[at + 1 :]
        at = text.find(":", at + 1)
    return text, None


def _is_stream(path: str) -> bool:
    if path == STDIN:
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _copy(source: IO[bytes], target: IO[bytes], limit: int) -> None:
    total = 0
    while chunk := source.read(_CHUNK):
        total += len(chunk)
        if total > limit:
            raise ArchiveError(
                f"the piped archive is larger than {limit} bytes",
                hint="write it to a file and push the file",
            )
        target.write(chunk)
    if total == 0:
        raise ArchiveError("the piped archive is empty")


@contextlib.contextmanager
def readable(path: str, limit: int = SPOOL_LIMIT) -> Iterator[Path]:
    """A path that can be read repeatedly: ``path`` itself, or a spooled copy of a stream.

    Raises:
        ArchiveError: the stream cannot be read or exceeds ``limit``.
    """
    if not _is_stream(path):
        yield Path(path)
        return
    with tempfile.NamedTemporaryFile(prefix="imgmirror-push-", suffix=".spool") as spool:
        try:
            if path == STDIN:
                _copy(sys.stdin.buffer, spool, limit)
            else:
                with open(path, "rb") as source:
                    _copy(source, spool, limit)
            spool.flush()
        except OSError as exc:
            raise ArchiveError(f"cannot read {path}: {exc.strerror or exc}") from None
        yield Path(spool.name)
