"""Safe, streaming read access to an image tarball, plain or gzip/zstd/xz/bzip2 compressed.

[open_tarball][] makes one pass over the tar to index its members (names, sizes, data
offsets and link targets), refusing any name that is absolute, contains ``..`` or is listed
twice, and any link that points outside the archive. Nothing is unpacked to disk.

* A plain tar is *seekable*: [Archive.open][] streams any member straight from its offset
  in the file (each call has its own file handle, so several threads may read at once).
* A compressed tar is read as a stream: the index pass keeps the small JSON files (manifests,
  configs, ``index.json``, ``manifest.json``...) in memory, and [Archive.stream][] makes
  another sequential pass that hands out the wanted members in the order they come.
"""

from __future__ import annotations

import io
import os
import posixpath
import tarfile
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import IO, Literal

import attrs

from imgmirror.errors import ArchiveError
from imgmirror.model.compression import Compression, decompress, detect

__all__ = [
    "MAX_ENTRIES",
    "MAX_EXTENDED_HEADER",
    "MAX_METADATA",
    "MAX_NAME",
    "Archive",
    "Member",
    "open_tarball",
    "safe_name",
    "symlink_target",
]

#: Largest JSON file (manifest, config, index) read into memory.
MAX_METADATA = 16 * 1024 * 1024
#: Most metadata kept in memory for a compressed archive.
_MAX_CACHE = 64 * 1024 * 1024
#: Longest entry or link name (a GNU long-name header) in bytes.
MAX_NAME = 4096
#: Largest PAX extended header (all its records together) in bytes.
MAX_EXTENDED_HEADER = 16 * 1024
#: Most entries an archive may have (an image archive has a few per layer).
MAX_ENTRIES = 20_000
#: Most bytes of entry names held in the index.
_MAX_NAME_BYTES = 16 * 1024 * 1024
_CHUNK = 1024 * 1024
_MAX_LINK_DEPTH = 16
_ALWAYS_CACHED = frozenset({"oci-layout", "repositories", "manifest.json", "index.json"})

Kind = Literal["file", "dir", "symlink", "hardlink", "other"]


@attrs.frozen
class Member:
    """One tar entry: ``name`` normalised; ``target`` is a link's target, normalised."""

    name: str
    kind: Kind
    size: int = 0
    offset: int = 0
    target: str | None = None


def safe_name(raw: str) -> str:
    """Normalise a member name, refusing anything that could land outside the archive root.

    ``./a//b`` becomes ``a/b``. Absolute names, ``..`` components and empty names raise.

    Raises:
        ArchiveError: the name is unsafe.
    """
    if raw.startswith("/") or "\\" in raw or "\0" in raw:
        raise ArchiveError(f"archive entry {raw!r} has an absolute or unsafe path")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ArchiveError(f"archive entry {raw!r} has a path that escapes the archive ('..')")
    return "/".join(parts)


def _link_target(name: str, info: tarfile.TarInfo) -> str:
    """Where a link points, as a normalised name inside the archive."""
    if info.islnk():  # hard link targets are relative to the archive root
        try:
            return safe_name(info.linkname)
        except ArchiveError:
            raise ArchiveError(
                f"archive entry {name!r} is a hard link to {info.linkname!r}, outside the archive"
            ) from None
    return symlink_target(name, info.linkname)


def symlink_target(name: str, linkname: str) -> str:
    """Where the symlink ``name`` -> ``linkname`` points, normalised; refused if outside.

    Raises:
        ArchiveError: the target is absolute or leaves the archive root.
    """
    if linkname.startswith("/"):
        raise ArchiveError(f"archive entry {name!r} is a symlink to the absolute path {linkname!r}")
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(name), linkname))
    if joined == ".." or joined.startswith("../") or joined == "/":
        raise ArchiveError(
            f"archive entry {name!r} is a symlink to {linkname!r}, outside the archive"
        )
    return "" if joined == "." else joined


def _member(info: tarfile.TarInfo) -> Member | None:
    name = safe_name(info.name)
    if not name:
        if info.isdir():
            return None  # the archive root itself ("./")
        raise ArchiveError(f"archive entry {info.name!r} has an empty name")
    if info.isreg():
        if info.issparse():
            raise ArchiveError(f"archive entry {name!r} is a sparse file; not supported")
        return Member(name, "file", info.size, info.offset_data)
    if info.isdir():
        return Member(name, "dir")
    if info.issym():
        return Member(name, "symlink", target=_link_target(name, info))
    if info.islnk():
        return Member(name, "hardlink", target=_link_target(name, info))
    return Member(name, "other")


