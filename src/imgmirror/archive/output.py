"""Where a save writes its archive: a regular file, atomically, or a stream.

* A **regular file** (or a name that does not exist yet) is written to a temporary file beside
  it, ``.NAME.tmp-<pid>-<random>``, and renamed into place only when complete; any failure
  removes the temporary file, so nothing is left at the output path. Before a save starts,
  temporary files of earlier saves to the same name whose writer is no longer alive (no
  process has that PID) are removed; a live writer's are never touched.
* A **character device, FIFO or socket** (``/dev/null``, ``/dev/stdout``, a named pipe) and
  ``-`` (standard output) are written to directly: no temporary file, no rename, no seeking.
  A terminal is refused.

Errors (a read-only directory, a name the file system cannot hold, a reader that went away)
become one [ArchiveError][imgmirror.errors.ArchiveError]; cleaning up never raises a second one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

from imgmirror.archive.writer import HeaderFixup, Piece, Rewind
from imgmirror.errors import ArchiveError

__all__ = ["STDOUT", "Output", "is_stream", "open_output", "remove_stale"]

STDOUT = "-"
_NAME_MAX = 255  # bytes in one file name on every common Linux file system
_TMP_MARK = ".tmp-"


def is_stream(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is written as a stream (``-``, a device, FIFO or socket)."""
    if os.fspath(path) == STDOUT:
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _name_max(directory: Path) -> int:
    try:
        return os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError):
        return _NAME_MAX


def _temp_prefix(path: Path) -> str:
    """``.NAME.tmp-``, NAME shortened so that the whole temporary name fits the file system."""
    room = _name_max(path.parent) - len(f"..tmp-{2**22}-{'0' * 8}") - 1
    name = os.fsencode(path.name)[: max(room, 1)].decode("utf-8", "ignore")
    return f".{name}{_TMP_MARK}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, someone else's
        return True
    return True


def remove_stale(path: str | os.PathLike[str]) -> list[str]:
    """Remove temporary files of earlier saves to ``path`` whose writer is dead; their names."""
    target = Path(path)
    prefix = _temp_prefix(target)
    removed: list[str] = []
    try:
        names = os.listdir(target.parent)
    except OSError:
        return removed
    for name in names:
        pid_text = name[len(prefix) :].partition("-")[0] if name.startswith(prefix) else ""
        if not pid_text.isdigit() or int(pid_text) == os.getpid() or _alive(int(pid_text)):
            continue
        with contextlib.suppress(OSError):
            (target.parent / name).unlink()
            removed.append(name)
    return removed


class Output:
    """An open archive output: ``write`` bytes; a regular file also ``seek``s (``seekable``)."""

    def __init__(self, shown: str, fd: int, temp: Path | None, final: Path | None) -> None:
        self.shown = shown
        self.fd = fd
        self.temp = temp
        self.final = final
        self.size = 0
        self.abandoned = False

    def abandon(self) -> None:
        """Threads may still hold ``fd``: leave it open (the file is removed all the same)."""
        self.abandoned = True

    def apply(self, piece: Piece) -> None:
        """Append bytes, or carry out a [HeaderFixup][] or [Rewind][] (seekable)."""
        if isinstance(piece, HeaderFixup):
            self.pwrite(piece.header, piece.offset)
        elif isinstance(piece, Rewind):
            self.truncate(piece.offset)
        else:
            self.write(piece)

    @property
    def seekable(self) -> bool:
        """True for a regular file: pieces may be written at any offset."""
        return self.temp is not None

    def _fail(self, exc: OSError) -> ArchiveError:
        if isinstance(exc, BrokenPipeError):
            return ArchiveError(f"cannot write {self.shown}: the reader went away")
        return ArchiveError(f"cannot write {self.shown}: {exc.strerror or exc}")

    def write(self, data: bytes | memoryview) -> None:
        """Append ``data`` at the current end."""
        if self.seekable:
            self.pwrite(data, self.size)
        else:
            self._write_all(data)

    def _write_all(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.fd, view) :]
        except OSError as exc:
            raise self._fail(exc) from None
        self.size += len(data)

    def pwrite(self, data: bytes | memoryview, offset: int) -> None:
        """Write ``data`` at ``offset`` (regular files only; thread safe)."""
        view = memoryview(data)
        try:
            while view:
                done = os.pwrite(self.fd, view, offset)
                view, offset = view[done:], offset + done
        except OSError as exc:
            raise self._fail(exc) from None
        self.size = max(self.size, offset)

    def truncate(self, size: int) -> None:
        """Cut the file back to ``size`` bytes (regular files only)."""
        try:
            os.ftruncate(self.fd, size)
        except OSError as exc:
            raise self._fail(exc) from None
        self.size = size

    def _commit(self) -> None:
        assert self.temp is not None
        assert self.final is not None
        try:
            os.fsync(self.fd)
            os.replace(self.temp, self.final)
        except OSError as exc:
            raise self._fail(exc) from None
        with contextlib.suppress(OSError):
            fd = os.open(self.final.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _open_stream(shown: str) -> int:
    if shown == STDOUT:
        fd = os.dup(1)
    else:
        try:
            fd = os.open(shown, os.O_WRONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise ArchiveError(f"cannot write {shown}: {exc.strerror or exc}") from None
    if os.isatty(fd):
        os.close(fd)
        raise ArchiveError(
            f"refusing to write an archive to a terminal ({shown})",
            hint="redirect the output to a file or a pipe, or give a file name",
        )
    return fd


def _open_regular(path: Path) -> tuple[int, Path]:
    shown = os.fspath(path)
    if len(os.fsencode(path.name)) > _name_max(path.parent):
        raise ArchiveError(
            f"cannot write {shown}: the name is longer than this file system allows "
            f"({_name_max(path.parent)} bytes)",
            hint="choose a shorter file name",
        )
    if not path.parent.is_dir():
        raise ArchiveError(f"cannot write {shown}: directory {path.parent} does not exist")
    remove_stale(path)
    temp = path.with_name(f"{_temp_prefix(path)}{os.getpid()}-{secrets.token_hex(4)}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    try:
        return os.open(temp, flags, 0o644), temp
    except OSError as exc:
        raise ArchiveError(f"cannot write {shown}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def open_output(path: str | os.PathLike[str]) -> Iterator[Output]:
    """Open the archive output; on a clean exit a regular file is renamed into place.

    Any exception (Ctrl-C and termination signals included) removes the temporary file.

    Raises:
        ArchiveError: the output cannot be created or written, or is a terminal.
    """
    shown = os.fspath(path)
    if is_stream(shown):
        out = Output(shown, _open_stream(shown), None, None)
    else:
        final = Path(shown)
        fd, temp = _open_regular(final)
        out = Output(shown, fd, temp, final)
    committed = False
    try:
        yield out
        if out.temp is not None:
            out._commit()
        committed = True
    finally:
        if not out.abandoned:
            with contextlib.suppress(OSError):
                os.close(out.fd)
        if out.temp is not None and not committed:
            with contextlib.suppress(OSError):
                out.temp.unlink()
