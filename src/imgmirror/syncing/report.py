"""What a sync did: one [SyncResult][] per image, a [SyncReport][] for the run, and
the [SyncObserver][] a caller subclasses to hear about images as they go.

States (``STATES``), the ``action`` of a result:

- ``copied``: the destination tag was missing and now holds the source's digest;
- ``moved``: it held another digest (``old_digest``) and now holds the source's;
- ``unchanged``: it held the source's digest already; nothing was written;
- ``missing-at-source``: the image (or a repository entry's repository) is not at the source;
- ``failed``: anything else went wrong (a one-line ``error``);
- ``refused``: the verification policy refused the image; nothing was written (``error``
  says why, ``verification`` holds the decision);
- ``would-copy`` / ``would-move``: a dry run or check found the tag missing / on another
  digest at the destination (drift).

[SyncReport.to_json][] is the document ``sync --report FILE`` writes, described by the
JSON Schema shipped beside this module ([SCHEMA_RESOURCE][], [report_schema][]).
This module does no I/O but reading that schema.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Final, Literal, get_args

import attrs

from imgmirror._version import __version__
from imgmirror.transport.limiter import LimiterStats

__all__ = [
    "DRIFT",
    "FAILURES",
    "REPORT_VERSION",
    "SCHEMA_RESOURCE",
    "STATES",
    "RunMode",
    "SyncObserver",
    "SyncReport",
    "SyncResult",
    "SyncState",
    "report_schema",
]

SyncState = Literal[
    "copied",
    "moved",
    "unchanged",
    "missing-at-source",
    "failed",
    "refused",
    "would-copy",
    "would-move",
]
#: Every state, in the order summaries list them.
STATES: Final[tuple[SyncState, ...]] = get_args(SyncState)
#: States that make a run fail (exit 1).
FAILURES: Final = frozenset({"failed", "missing-at-source", "refused"})
#: States a dry run or a check reports as drift (exit 2 with ``--check``).
DRIFT: Final = frozenset({"would-copy", "would-move"})
RunMode = Literal["sync", "dry-run", "check"]
#: The version of the report document; additions keep it, changes of meaning raise it.
REPORT_VERSION: Final = 1
#: The JSON Schema of [SyncReport.to_json][], a file of this package.
SCHEMA_RESOURCE: Final = "report.schema.json"


def report_schema() -> dict[str, Any]:
    """The report's JSON Schema (draft 2020-12), as shipped in the package."""
    text = resources.files(__package__).joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@attrs.frozen
class SyncResult:
    """One image (or one entry that failed before its images were known).

    Attributes:
        source, destination: full references (a failed repository entry names the
            repository and the destination prefix).
        digest: the manifest digest the destination tag has (or would have); None on failure.
        action: the image's state, one of ``STATES``.
        bytes_copied: blob bytes sent for this image (shared blobs counted once).
        error: the one-line error of a failure.
        origin: ``file:line`` of the entry that selected the image.
        old_digest: what the destination tag held before (``moved``, ``would-move``), else
            None.
        requests: HTTP requests sent for this image (both ends, retries included).
        seconds: how long the image took.
        verification: the verification policy's decision (by which key or identity, which
            attestations, or the refusal), when the entry has a policy.
    """

    source: str
    destination: str
    digest: str | None
    action: str
    bytes_copied: int = 0
    error: str | None = None
    origin: str = ""
    old_digest: str | None = None
    requests: int = 0
    seconds: float = 0.0
    verification: dict[str, Any] | None = None

    @property
    def state(self) -> str:
        """The same as `action` (the report's name for it)."""
        return self.action

    def to_json(self) -> dict[str, object]:
        """The ``--json`` line for this image (``state`` is the same as ``action``)."""
        out = attrs.asdict(self, filter=lambda a, v: a.name != "verification" or v is not None)
        out["state"] = self.action
        out["seconds"] = round(self.seconds, 3)
        return out

    def report_entry(self) -> dict[str, object]:
        """This image in the report document."""
        entry: dict[str, object] = {
            "source": self.source,
            "destination": self.destination,
            "origin": self.origin,
            "state": self.action,
            "digest": self.digest,
            "old_digest": self.old_digest,
            "bytes": self.bytes_copied,
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "error": self.error,
        }
        if self.verification is not None:
            entry["verification"] = self.verification
        return entry