def _add(members: dict[str, Member], member: Member) -> None:
    old = members.get(member.name)
    if old is not None and not (old.kind == member.kind == "dir"):
        raise ArchiveError(f"archive entry {member.name!r} appears more than once")
    members[member.name] = member


def _looks_like_metadata(name: str, head: bytes) -> bool:
    return name in _ALWAYS_CACHED or head.lstrip()[:1] in (b"{", b"[")


class _BoundedInfo(tarfile.TarInfo):
    """A tar header whose extensions are size-checked before tarfile reads them into memory."""

    def _proc_member(self, tar: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK):
            if self.size > MAX_NAME:
                raise ArchiveError(
                    f"archive has a {self.size}-byte long-name header; entry names are "
                    f"limited to {MAX_NAME} bytes (not an image archive?)"
                )
        elif self.type in (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE):
            if self.size > MAX_EXTENDED_HEADER:
                raise ArchiveError(
                    f"archive has a {self.size}-byte PAX header; at most "
                    f"{MAX_EXTENDED_HEADER} bytes are accepted (not an image archive?)"
                )
        elif self.type == tarfile.GNUTYPE_SPARSE:
            raise ArchiveError(f"archive entry {self.name!r} is a sparse file; not supported")
        result: tarfile.TarInfo = super()._proc_member(tar)  # type: ignore[misc]
        return result


