"""Open whatever holds an image archive: a tarball (plain, gzip or zstd) or a directory."""

from __future__ import annotations

from pathlib import Path

from imgmirror.archive.directory import open_directory
from imgmirror.archive.reader import Archive, open_tarball

__all__ = ["open_archive"]


def open_archive(path: str | Path) -> Archive:
    """Index an archive at ``path``: a directory holding an image layout (read in place), else
    a tarball (one pass), every entry name and link target checked.

    Raises:
        ArchiveError: unreadable, not a tar, or an unsafe entry.
    """
    file = Path(path)
    return open_directory(file) if file.is_dir() else open_tarball(file)
