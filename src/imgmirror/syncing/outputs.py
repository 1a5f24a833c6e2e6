"""The files a sync run leaves for machines: the JSON report and the Prometheus metrics.

[write_report][] writes [SyncReport.to_json][imgmirror.syncing.report.SyncReport.to_json]
(the document the shipped JSON Schema describes); [write_metrics][] writes the run in the
Prometheus text format, for node-exporter's textfile collector (``--collector.textfile.directory``)
or anything that scrapes a file. Both write a temporary file in the same directory and rename
it into place, so a reader never sees half a file.

The metrics, all gauges of the last run, labelled by ``shard`` (``I/N``, or ``all``):

- ``imgmirror_sync_last_run_timestamp_seconds{shard, mode}``: when the run finished;
- ``imgmirror_sync_last_success_timestamp_seconds{shard}``: when a run last finished with no
  failure (kept from the file being replaced when this run failed);
- ``imgmirror_sync_success{shard}``: 1 when nothing failed;
- ``imgmirror_sync_in_sync{shard}``: 1 when every destination tag holds its source's digest;
- ``imgmirror_sync_duration_seconds{shard}``: how long the run took;
- ``imgmirror_sync_images{shard, state}``: images per state (every state named);
- ``imgmirror_sync_copied_bytes{shard}``: blob bytes sent;
- ``imgmirror_sync_requests{shard, registry}``: requests sent to each registry;
- ``imgmirror_sync_rate_limited_responses{shard, registry}``: its 429s (and 503s with
  ``Retry-After``).

prometheus_client is imported only when metrics are written.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from imgmirror.errors import ImgmirrorError
from imgmirror.syncing.report import SyncReport

__all__ = ["write_metrics", "write_report"]

_PREFIX = "imgmirror_sync"


def write_report(report: SyncReport, path: str | os.PathLike[str]) -> None:
    """Write ``report.to_json()`` to ``path`` (replaced whole, never half-written).

    Raises:
        ImgmirrorError: the file cannot be written.
    """
    text = json.dumps(report.to_json(), indent=2, sort_keys=False) + "\n"
    _replace(Path(path), text.encode(), "report")


def write_metrics(
    report: SyncReport, path: str | os.PathLike[str], *, now: float | None = None
) -> None:
    """Write ``report`` as Prometheus metrics to ``path`` (replaced whole).

    Raises:
        ImgmirrorError: the file cannot be written, or prometheus_client is missing.
    """
    target = Path(path)
    try:
        from prometheus_client import CollectorRegistry, Gauge  # noqa: PLC0415 - only here
        from prometheus_client.exposition import generate_latest  # noqa: PLC0415
    except ImportError:  # pragma: no cover - a dependency of imgmirror
        raise ImgmirrorError(
            "writing metrics needs prometheus_client", hint="pip install prometheus-client"
        ) from None
    shard = report.shard or "all"
    finished = time.time() if now is None else now
    registry = CollectorRegistry(auto_describe=False)

    def gauge(name: str, doc: str, *labels: str) -> Gauge:
        return Gauge(f"{_PREFIX}_{name}", doc, ["shard", *labels], registry=registry)

    gauge("last_run_timestamp_seconds", "When the last run finished.", "mode").labels(
        shard, report.mode
    ).set(finished)
    success = finished if report.ok else _previous_success(target, shard)
    if success is not None:
        gauge("last_success_timestamp_seconds", "When a run last finished with no failure.").labels(
            shard
        ).set(success)
    gauge("success", "1 when the last run had no failure.").labels(shard).set(report.ok)
    in_sync = report.ok and report.drift == 0
    gauge("in_sync", "1 when every destination tag holds its source's digest.").labels(shard).set(
        in_sync
    )
    gauge("duration_seconds", "How long the last run took.").labels(shard).set(report.seconds)
    images = gauge("images", "Images of the last run per state.", "state")
    for state, count in report.states().items():
        images.labels(shard, state).set(count)
    gauge("copied_bytes", "Blob bytes the last run sent.").labels(shard).set(report.bytes_copied)
    requests = gauge("requests", "Requests the last run sent per registry.", "registry")
    limited = gauge(
        "rate_limited_responses", "Rate-limited answers of the last run per registry.", "registry"
    )
    for host, stats in sorted(report.registries.items()):
        requests.labels(shard, host).set(stats.requests)
        limited.labels(shard, host).set(stats.rate_limited)
    _replace(target, generate_latest(registry), "metrics")


def _previous_success(path: Path, shard: str) -> float | None:
    """The last success the file at ``path`` recorded for ``shard``, if it is readable."""
    from prometheus_client.parser import text_string_to_metric_families  # noqa: PLC0415

    try:
        text = path.read_text(encoding="utf-8")
        for family in text_string_to_metric_families(text):
            if family.name == f"{_PREFIX}_last_success_timestamp_seconds":
                for sample in family.samples:
                    if sample.labels.get("shard") == shard:
                        return float(sample.value)
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return None


def _replace(path: Path, data: bytes, what: str) -> None:
    """``data`` into ``path`` through a temporary file beside it and a rename."""
    directory = path.parent
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise ImgmirrorError(
            f"cannot write the {what} file {path}: {exc.strerror or exc}",
            hint="check that its directory exists and is writable",
        ) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise ImgmirrorError(
            f"cannot write the {what} file {path}: {exc.strerror or exc}"
        ) from None
