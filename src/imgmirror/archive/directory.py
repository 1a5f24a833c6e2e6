"""Index a directory holding an image layout as an [Archive][imgmirror.archive.reader.Archive].

An OCI image layout (skopeo ``oci:DIR``, podman ``oci-dir``, an unpacked ``ctr export``) or a
skopeo/podman ``dir:DIR`` layout is pushed in place, exactly like an archive: no tarring, no
copying. The same rules as for a tarball apply: at most
[MAX_ENTRIES][imgmirror.archive.reader.MAX_ENTRIES] entries, symlinks only to places inside the
directory (and never followed when a file is opened), only regular files read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from imgmirror.archive.reader import MAX_ENTRIES, Archive, Member, symlink_target
from imgmirror.errors import ArchiveError

__all__ = ["open_directory"]


def _member(root: Path, full: str) -> Member:
    name = Path(full).relative_to(root).as_posix()
    info = os.lstat(full)
    if stat.S_ISLNK(info.st_mode):
        return Member(name, "symlink", target=symlink_target(name, os.readlink(full)))
    if stat.S_ISDIR(info.st_mode):
        return Member(name, "dir")
    if stat.S_ISREG(info.st_mode):
        return Member(name, "file", info.st_size)
    return Member(name, "other")


def open_directory(root: Path) -> Archive:
    """Index the files under ``root`` (symlinked directories are not entered).

    Raises:
        ArchiveError: unreadable, too many entries, or a symlink leading outside ``root``.
    """
    members: dict[str, Member] = {}

    def fail(exc: OSError) -> None:
        raise ArchiveError(f"cannot read {exc.filename}: {exc.strerror or exc}")

    try:
        for dirpath, dirnames, filenames in os.walk(root, onerror=fail):
            for name in (*dirnames, *filenames):
                member = _member(root, os.path.join(dirpath, name))
                members[member.name] = member
                if len(members) > MAX_ENTRIES:
                    raise ArchiveError(
                        f"{root} has more than {MAX_ENTRIES} entries; not an image layout"
                    )
    except OSError as exc:
        raise ArchiveError(f"cannot read {root}: {exc.strerror or exc}") from None
    if not members:
        raise ArchiveError(f"{root} is an empty directory")
    return Archive(root, None, members, {}, directory=True)
