"""What a sync did: one :class:`SyncResult` per image, a :class:`SyncReport` for the run, and
the :class:`SyncObserver` a caller subclasses to hear about images as they go.

Actions: ``copied`` (the destination tag now has the source's digest), ``unchanged`` (it had
it already), ``would-copy`` (a dry run found it missing or different) and ``failed`` (with a
one-line ``error``). This module does no I/O.
"""

from __future__ import annotations

import attrs

__all__ = ["SyncObserver", "SyncReport", "SyncResult"]


@attrs.frozen
class SyncResult:
    """One image (or one entry that failed before its images were known).

    Attributes:
        source, destination: full references (a failed repository entry names the
            repository and the destination prefix).
        digest: the manifest digest the destination tag has (or would have); None on failure.
        action: ``copied``, ``unchanged``, ``would-copy`` or ``failed``.
        bytes_copied: blob bytes sent for this image (shared blobs counted once).
        error: the one-line error of a failure.
        origin: ``file:line`` of the entry that selected the image.
    """

    source: str
    destination: str
    digest: str | None
    action: str
    bytes_copied: int = 0
    error: str | None = None
    origin: str = ""

    def to_json(self) -> dict[str, object]:
        """The ``--json`` line for this image."""
        return attrs.asdict(self)


@attrs.frozen
class SyncReport:
    """Every result of a run, failures first (entries), then images in file order."""

    results: tuple[SyncResult, ...]
    seconds: float
    dry_run: bool = False

    def count(self, action: str) -> int:
        """How many results have ``action``."""
        return sum(1 for r in self.results if r.action == action)

    @property
    def copied(self) -> int:
        return self.count("copied")

    @property
    def unchanged(self) -> int:
        return self.count("unchanged")

    @property
    def failed(self) -> int:
        return self.count("failed")

    @property
    def bytes_copied(self) -> int:
        return sum(r.bytes_copied for r in self.results)

    @property
    def ok(self) -> bool:
        """Nothing failed."""
        return self.failed == 0

    def summary(self) -> dict[str, object]:
        """The ``--json`` summary object (the last line)."""
        out: dict[str, object] = {
            "copied": self.copied,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "bytes_copied": self.bytes_copied,
            "seconds": round(self.seconds, 3),
        }
        if self.dry_run:
            out["would_copy"] = self.count("would-copy")
        return out

    def to_json(self) -> dict[str, object]:
        """The whole run as one JSON-ready dict: the summary's fields, ``dry_run`` and
        ``results`` (each image's ``--json`` line, in the report's order)."""
        return {
            **self.summary(),
            "dry_run": self.dry_run,
            "results": [result.to_json() for result in self.results],
        }


class SyncObserver:
    """Per-image events of a run; every method does nothing here. Called from worker
    threads: implementations must be thread-safe."""

    def expanded(self, images: int) -> None:
        """Every entry is expanded: ``images`` images will be checked."""

    def started(self, source: str, destination: str) -> None:
        """An image is being checked (and copied if needed)."""

    def finished(self, result: SyncResult) -> None:
        """An image (or a failed entry) is done."""