def _entries(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """The tar's entries, refusing more than [MAX_ENTRIES][] or too many name bytes."""
    names = 0
    for count, info in enumerate(tar, 1):
        names += len(info.name) + len(info.linkname)
        if count > MAX_ENTRIES or names > _MAX_NAME_BYTES:
            raise ArchiveError(
                f"archive has more than {min(count, MAX_ENTRIES)} entries or "
                f"{_MAX_NAME_BYTES // 2**20} MiB of names; not an image archive"
            )
        tar.members.clear()  # type: ignore[attr-defined] # tarfile keeps every header otherwise
        yield info


class _ChunkReader(io.RawIOBase):
    """A read-only file over an iterator of byte chunks (for tarfile's stream mode)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            nxt = next(self._chunks, None)
            if nxt is None:
                return 0
            self._pending = nxt
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            yield chunk


def _member_chunks(f: IO[bytes], size: int) -> Iterator[bytes]:
    left = size
    while left > 0:
        chunk = f.read(min(_CHUNK, left))
        if not chunk:
            raise ArchiveError("archive ends in the middle of an entry (truncated file?)")
        left -= len(chunk)
        yield chunk


class Archive:
    """An indexed tarball (or directory). Build with
    [imgmirror.archive.open.open_archive][imgmirror.archive.open.open_archive]."""

    def __init__(
        self,
        path: Path,
        compression: Compression | None,
        members: dict[str, Member],
        cache: dict[str, bytes],
        *,
        directory: bool = False,
    ) -> None:
        self.path = path
        self.directory = directory  # members are files under ``path``, not tar entries
        self.compression = compression
        self.members = members
        self._cache = cache
        for member in members.values():
            if member.target is not None:
                self.resolve(member.name, _check_only=True)

    @property
    def seekable(self) -> bool:
        """True for a plain tar: members can be read in any order, several at once."""
        return self.compression is None

    def resolve(self, name: str, *, _check_only: bool = False) -> Member:
        """The regular file ``name`` stands for, following links inside the archive.

        Raises:
            ArchiveError: no such entry, a dangling or looping link, or not a regular file.
        """
        current = name
        for _ in range(_MAX_LINK_DEPTH):
            member = self.members.get(current)
            if member is None:
                if _check_only:
                    return Member(current, "other")  # dangling links are refused when used
                via = "" if current == name else f" (via link {name!r})"
                raise ArchiveError(f"archive has no entry {current!r}{via}")
            if member.target is None:
                if member.kind != "file" and not _check_only:
                    raise ArchiveError(f"archive entry {current!r} is not a regular file")
                return member
            current = member.target
        raise ArchiveError(f"archive entry {name!r} is a link loop")

    def has_file(self, name: str) -> bool:
        """Whether ``name`` exists and leads to a regular file."""
        try:
            self.resolve(name)
        except ArchiveError:
            return False
        return True

    def read(self, name: str, cap: int = MAX_METADATA) -> bytes:
        """The whole content of a small file (JSON metadata).

        Raises:
            ArchiveError: missing, not a file, larger than ``cap``, or not kept in memory.
        """
        member = self.resolve(name)
        if member.size > cap:
            raise ArchiveError(
                f"archive entry {name!r} is {member.size} bytes; expected metadata of at "
                f"most {cap} bytes"
            )
        if member.name in self._cache:
            return self._cache[member.name]
        if not self.seekable:
            raise ArchiveError(
                f"archive entry {name!r} does not look like JSON metadata",
                hint="decompress the archive and push the plain tar",
            )
        return b"".join(self.open(member.name))

    def open(self, name: str) -> Iterator[bytes]:
        """Stream one member's bytes from a plain tar (own file handle; thread safe)."""
        if not self.seekable:
            raise ArchiveError("members of a compressed archive can only be read in a pass")
        member = self.resolve(name)
        if self.directory:
            fd = os.open(self.path / member.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as f:
                yield from _member_chunks(f, member.size)
            return
        with self.path.open("rb") as f:
            f.seek(member.offset)
            yield from _member_chunks(f, member.size)

    def stream(self, names: Collection[str]) -> Iterator[tuple[str, Iterator[bytes]]]:
        """One sequential pass handing out each wanted member (by resolved name) as it comes.

        Consume each chunk iterator before asking for the next member.

        Raises:
            ArchiveError: a wanted member did not come by (the file changed?).
        """
        wanted = {self.resolve(n).name for n in names}
        if self.seekable:
            order = sorted(wanted, key=lambda n: self.members[n].offset)
            for name in order:
                yield name, self.open(name)
            return
        seen: set[str] = set()
        with _open_stream(self.path, self.compression) as tar:
            for info in _entries(tar):
                if not info.isreg():
                    continue
                name = safe_name(info.name)
                if name in wanted and name not in seen:
                    seen.add(name)
                    f = tar.extractfile(info)
                    assert f is not None
                    yield name, _member_chunks(f, info.size)
        if missing := wanted - seen:
            raise ArchiveError(f"archive entries {sorted(missing)} vanished between passes")


def _open_stream(path: Path, compression: Compression | None) -> tarfile.TarFile:
    raw = _ChunkReader(decompress(_file_chunks(path), compression))
    fileobj = io.BufferedReader(raw, _CHUNK)
    return tarfile.open(fileobj=fileobj, mode="r|", tarinfo=_BoundedInfo)


def open_tarball(path: str | Path) -> Archive:
    """Index a tarball (one pass) and check every entry name and link target.

    Raises:
        ArchiveError: unreadable, not a tar, or an unsafe entry.
    """
    file = Path(path)
    try:
        with file.open("rb") as f:
            kind = detect(f.read(8))
    except OSError as exc:
        raise ArchiveError(f"cannot read {file}: {exc.strerror or exc}") from None
    members: dict[str, Member] = {}
    cache: dict[str, bytes] = {}
    try:
        if kind is None:
            with tarfile.open(file, mode="r:", tarinfo=_BoundedInfo) as tar:
                for info in _entries(tar):
                    member = _member(info)
                    if member is not None:
                        _add(members, member)
        else:
            _index_stream(file, kind, members, cache)
    except tarfile.TarError as exc:
        raise ArchiveError(f"{file} is not a readable tar archive: {exc}") from None
    if not members:
        raise ArchiveError(f"{file} is an empty archive")
    return Archive(file, kind, members, cache)


def _index_stream(
    file: Path, kind: Compression, members: dict[str, Member], cache: dict[str, bytes]
) -> None:
    cached = 0
    with _open_stream(file, kind) as tar:
        for info in _entries(tar):
            member = _member(info)
            if member is None:
                continue
            _add(members, member)
            if member.kind != "file" or member.size > MAX_METADATA:
                continue
            f = tar.extractfile(info)
            assert f is not None
            head = f.read(64)
            if not _looks_like_metadata(member.name, head):
                continue
            cached += member.size
            if cached > _MAX_CACHE:
                raise ArchiveError(
                    f"{file} holds more than {_MAX_CACHE} bytes of JSON metadata",
                    hint="decompress the archive and push the plain tar",
                )
            cache[member.name] = head + f.read(member.size - len(head))
