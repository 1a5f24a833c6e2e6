"""The sync report document against its shipped JSON Schema, and the metrics file as
Prometheus' own parser reads it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from prometheus_client.parser import text_string_to_metric_families

from imgmirror.syncing.outputs import write_metrics, write_report
from imgmirror.syncing.report import STATES, SyncReport, SyncResult, report_schema
from imgmirror.transport.limiter import LimiterStats

NEW = "sha256:" + "a" * 64
OLD = "sha256:" + "b" * 64
RESULTS = (
    SyncResult("q.io/a:1", "r.io/m/a:1", NEW, "copied", 2048, None, "f:3", requests=6, seconds=0.2),
    SyncResult("q.io/a:2", "r.io/m/a:2", NEW, "moved", 0, None, "f:3", old_digest=OLD),
    SyncResult("q.io/a:3", "r.io/m/a:3", NEW, "unchanged", 0, None, "f:3", requests=2),
    SyncResult("q.io/b", "r.io/m", None, "missing-at-source", 0, "no such repository", "f:4"),
    SyncResult("q.io/c:1", "r.io/m/c:1", None, "failed", 0, "boom", "f:5"),
    SyncResult("q.io/d:1", "r.io/m/d:1", None, "refused", 0, "not signed", "f:6"),
)
REGISTRIES = {
    "q.io": LimiterStats(40, 3, 2.5, 4, 97, 100),
    "r.io": LimiterStats(12, lowest_concurrency=16),
}


def validate(document: object) -> None:
    schema = report_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(document)


def test_every_state_the_schema_names_and_a_full_report_validates():
    assert report_schema()["$defs"]["state"]["enum"] == list(STATES)
    report = SyncReport(RESULTS, 1.5, shard="1/3", started=1_800_000_000.0, registries=REGISTRIES)
    document: dict[str, Any] = report.to_json()
    validate(document)
    assert document["ok"] is False
    assert document["totals"] == {
        "images": 6, "bytes": 2048, "requests": 52, "rate_limited": 3,
        "states": {**dict.fromkeys(STATES, 0), "copied": 1, "moved": 1, "unchanged": 1,
                   "missing-at-source": 1, "failed": 1, "refused": 1},
    }  # fmt: skip
    assert document["started"] == "2027-01-15T08:00:00.000Z"
    assert [i["state"] for i in document["images"]] == [r.action for r in RESULTS]
    assert document["images"][1]["old_digest"] == OLD


def test_the_schema_refuses_what_it_must():
    document = SyncReport(RESULTS[:1], 0.1).to_json()
    for broken in (
        {**document, "mode": "copy"},
        {**document, "images": [{**document["images"][0], "state": "copyed"}]},  # type: ignore[index]
        {**document, "images": [{**document["images"][0], "state": "moved"}]},  # type: ignore[index]
        {**document, "surprise": 1},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate(broken)


def test_a_check_in_sync_and_a_check_with_drift():
    in_sync = SyncReport(RESULTS[2:3], 0.1, dry_run=True, check=True)
    drift = SyncReport(
        (SyncResult("q.io/a:2", "r.io/m/a:2", NEW, "would-move", old_digest=OLD), *RESULTS[2:3]),
        0.1, dry_run=True, check=True,
    )  # fmt: skip
    for report, expected in ((in_sync, True), (drift, False)):
        document = report.to_json()
        validate(document)
        assert document["mode"] == "check"
        assert document["in_sync"] is expected
        assert document["ok"] is True


def test_report_file_replaced_whole(tmp_path: Path):
    path = tmp_path / "report.json"
    path.write_text("old")
    write_report(SyncReport(RESULTS, 1.0, registries=REGISTRIES), path)
    validate(json.loads(path.read_text()))
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def samples(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_parse_with_prometheus_own_parser(tmp_path: Path):
    path = tmp_path / "imgmirror.prom"
    write_metrics(SyncReport(RESULTS[:3], 2.0, shard="0/2", registries=REGISTRIES), path, now=100.0)
    got = samples(path)
    shard = (("shard", "0/2"),)
    assert got[("imgmirror_sync_success", shard)] == 1.0
    assert got[("imgmirror_sync_in_sync", shard)] == 1.0
    assert got[("imgmirror_sync_last_success_timestamp_seconds", shard)] == 100.0
    assert got[("imgmirror_sync_last_run_timestamp_seconds", (("mode", "sync"), *shard))] == 100.0
    assert got[("imgmirror_sync_duration_seconds", shard)] == 2.0
    assert got[("imgmirror_sync_copied_bytes", shard)] == 2048.0
    for state in STATES:
        expected = 1.0 if state in ("copied", "moved", "unchanged") else 0.0
        assert got[("imgmirror_sync_images", (("shard", "0/2"), ("state", state)))] == expected
    assert got[("imgmirror_sync_requests", (("registry", "q.io"), *shard))] == 40.0
    assert got[("imgmirror_sync_rate_limited_responses", (("registry", "q.io"), *shard))] == 3.0
    assert sorted(os.listdir(tmp_path)) == ["imgmirror.prom"]


def test_a_failed_run_keeps_the_last_success_time(tmp_path: Path):
    path = tmp_path / "imgmirror.prom"
    write_metrics(SyncReport(RESULTS[:1], 1.0), path, now=100.0)
    write_metrics(SyncReport(RESULTS, 1.0), path, now=200.0)
    got = samples(path)
    shard = (("shard", "all"),)
    assert got[("imgmirror_sync_success", shard)] == 0.0
    assert got[("imgmirror_sync_last_success_timestamp_seconds", shard)] == 100.0
    assert got[("imgmirror_sync_last_run_timestamp_seconds", (("mode", "sync"), *shard))] == 200.0
    path.write_text("garbage {")  # an unreadable previous file: no success time, no error
    write_metrics(SyncReport(RESULTS, 1.0), path, now=300.0)
    assert ("imgmirror_sync_last_success_timestamp_seconds", shard) not in samples(path)
