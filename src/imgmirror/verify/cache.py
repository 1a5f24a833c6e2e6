"""Decisions kept between runs in a file the user names (``--verify-cache FILE``).

An accepted decision is stored under the policy's fingerprint and the image digest, so a
changed policy (a key file replaced, an identity added) finds nothing and verifies again; a
refusal is never stored. The file is JSON, read once, written atomically (a temporary file
renamed into place) when the run ends, at most [MAX_ENTRIES][] entries, newest kept.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from imgmirror.errors import InvalidPolicy
from imgmirror.model.documents import load_json
from imgmirror.verify.decision import Decision

__all__ = ["MAX_ENTRIES", "DecisionCache"]

MAX_ENTRIES = 20000
_MAX_FILE = 64 * 1024 * 1024
_VERSION = 1


class DecisionCache:
    """Accepted decisions by (policy fingerprint, digest), loaded from and saved to ``path``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, Any]] = self._load()
        self._dirty = False

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            if self.path.stat().st_size > _MAX_FILE:
                raise InvalidPolicy(f"verify cache {self.path} is over 64 MiB; remove it")
            doc = load_json(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}  # unreadable: start afresh, it is only a cache
        if not isinstance(doc, dict) or doc.get("version") != _VERSION:
            return {}
        entries = doc.get("entries")
        return dict(entries) if isinstance(entries, dict) else {}

    @staticmethod
    def _key(fingerprint: str, digest: str) -> str:
        return f"{fingerprint}/{digest}"

    def get(self, fingerprint: str, digest: str) -> Decision | None:
        """The accepted decision stored for this policy and digest, or None."""
        with self._lock:
            entry = self._entries.get(self._key(fingerprint, digest))
        if not isinstance(entry, dict):
            return None
        try:
            decision = Decision.from_json(entry["decision"])
        except (KeyError, TypeError, ValueError, AttributeError):
            return None  # a malformed entry: verify again
        return decision if decision.accepted and str(decision.digest) == digest else None

    def put(self, fingerprint: str, decision: Decision) -> None:
        """Remember an accepted decision (refusals are checked again every time)."""
        if not decision.accepted:
            return
        with self._lock:
            key = self._key(fingerprint, str(decision.digest))
            self._entries.pop(key, None)
            self._entries[key] = {"decision": decision.to_json(), "at": int(time.time())}
            self._dirty = True

    def save(self) -> None:
        """Write the file if anything was added (atomically; a failure is not fatal)."""
        with self._lock:
            if not self._dirty:
                return
            kept = dict(list(self._entries.items())[-MAX_ENTRIES:])
            text = json.dumps({"version": _VERSION, "entries": kept}, sort_keys=False)
            self._dirty = False
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=directory)
        try:
            with os.fdopen(fd, "w") as out:
                out.write(text)
            os.replace(temporary, self.path)
        except OSError:
            Path(temporary).unlink(missing_ok=True)
            raise
