"""Hand-made tarballs for archive tests: regular files and links, exactly as given."""

from __future__ import annotations

import io
import tarfile

__all__ = ["tar_bytes"]


def tar_bytes(files: dict[str, bytes | tuple[str, str]]) -> bytes:
    """A tar of ``files``; a tuple value is a link: ``("sym" | "hard", target)``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, value in files.items():
            info = tarfile.TarInfo(name)
            if isinstance(value, tuple):
                info.type = tarfile.SYMTYPE if value[0] == "sym" else tarfile.LNKTYPE
                info.linkname = value[1]
                tar.addfile(info)
            else:
                info.size = len(value)
                tar.addfile(info, io.BytesIO(value))
    return buf.getvalue()
