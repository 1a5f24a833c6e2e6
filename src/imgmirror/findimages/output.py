"""Writing what find-images made: a file replaced whole or not at all."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from imgmirror.errors import ImgmirrorError

__all__ = ["write_atomic"]


def write_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder renamed over
    it, so a reader sees the old file or the new one; an existing file's mode is kept.

    Raises:
        ImgmirrorError: the folder is not writable.
    """
    target = Path(path)
    try:
        mode = target.stat().st_mode & 0o777 if target.exists() else 0o644
        fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.chmod(temporary, mode)
            os.replace(temporary, target)
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError as exc:
        raise ImgmirrorError(f"cannot write {target}: {exc.strerror or exc}") from None