def _timestamp(epoch: float) -> str:
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


@attrs.frozen
class SyncReport:
    """Every result of a run, in file order (an entry's images where the entry is).

    Attributes:
        results: one per image, or per entry that failed before its images were known.
        seconds: how long the run took.
        dry_run: nothing was written (a dry run or a check).
        check: the run was ``sync --check``.
        shard: ``I/N`` when the run covered one shard, else None.
        started: when the run started (seconds since the epoch).
        registries: what went to each registry during the run (requests, rate limits).
    """

    results: tuple[SyncResult, ...]
    seconds: float
    dry_run: bool = False
    check: bool = False
    shard: str | None = None
    started: float = attrs.field(factory=time.time)
    registries: Mapping[str, LimiterStats] = attrs.field(factory=dict)

    def count(self, action: str) -> int:
        """How many results have ``action``."""
        return sum(1 for r in self.results if r.action == action)

    @property
    def copied(self) -> int:
        return self.count("copied")

    @property
    def moved(self) -> int:
        return self.count("moved")

    @property
    def unchanged(self) -> int:
        return self.count("unchanged")

    @property
    def failed(self) -> int:
        """Results that make the run fail: failed, missing at the source or refused."""
        return sum(1 for r in self.results if r.action in FAILURES)

    @property
    def drift(self) -> int:
        """Images a dry run or check found missing or moved at the destination."""
        return sum(1 for r in self.results if r.action in DRIFT)

    @property
    def refused(self) -> int:
        """Images the verification policy refused."""
        return self.count("refused")

    @property
    def bytes_copied(self) -> int:
        return sum(r.bytes_copied for r in self.results)

    @property
    def requests(self) -> int:
        """Requests sent to every registry during the run (tag lists included)."""
        return sum(stats.requests for stats in self.registries.values())

    @property
    def rate_limited(self) -> int:
        """Rate-limited answers (429, or 503 with ``Retry-After``) during the run."""
        return sum(stats.rate_limited for stats in self.registries.values())

    @property
    def ok(self) -> bool:
        """Nothing failed and nothing was refused."""
        return self.failed == 0 and self.refused == 0

    @property
    def mode(self) -> RunMode:
        return "check" if self.check else "dry-run" if self.dry_run else "sync"

    def states(self) -> dict[str, int]:
        """How many results are in each state (every state named, zeros included)."""
        counts: dict[str, int] = dict.fromkeys(STATES, 0)
        for result in self.results:
            counts[result.action] = counts.get(result.action, 0) + 1
        return counts

    def summary(self) -> dict[str, object]:
        """The ``--json`` summary object (the last line)."""
        out: dict[str, object] = {
            "copied": self.copied,
            "moved": self.moved,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "bytes_copied": self.bytes_copied,
            "requests": self.requests,
            "rate_limited": self.rate_limited,
            "seconds": round(self.seconds, 3),
        }
        if self.dry_run:
            out["would_copy"] = self.count("would-copy")
            out["would_move"] = self.count("would-move")
        if self.refused:
            out["refused"] = self.refused
        return out

    def to_json(self) -> dict[str, object]:
        """The whole run as one JSON-ready document: what ``--report FILE`` writes, valid
        against [report_schema][] (version ``REPORT_VERSION``)."""
        return {
            "kind": "imgmirror-sync-report",
            "version": REPORT_VERSION,
            "imgmirror": __version__,
            "mode": self.mode,
            "shard": self.shard,
            "started": _timestamp(self.started),
            "finished": _timestamp(self.started + self.seconds),
            "seconds": round(self.seconds, 3),
            "ok": self.ok,
            "in_sync": self.ok and self.drift == 0,
            "totals": {
                "images": len(self.results),
                "bytes": self.bytes_copied,
                "requests": self.requests,
                "rate_limited": self.rate_limited,
                "states": self.states(),
            },
            "registries": {
                registry: {
                    "requests": stats.requests,
                    "rate_limited": stats.rate_limited,
                    "paused_seconds": round(stats.paused_seconds, 3),
                    "lowest_concurrency": stats.lowest_concurrency,
                    "quota_remaining": stats.quota_remaining,
                    "quota_limit": stats.quota_limit,
                }
                for registry, stats in sorted(self.registries.items())
            },
            "images": [result.report_entry() for result in self.results],
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
