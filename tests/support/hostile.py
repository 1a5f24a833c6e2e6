"""A hostile source registry: serves one real image under any tag, and listings it is told.

:func:`hostile_registry` runs a loopback registry that answers the ping, serves ``image``'s
manifest (under any tag not starting ``sha256``, or its digest; ``manifests`` adds others by
digest) and the blobs of
them all in every repository, and answers a path given in ``listings`` (``tags/list``,
``_catalog``, ``referrers/<digest>``) with the raw bytes given for it, so tests can send what
no real registry would: traversal tags, non-strings, bodies that are not lists, escape
sequences. It records every request path it received.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .handlers import Quiet, serving
from .images import Image

__all__ = ["Hostile", "hostile_registry", "tag_list"]


def tag_list(repo: str, tags: list[Any]) -> bytes:
    """A ``tags/list`` body listing ``tags`` (anything JSON can hold)."""
    return json.dumps({"name": repo, "tags": tags}).encode()


class Hostile:
    """What the hostile registry serves and what it saw."""

    def __init__(self, image: Image, listings: Mapping[str, bytes]) -> None:
        self.image = image
        self.listings = dict(listings)
        self.paths: list[str] = []
        self.lock = threading.Lock()
        self.host = ""

    def seen(self, path: str) -> None:
        with self.lock:
            self.paths.append(path)


@contextlib.contextmanager
def hostile_registry(
    image: Image, listings: Mapping[str, bytes], manifests: Sequence[Image] = ()
) -> Iterator[Hostile]:
    """Serve ``image`` and ``listings`` (request path without query -> body) on loopback."""
    state = Hostile(image, listings)
    blobs = {blob.digest: blob.data for item in (image, *manifests) for blob in item.blobs}
    by_digest = {item.digest: item for item in manifests}

    class Handler(Quiet):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            state.seen(self.path)
            if path == "/v2/":
                self.reply(200, b"{}", {"Content-Type": "application/json"})
            elif path in state.listings:
                self.reply(200, state.listings[path], {"Content-Type": "application/json"})
            elif "/manifests/" in path:
                ref = path.rsplit("/", 1)[1]
                served = by_digest.get(ref, image)
                if ref.startswith("sha256") and served.digest != ref:  # cosign, fallback tags
                    self.reply(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
                    return
                self.reply(
                    200,
                    served.manifest,
                    {"Content-Type": served.media_type, "Docker-Content-Digest": served.digest},
                )
            elif "/blobs/" in path and path.rsplit("/", 1)[1] in blobs:
                self.reply(200, blobs[path.rsplit("/", 1)[1]])
            else:
                self.reply(404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}')

        do_HEAD = do_GET

    with serving(Handler) as host:
        state.host = host
        yield state
